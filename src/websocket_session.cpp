#include "websocket_session.hpp"

#include "frame_socket.hpp"

#include "todo/log.hpp"
#include "todo/metrics.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <atomic>
#include <deque>
#include <optional>

#include <unistd.h>

namespace todo::ws {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

std::atomic<std::uint64_t> next_id{1};

// All members but the atomics are owned by the stream's strand: the read
// loop, the writer and the timer run there, and send()/close() post there.
class beast_peer final : public peer, public std::enable_shared_from_this<beast_peer> {
 public:
  // A plain socket bound to its strand's concrete type, not
  // beast::tcp_stream: every frame Beast writes passes through several layers
  // of handlers and work guards, each of which copied a type-erased executor
  // and checked a timer the WebSocket never sets (it has timeouts of its
  // own). Event frames mostly skip Beast's write path altogether.
  using strand_type = frame_socket::strand_type;
  using socket_type = frame_socket::socket_type;
  using stream_type = websocket::stream<frame_socket>;

  beast_peer(stream_type ws, limits l, metrics::registry& m)
      : ws_(std::move(ws)),
        limits_(l),
        id_(next_id++),
        frames_sent_(m.get_counter("todo_ws_frames_sent_total", "WebSocket frames sent")),
        slow_closes_(m.get_counter("todo_ws_slow_consumer_closes_total",
                                   "WebSocket connections closed because their send queue overflowed")),
        backpressure_(m.get_counter("todo_ws_send_backpressure_total",
                                    "WebSocket frames the socket could not take at once (a client reading slowly)")) {}

  using peer::send;
  bool send(std::shared_ptr<const std::string> text) override {
    if (closing_.load()) {
      return false;
    }
    if (queued_.fetch_add(1) >= limits_.max_queued_frames) {
      queued_.fetch_sub(1);
      slow_closes_.inc();
      close(policy_violation, "slow consumer: send queue full; reconnect and resume");
      return false;
    }
    asio::post(ws_.get_executor(), [self = shared_from_this(), t = std::move(text)]() mutable {
      self->queue_.push_back(std::move(t));
      self->kick();
    });
    return true;
  }

  void close(std::uint16_t code, std::string reason) override {
    bool expected = false;
    if (!closing_.compare_exchange_strong(expected, true)) {
      return;
    }
    asio::post(ws_.get_executor(), [self = shared_from_this(), code, r = std::move(reason)]() mutable {
      self->close_code_ = code;
      self->close_reason_ = std::move(r);
      self->queued_ -= self->queue_.size();
      self->queue_.clear();
      self->close_requested_at_ = std::chrono::steady_clock::now();
      if (self->watch_timer_ != nullptr) {
        self->watch_timer_->cancel();  // to watch for a stuck close
      }
      self->kick();
    });
  }

  std::uint64_t id() const override { return id_; }
  std::size_t queued() const override { return queued_.load(); }

  stream_type& stream() { return ws_; }
  const limits& lim() const { return limits_; }
  void pong() { last_pong_ = std::chrono::steady_clock::now(); }

  // The timer: pings, the pong deadline, token expiry, a stuck close. It
  // sleeps until the nearest of them, so an idle socket wakes once per ping.
  asio::awaitable<void> watch(std::int64_t expires_at) {
    using clock = std::chrono::steady_clock;
    auto self = shared_from_this();
    asio::steady_timer t(ws_.get_executor());
    watch_timer_ = &t;
    last_pong_ = last_ping_ = clock::now();
    auto expiry = clock::time_point::max();
    if (expires_at > 0) {
      auto left = std::chrono::sys_seconds(std::chrono::seconds(expires_at)) - std::chrono::system_clock::now();
      expiry = clock::now() + std::chrono::duration_cast<clock::duration>(left);
    }
    while (!done_) {
      auto next = std::min({last_ping_ + limits_.ping_interval, last_pong_ + limits_.pong_timeout, expiry});
      if (close_code_ != 0) {
        next = std::min(next, close_requested_at_ + std::chrono::seconds(5));
      }
      t.expires_at(next);
      co_await t.async_wait(use_tuple);
      if (done_) {
        break;
      }
      auto now = clock::now();
      if (close_code_ != 0 && now - close_requested_at_ >= std::chrono::seconds(5)) {
        abort();  // the peer does not read: no close frame can reach it
        break;
      }
      if (now - last_pong_ >= limits_.pong_timeout) {
        log::info("ws", "no pong; closing", {{"connection", static_cast<std::int64_t>(id_)}});
        abort();
        break;
      }
      if (now >= expiry) {
        expiry = clock::time_point::max();
        close(policy_violation, "token expired");
      }
      if (now - last_ping_ >= limits_.ping_interval) {
        last_ping_ = now;
        ping_due_ = true;
        kick();
      }
    }
    watch_timer_ = nullptr;
  }

  void finished() { done_ = true; }

  void abort() {
    done_ = true;
    boost::system::error_code ignored;
    ws_.next_layer().socket().close(ignored);
  }

 private:
  // One write at a time, each completion starting the next, all on the
  // strand (the stream's executor). Plain completion handlers: nothing to
  // allocate per burst but Beast's own operation.
  void kick() {
    if (writing_ || done_) {
      return;
    }
    writing_ = true;
    write_next();
  }

