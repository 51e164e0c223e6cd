#pragma once
// WebSocket connections in plain types: the Beast session implements `peer`,
// a module implements `handler`. Neither side sees the other's machinery.
#include "todo/http.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

namespace todo::ws {

// Close codes used here (RFC 6455 7.4.1).
inline constexpr std::uint16_t going_away = 1001;
inline constexpr std::uint16_t policy_violation = 1008;
inline constexpr std::uint16_t too_big = 1009;

// One open connection. Thread-safe: calls are posted to its strand.
class peer {
 public:
  virtual ~peer() = default;
  // Queues a text frame. False when the send queue is over its limit: the
  // connection is then being closed with 1008 and the frame is dropped.
  // Shared, so one change fanned out to many sockets is one string.
  virtual bool send(std::shared_ptr<const std::string> text) = 0;
  bool send(std::string text) { return send(std::make_shared<const std::string>(std::move(text))); }
  virtual void close(std::uint16_t code, std::string reason) = 0;
  virtual std::uint64_t id() const = 0;
  // Frames queued and not yet written.
  virtual std::size_t queued() const = 0;
};

struct admission {
  std::string user;
  std::int64_t expires_at = 0;  // Unix seconds: the connection closes (1008) then
  std::string subprotocol;      // echoed in the handshake when not empty
  std::int64_t cursor = -1;     // the handler's own, handed back in opened()
};

class handler {
 public:
  virtual ~handler() = default;
  // Before the upgrade: who it is, or the HTTP answer that refuses it.
  virtual std::variant<admission, http::response> admit(const http::request& req) = 0;
  // After admit(), before the handshake is answered: may fill a.cursor.
  virtual boost::asio::awaitable<void> prepare(admission& a) = 0;
  virtual void opened(const std::shared_ptr<peer>& p, const admission& a) = 0;
  // The upgrade failed after admit(): release what admit() reserved.
  virtual void abandoned(const admission& a) = 0;
  virtual void received(const std::shared_ptr<peer>& p, std::string_view text) = 0;
  virtual void closed(const std::shared_ptr<peer>& p) = 0;
};

struct limits {
  std::size_t max_queued_frames = 1024;  // per connection, then 1008
  std::size_t max_message_bytes = 64 * 1024;
  std::chrono::milliseconds ping_interval{20'000};
  std::chrono::milliseconds pong_timeout{60'000};
};

}  // namespace todo::ws
