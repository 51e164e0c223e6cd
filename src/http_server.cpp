#include "todo/http_server.hpp"

#include "todo/dispatch.hpp"
#include "todo/log.hpp"
#include "todo/metrics.hpp"
#include "todo/problem.hpp"
#include "todo/rate_limit.hpp"
#include "todo/websocket.hpp"
#include "http_beast.hpp"
#include "websocket_session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <array>
#include <atomic>
#include <map>
#include <optional>
#include <mutex>
#include <unordered_map>

namespace todo {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Shared by the acceptor and every session. The session map and the
// per-address counts are guarded by `mu`; each stream is only touched on its
// own session's strand.
struct http_server::state {
  asio::io_context& ioc;
  http_config cfg;
  dispatcher& dispatch;
  tcp::acceptor acceptor;
  std::atomic<bool> draining{false};

  struct session_entry {
    asio::any_io_executor strand;
    beast::tcp_stream* stream;
    bool busy;
    std::weak_ptr<ws::peer> websocket;  // set once upgraded
    std::string address_key;            // counted in per_address; empty: not counted
  };

  // Limits refused, by reason (todo_http_rejections_total).
  struct rejections {
    explicit rejections(metrics::registry& m)
        : connections(metrics::rejections(m, "connections")),
          connections_per_ip(metrics::rejections(m, "connections_per_ip")),
          header_timeout(metrics::rejections(m, "header_timeout")),
          body_timeout(metrics::rejections(m, "body_timeout")),
          header_too_large(metrics::rejections(m, "header_too_large")),
          body_too_large(metrics::rejections(m, "body_too_large")) {}
    metrics::counter& connections;
    metrics::counter& connections_per_ip;
    metrics::counter& header_timeout;
    metrics::counter& body_timeout;
    metrics::counter& header_too_large;
    metrics::counter& body_too_large;
  };
  rejections rejected;

  std::string ws_path;
  ws::handler* ws_handler = nullptr;
  std::optional<ws::limits> ws_limits;
  metrics::registry* ws_metrics = nullptr;
  mutable std::mutex mu;
  std::uint64_t next_id = 0;
  std::map<std::uint64_t, session_entry> sessions;
  std::unordered_map<std::string, std::size_t> per_address;

  state(asio::io_context& i, const http_config& c, dispatcher& d, metrics::registry& m)
      : ioc(i), cfg(c), dispatch(d), acceptor(i), rejected(m) {}

  // Erases a finished session and uncounts its address.
  void forget(std::uint64_t id) {
    std::lock_guard lock(mu);
    auto it = sessions.find(id);
    if (it == sessions.end()) {
      return;
    }
    if (!it->second.address_key.empty()) {
      if (auto a = per_address.find(it->second.address_key); a != per_address.end() && --a->second == 0) {
        per_address.erase(a);
      }
    }
    sessions.erase(it);
  }

  void set_busy(std::uint64_t id, bool busy) {
    std::lock_guard lock(mu);
    if (auto it = sessions.find(id); it != sessions.end()) {
      it->second.busy = busy;
    }
  }
};

namespace {

bhttp::response<bhttp::string_body> to_beast(http::response&& in, unsigned version, bool keep_alive, bool head) {
  bhttp::response<bhttp::string_body> out{static_cast<bhttp::status>(in.status), version};
  out.set(bhttp::field::server, "todo-server");
  if (!in.content_type.empty()) {
    out.set(bhttp::field::content_type, in.content_type);
  }
  for (auto& h : in.headers) {
    out.insert(h.name, h.value);
  }
  auto size = in.body.size();
  if (!head) {
    out.body() = std::move(in.body);
  }
  if (in.status != 204 && in.status != 304) {
    out.content_length(size);
  }
  out.keep_alive(keep_alive);
  return out;
}

// Answers a request that was refused before the dispatcher saw it.
asio::awaitable<void> refuse(beast::tcp_stream& stream, http::response res, unsigned version) {
  auto msg = to_beast(std::move(res), version, false, false);
  co_await bhttp::async_write(stream, msg, use_tuple);
}

// After refusing a body we did not read: stop sending, then read and drop
// what the client is still sending for a moment, so that it reads our answer
// instead of a connection reset.
asio::awaitable<void> linger(beast::tcp_stream& stream, std::size_t max_body) {
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.expires_after(std::chrono::seconds(2));
  std::array<char, 16 * 1024> sink;
  std::size_t total = 0;
  while (total < 4 * max_body) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), use_tuple);
    if (ec) {
      break;
    }
    total += n;
  }
}