  void write_next() {
    if (done_) {
      writing_ = false;
      return;
    }
    auto self = shared_from_this();
    if (close_code_ != 0) {
      websocket::close_reason reason(static_cast<websocket::close_code>(close_code_), close_reason_);
      ws_.async_close(reason, [self](beast::error_code) {
        self->abort();
        self->writing_ = false;
      });
      return;
    }
    if (ping_due_) {
      ping_due_ = false;
      ws_.async_ping({}, [self](beast::error_code ec) { self->written(ec); });
      return;
    }
    if (queue_.empty()) {
      writing_ = false;
      return;
    }
    auto& sock = ws_.next_layer();
    if (sock.idle()) {
      // Whole frames straight to the socket while it takes them: one system
      // call each, no operation to allocate and no completion to run.
      while (!queue_.empty()) {
        auto text = std::move(queue_.front());
        queue_.pop_front();
        queued_.fetch_sub(1);
        frames_sent_.inc();
        if (!sock.write_text(std::move(text), [self](beast::error_code ec) { self->written(ec); })) {
          backpressure_.inc();
          return;  // its rest is on the way; written() carries on
        }
      }
      writing_ = false;
      return;
    }
    in_write_ = std::move(queue_.front());
    queue_.pop_front();
    queued_.fetch_sub(1);
    ws_.text(true);
    ws_.async_write(asio::buffer(*in_write_), [self](beast::error_code ec, std::size_t) {
      self->in_write_.reset();
      if (!ec) {
        self->frames_sent_.inc();
      }
      self->written(ec);
    });
  }

  void written(beast::error_code ec) {
    if (ec) {
      abort();
      writing_ = false;
      return;
    }
    write_next();
  }

  stream_type ws_;
  limits limits_;
  std::uint64_t id_;
  metrics::counter& frames_sent_;
  metrics::counter& slow_closes_;
  metrics::counter& backpressure_;
  std::atomic<bool> closing_{false};
  std::atomic<std::size_t> queued_{0};
  std::deque<std::shared_ptr<const std::string>> queue_;
  std::shared_ptr<const std::string> in_write_;  // the frame being written
  bool writing_ = false;
  bool ping_due_ = false;
  bool done_ = false;
  std::uint16_t close_code_ = 0;
  std::string close_reason_;
  std::chrono::steady_clock::time_point close_requested_at_{};
  std::chrono::steady_clock::time_point last_pong_{};
  std::chrono::steady_clock::time_point last_ping_{};
  asio::steady_timer* watch_timer_ = nullptr;  // while watch() runs
};

// The upgraded connection's socket, moved onto the concrete strand type the
// session's stream was given at accept.
std::optional<beast_peer::socket_type> adopt(beast::tcp_stream& stream) {
  // get_executor() returns a copy: target() points into it.
  auto ex = stream.get_executor();
  auto* strand = ex.target<beast_peer::strand_type>();
  if (strand == nullptr) {
    return std::nullopt;
  }
  boost::system::error_code ec;
  auto& sock = stream.socket();
  auto protocol = sock.local_endpoint(ec).protocol();
  if (ec) {
    return std::nullopt;
  }
  auto fd = sock.release(ec);
  if (ec) {
    return std::nullopt;
  }
  beast_peer::socket_type out(*strand);
  out.assign(protocol, fd, ec);
  if (ec) {
    ::close(fd);
    return std::nullopt;
  }
  out.non_blocking(true, ec);
  if (ec) {
    return std::nullopt;
  }
  return out;
}

}  // namespace

asio::awaitable<void> run_websocket(beast::tcp_stream stream, beast::http::request<beast::http::string_body> req,
                                    handler& h, admission a, limits l, metrics::registry& m,
                                    std::function<void(std::weak_ptr<peer>)> on_open) {
  stream.expires_never();
  auto sock = adopt(stream);
  if (!sock) {
    h.abandoned(a);
    co_return;
  }
  beast_peer::stream_type ws(frame_socket(std::move(*sock)));
  ws.set_option(websocket::stream_base::timeout{std::chrono::seconds(10), websocket::stream_base::none(), false});
  ws.read_message_max(l.max_message_bytes);
  auto sub = a.subprotocol;
  ws.set_option(websocket::stream_base::decorator([sub](websocket::response_type& res) {
    res.set(beast::http::field::server, "todo-server");
    if (!sub.empty()) {
      res.set(beast::http::field::sec_websocket_protocol, sub);
    }
  }));
  co_await h.prepare(a);
  auto [ec] = co_await ws.async_accept(req, use_tuple);
  if (ec) {
    h.abandoned(a);
    co_return;
  }
  req = {};  // its headers would stay allocated for the socket's life
  auto self = std::make_shared<beast_peer>(std::move(ws), l, m);
  std::weak_ptr<beast_peer> weak = self;
  self->stream().control_callback([weak](websocket::frame_type kind, beast::string_view) {
    if (auto p = weak.lock(); p && kind == websocket::frame_type::pong) {
      p->pong();
    }
  });
  on_open(self);
  h.opened(self, a);
  asio::co_spawn(self->stream().get_executor(), self->watch(a.expires_at), [](std::exception_ptr) {});

  beast::flat_buffer buffer;
  for (;;) {
    buffer.clear();
    auto [rec, n] = co_await self->stream().async_read(buffer, use_tuple);
    if (rec) {
      if (rec == websocket::error::message_too_big) {
        // Beast has already closed with 1009.
        metrics::rejections(m, "ws_message_too_big").inc();
      }
      break;
    }
    self->pong();  // any frame shows the client is alive
    if (!self->stream().got_text()) {
      // Not a command either: answered and counted like any malformed frame.
      h.received(self, std::string_view{});
      continue;
    }
    auto text = beast::buffers_to_string(buffer.data());
    h.received(self, text);
  }
  self->finished();
  h.closed(self);
  self->abort();
}

}  // namespace todo::ws
