#pragma once
// The socket under a server-side WebSocket stream, with a fast path for the
// frames the server sends most: whole text frames written straight to the
// socket, without Beast's write operation. Only websocket_session.cpp
// includes this.
//
// Beast's own writes (pings, the close handshake, and the pongs and close
// replies its read operation sends on its own) pass through
// async_write_some() below. A fast-path frame the socket took only in part
// is finished before any write of Beast's starts, and the fast path never
// starts while one of Beast's is under way, so frames never interleave.
// Everything here runs on the connection's strand.
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace todo::ws {

class frame_socket {
 public:
  using strand_type = boost::asio::strand<boost::asio::io_context::executor_type>;
  using socket_type = boost::asio::basic_stream_socket<boost::asio::ip::tcp, strand_type>;
  using executor_type = strand_type;
  using error_code = boost::system::error_code;

  // `s` must be in non-blocking mode: write_text() never waits.
  explicit frame_socket(socket_type s) : st_(std::make_shared<state>(std::move(s))) {}

  executor_type get_executor() noexcept { return st_->sock.get_executor(); }
  socket_type& socket() { return st_->sock; }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return st_->sock.async_read_some(buffers, std::forward<Token>(token));
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(error_code, std::size_t)>(
        [st = st_](auto handler, const ConstBuffers& b) {
          // Beast keeps its buffers alive until the handler runs; a copy of
          // the sequence (not of the bytes) can wait for the fast path.
          std::vector<boost::asio::const_buffer> seq(boost::asio::buffer_sequence_begin(b),
                                                     boost::asio::buffer_sequence_end(b));
          handler_type h(std::move(handler));
          if (st->rest_text) {
            st->deferred.push_back({std::move(seq), std::move(h)});
            return;
          }
          start_beast_write(st, std::move(seq), std::move(h));
        },
        token, buffers);
  }

  // Whether write_text() may run: no write of Beast's under way and no
  // fast-path frame left unfinished.
  bool idle() const { return st_->beast_writes == 0 && !st_->rest_text; }

  // Writes one whole unfragmented text frame (RFC 6455, section 5.2; no
  // extension is ever negotiated). Returns true when the socket took all of
  // it; otherwise the rest goes out asynchronously and `done` runs after it
  // (and after any write of Beast's that waited for it).
  bool write_text(std::shared_ptr<const std::string> text, std::function<void(error_code)> done) {
    auto& t = *text;
    std::array<unsigned char, 10> head{};
    std::size_t head_size = 2;
    head[0] = 0x81;  // FIN, text
    if (t.size() < 126) {
      head[1] = static_cast<unsigned char>(t.size());
    } else if (t.size() <= 0xffff) {
      head[1] = 126;
      head[2] = static_cast<unsigned char>(t.size() >> 8);
      head[3] = static_cast<unsigned char>(t.size());
      head_size = 4;
    } else {
      head[1] = 127;
      for (int i = 0; i < 8; ++i) {
        head[2 + i] = static_cast<unsigned char>(static_cast<std::uint64_t>(t.size()) >> (56 - 8 * i));
      }
      head_size = 10;
    }
    auto& sock = st_->sock;
    error_code ec;
    std::array<boost::asio::const_buffer, 2> frame{boost::asio::buffer(head.data(), head_size), boost::asio::buffer(t)};
    std::size_t sent = ec ? 0 : sock.write_some(frame, ec);
    if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) {
      ec = {};
      sent = 0;
    }
    if (ec) {
      // As if written: the failure shows on the next write or read.
      return true;
    }
    auto total = head_size + t.size();
    if (sent == total) {
      return true;
    }
    // The socket's buffer is full: the rest, then whatever waited for it.
    st_->rest_head = head;
    st_->rest_text = std::move(text);
    std::vector<boost::asio::const_buffer> left;
    if (sent < head_size) {
      left.push_back(boost::asio::buffer(st_->rest_head.data() + sent, head_size - sent));
      left.push_back(boost::asio::buffer(*st_->rest_text));
    } else {
      left.push_back(boost::asio::buffer(*st_->rest_text) + (sent - head_size));
    }
    boost::asio::async_write(sock, left, [st = st_, done = std::move(done)](error_code wec, std::size_t) {
      st->rest_text.reset();
      while (!st->deferred.empty()) {
        auto d = std::move(st->deferred.front());
        st->deferred.pop_front();
        start_beast_write(st, std::move(d.buffers), std::move(d.handler));
      }
      done(wec);
    });
    return false;
  }

 private:
  using handler_type = boost::asio::any_completion_handler<void(error_code, std::size_t)>;
  struct deferred_write {
    std::vector<boost::asio::const_buffer> buffers;
    handler_type handler;
  };
  // Shared with the handlers in flight: they may complete after the stream
  // that owns this is gone.
  struct state {
    explicit state(socket_type s) : sock(std::move(s)) {}
    socket_type sock;
    int beast_writes = 0;
    // A fast-path frame the socket took only in part, while its rest is written.
    std::array<unsigned char, 10> rest_head{};
    std::shared_ptr<const std::string> rest_text;
    std::deque<deferred_write> deferred;
  };

  static void start_beast_write(const std::shared_ptr<state>& st, std::vector<boost::asio::const_buffer> seq,
                                handler_type h) {
    ++st->beast_writes;
    auto ex = boost::asio::get_associated_executor(h, st->sock.get_executor());
    st->sock.async_write_some(seq, boost::asio::bind_executor(ex, [st, h = std::move(h)](error_code ec, std::size_t n) mutable {
                                --st->beast_writes;
                                std::move(h)(ec, n);
                              }));
  }

  std::shared_ptr<state> st_;
};

// Beast's close handshake ends with these, found by argument-dependent lookup.
inline void beast_close_socket(frame_socket& s) {
  boost::system::error_code ignored;
  s.socket().close(ignored);
}

inline void teardown(boost::beast::role_type role, frame_socket& s, boost::system::error_code& ec) {
  boost::beast::websocket::teardown(role, s.socket(), ec);
}

template <class Handler>
void async_teardown(boost::beast::role_type role, frame_socket& s, Handler&& handler) {
  boost::beast::websocket::async_teardown(role, s.socket(), std::forward<Handler>(handler));
}

}  // namespace todo::ws