void session_ended(std::exception_ptr e) {
  if (e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      log::error("http", "session failed", {{"error", x.what()}});
    }
  }
}

asio::awaitable<void> websocket_session(beast::tcp_stream stream, bhttp::request<bhttp::string_body> req,
                                        std::shared_ptr<http_server::state> st, std::uint64_t id,
                                        ws::admission admitted) {
  std::function<void(std::weak_ptr<ws::peer>)> opened = [st, id](std::weak_ptr<ws::peer> p) {
    std::lock_guard lock(st->mu);
    if (auto it = st->sessions.find(id); it != st->sessions.end()) {
      it->second.websocket = std::move(p);
    }
  };
  auto run = ws::run_websocket(std::move(stream), std::move(req), *st->ws_handler, std::move(admitted), *st->ws_limits,
                               *st->ws_metrics, std::move(opened));
  co_await std::move(run);
  st->forget(id);
}

// "1 MiB", "64 KiB", "1000 bytes": for problem details.
std::string describe_size(std::size_t n) {
  if (n % (1024 * 1024) == 0) {
    return std::to_string(n / (1024 * 1024)) + " MiB";
  }
  if (n % 1024 == 0) {
    return std::to_string(n / 1024) + " KiB";
  }
  return std::to_string(n) + " bytes";
}

// Serves one connection, already registered as session `id` by the acceptor.
asio::awaitable<void> session(tcp::socket socket, std::shared_ptr<http_server::state> st, std::uint64_t id,
                              std::string remote) {
  beast::tcp_stream stream(std::move(socket));
  {
    std::lock_guard lock(st->mu);
    if (auto it = st->sessions.find(id); it != st->sessions.end()) {
      it->second.stream = &stream;
    }
  }
  const auto accepted = std::chrono::steady_clock::now();
  const std::size_t max_body = st->cfg.max_body_bytes;
  const std::string too_large = "The body must not exceed " + describe_size(max_body);
  beast::flat_buffer buffer;
  bool first = true;
  for (;;) {
    if (st->draining) {
      break;
    }
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(st->cfg.max_header_bytes));
    parser.body_limit(max_body);
    // HTTP_HEADER_TIMEOUT bounds the whole head, however slowly it trickles
    // in: from the accept for the first request, from its first byte for a
    // later one (until that byte, the keep-alive idle timeout applies).
    auto header_deadline = accepted + st->cfg.header_timeout;
    if (!first) {
      if (buffer.size() == 0) {
        stream.expires_after(st->cfg.idle_timeout);
        auto [iec, in] = co_await stream.async_read_some(buffer.prepare(4096), use_tuple);
        if (iec) {
          break;  // idle past the timeout, closed by the client, or drained
        }
        buffer.commit(in);
      }
      header_deadline = std::chrono::steady_clock::now() + st->cfg.header_timeout;
    }
    first = false;
    stream.expires_at(header_deadline);
    auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, use_tuple);
    if (ec == bhttp::error::body_limit) {
      // Content-Length over the limit: refused before a byte of the body.
      st->rejected.body_too_large.inc();
      auto res = problem(errc::payload_too_large, too_large);
      co_await refuse(stream, std::move(res), 11);
      co_await linger(stream, max_body);
      break;
    }
    if (ec == bhttp::error::header_limit) {
      st->rejected.header_too_large.inc();
      auto res = problem(errc::bad_request, "Request headers exceed " + describe_size(st->cfg.max_header_bytes));
      co_await refuse(stream, std::move(res), 11);
      break;
    }
    if (ec == beast::error::timeout) {
      st->rejected.header_timeout.inc();
      break;
    }
    if (ec) {
      // EOF, reset, cancelled by the drain: nothing to answer.
      if (ec != bhttp::error::end_of_stream && ec != asio::error::eof && ec != asio::error::operation_aborted &&
          ec != asio::error::connection_reset) {
        auto res = problem(errc::bad_request, "Malformed HTTP request");
        co_await refuse(stream, std::move(res), 11);
      }
      break;
    }
    st->set_busy(id, true);
    auto& header = parser.get();
    unsigned version = header.version();
    if (auto len = parser.content_length(); len && *len > max_body) {
      st->rejected.body_too_large.inc();
      auto res = problem(errc::payload_too_large, too_large);
      co_await refuse(stream, std::move(res), version);
      co_await linger(stream, max_body);
      break;
    }
    if (beast::iequals(header[bhttp::field::expect], "100-continue")) {
      bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, version};
      co_await bhttp::async_write(stream, cont, use_tuple);
    }
    stream.expires_after(st->cfg.body_timeout);
    auto [rec, rn] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
    if (rec == bhttp::error::body_limit) {
      st->rejected.body_too_large.inc();
      auto res = problem(errc::payload_too_large, too_large);
      co_await refuse(stream, std::move(res), version);
      co_await linger(stream, max_body);
      break;
    }
    if (rec == beast::error::timeout) {
      st->rejected.body_timeout.inc();
      break;
    }
    if (rec) {
      break;
    }
    auto req = parser.release();
    if (st->ws_handler != nullptr && beast::websocket::is_upgrade(req) &&
        std::string_view(req.target()).substr(0, std::string_view(req.target()).find('?')) == st->ws_path) {
      auto copy = req;
      auto plain = to_plain(std::move(copy), remote);
      if (auto limited = st->dispatch.limit_address(plain)) {
        co_await refuse(stream, std::move(*limited), version);
        break;
      }
      auto verdict = st->ws_handler->admit(plain);
      if (auto* refused = std::get_if<http::response>(&verdict)) {
        co_await refuse(stream, std::move(*refused), version);
        break;
      }
      // The socket outlives this coroutine: its frame (parser, buffers) is
      // not kept for the life of every WebSocket. The entry stays, busy, with
      // no stream the drain could touch.
      {
        std::lock_guard lock(st->mu);
        if (auto it = st->sessions.find(id); it != st->sessions.end()) {
          it->second.stream = nullptr;
        }
      }
      auto ex = stream.get_executor();
      auto upgraded = websocket_session(std::move(stream), std::move(req), st, id, std::get<ws::admission>(std::move(verdict)));
      asio::co_spawn(ex, std::move(upgraded), session_ended);
      co_return;
    }
    bool keep_alive = req.keep_alive();
    bool head = req.method() == bhttp::verb::head;
    stream.expires_never();
    auto plain = to_plain(std::move(req), remote);
    auto res = co_await st->dispatch.handle(std::move(plain));
    keep_alive = keep_alive && !st->draining;
    auto msg = to_beast(std::move(res), version, keep_alive, head);
    stream.expires_after(st->cfg.body_timeout);
    auto [wec, wn] = co_await bhttp::async_write(stream, msg, use_tuple);
    st->set_busy(id, false);
    if (wec || !keep_alive) {
      break;
    }
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  st->forget(id);
}

// The whole answer to a connection refused at accept, as bytes.
std::string refusal_bytes(http::response res) {
  auto msg = to_beast(std::move(res), 11, false, false);
  std::string out = "HTTP/1.1 " + std::to_string(msg.result_int()) + " " + std::string(msg.reason()) + "\r\n";
  for (const auto& f : msg) {
    out += std::string(f.name_string()) + ": " + std::string(f.value()) + "\r\n";
  }
  out += "\r\n" + msg.body();
  return out;
}

// Over a connection limit: answer and close at once, on the acceptor's
// thread, without a session. The socket is fresh, so the short answer fits
// its send buffer; whatever the client already sent is read first, so the
// close does not turn into a reset that could destroy the answer.
template <class Socket>
void turn_away(Socket& socket, const std::string& answer) {
  boost::system::error_code ec;
  socket.non_blocking(true, ec);
  socket.write_some(asio::buffer(answer), ec);
  socket.shutdown(Socket::shutdown_send, ec);
  std::array<char, 4096> sink;
  for (int i = 0; i < 16 && !ec; ++i) {
    socket.read_some(asio::buffer(sink), ec);
  }
  socket.close(ec);
}

asio::awaitable<void> accept_loop(std::shared_ptr<http_server::state> st) {
  const auto full = [] {
    auto r = problem(errc::unavailable, "The server holds as many connections as it may; try again shortly");
    return refusal_bytes(std::move(r));
  }();
  const auto full_for_address = [] {
    auto r = problem(errc::rate_limited, "Too many open connections from this address");
    r.set("retry-after", "1");
    return refusal_bytes(std::move(r));
  }();
  for (;;) {
    auto [ec, socket] = co_await st->acceptor.async_accept(asio::make_strand(st->ioc), use_tuple);
    if (ec == asio::error::operation_aborted || !st->acceptor.is_open()) {
      co_return;
    }
    if (ec) {
      // Out of file descriptors and the like: back off instead of spinning.
      log::warn("http", "accept failed", {{"error", ec.message()}});
      asio::steady_timer t(st->ioc, std::chrono::milliseconds(50));
      co_await t.async_wait(use_tuple);
      continue;
    }
    auto ep = socket.remote_endpoint(ec);
    std::string remote = ec ? std::string{} : ep.address().to_string();
    std::string key;
    if (!remote.empty() && !(st->cfg.loopback_exempt && is_loopback(remote))) {
      key = address_key(remote);
    }
    // Counted here, before the session exists, so that a burst of accepts
    // cannot pass the limits between the check and the session's start.
    std::uint64_t id = 0;
    const std::string* refusal = nullptr;
    {
      std::lock_guard lock(st->mu);
      if (st->sessions.size() >= st->cfg.max_connections) {
        st->rejected.connections.inc();
        refusal = &full;
      } else if (!key.empty() && st->per_address[key] >= st->cfg.max_connections_per_ip) {
        st->rejected.connections_per_ip.inc();
        refusal = &full_for_address;
      } else {
        if (!key.empty()) {
          ++st->per_address[key];
        }
        id = st->next_id++;
        st->sessions[id] = {socket.get_executor(), nullptr, false, {}, key};
      }
      if (refusal != nullptr && !key.empty() && st->per_address[key] == 0) {
        st->per_address.erase(key);  // created by the lookup above
      }
    }
    if (refusal != nullptr) {
      turn_away(socket, *refusal);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto ex = socket.get_executor();
    asio::co_spawn(ex, session(std::move(socket), st, id, std::move(remote)), session_ended);
  }
}

}  // namespace

http_server::http_server(asio::io_context& ioc, const http_config& cfg, dispatcher& d, metrics::registry& m)
    : state_(std::make_shared<state>(ioc, cfg, d, m)) {
  std::weak_ptr<state> weak = state_;
  m.add_gauge("todo_http_connections", "Open HTTP connections, WebSockets included", {}, [weak]() -> double {
    auto st = weak.lock();
    if (!st) {
      return 0;
    }
    std::lock_guard lock(st->mu);
    return static_cast<double>(st->sessions.size());
  });
}

http_server::~http_server() = default;

std::uint16_t http_server::start() {
  auto& st = *state_;
  tcp::endpoint ep(asio::ip::make_address(st.cfg.bind_address), st.cfg.port);
  st.acceptor.open(ep.protocol());
  st.acceptor.set_option(asio::socket_base::reuse_address(true));
  st.acceptor.bind(ep);
  st.acceptor.listen(asio::socket_base::max_listen_connections);
  asio::co_spawn(st.acceptor.get_executor(), accept_loop(state_), [](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        log::error("http", "accept loop failed", {{"error", x.what()}});
      }
    }
  });
  return st.acceptor.local_endpoint().port();
}

void http_server::serve_websocket(std::string path, ws::handler& h, const ws::limits& l, metrics::registry& m) {
  state_->ws_path = std::move(path);
  state_->ws_handler = &h;
  state_->ws_limits = l;
  state_->ws_metrics = &m;
}

std::size_t http_server::open_connections() const {
  std::lock_guard lock(state_->mu);
  return state_->sessions.size();
}

namespace {
asio::awaitable<void> wait_drained(std::shared_ptr<http_server::state> st, std::function<void()> done) {
  auto until = std::chrono::steady_clock::now() + st->cfg.drain_timeout;
  asio::steady_timer t(st->ioc);
  for (;;) {
    std::size_t left = 0;
    {
      std::lock_guard lock(st->mu);
      left = st->sessions.size();
    }
    if (left == 0 || std::chrono::steady_clock::now() >= until) {
      if (left > 0) {
        log::warn("http", "drain timed out", {{"connections", left}});
      }
      break;
    }
    t.expires_after(std::chrono::milliseconds(20));
    co_await t.async_wait(use_tuple);
  }
  done();
}
}  // namespace

void http_server::drain(std::function<void()> done) {
  auto st = state_;
  st->draining = true;
  asio::post(st->acceptor.get_executor(), [st] {
    boost::system::error_code ignored;
    st->acceptor.close(ignored);
  });
  {
    std::lock_guard lock(st->mu);
    for (auto& [id, s] : st->sessions) {
      if (auto p = s.websocket.lock()) {
        p->close(ws::going_away, "server shutting down");
        continue;
      }
      if (s.busy) {
        continue;  // answers its request with Connection: close, then ends
      }
      // Runs on the session's strand; the entry is still there only while the
      // stream is alive, because the session erases it on that same strand.
      asio::post(s.strand, [st, id = id] {
        std::lock_guard inner(st->mu);
        if (auto it = st->sessions.find(id);
            it != st->sessions.end() && !it->second.busy && it->second.stream != nullptr) {
          it->second.stream->cancel();
        }
      });
    }
  }
  asio::co_spawn(st->ioc, wait_drained(st, std::move(done)), [](std::exception_ptr) {});
}

}  // namespace todo
