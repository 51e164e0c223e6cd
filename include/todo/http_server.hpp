#pragma once
// HTTP/1.1 on Boost.Beast: keep-alive, pipelining (answered in order),
// header/body/idle deadlines, a body limit enforced before the body is read,
// caps on open connections (in all and per client address), and a graceful
// drain.
#include "todo/config.hpp"

#include <cstdint>
#include <functional>
#include <memory>

namespace boost::asio {
class io_context;
}

namespace todo {

class dispatcher;
namespace ws {
class handler;
struct limits;
}
namespace metrics {
class registry;
}

class http_server {
 public:
  // `m` receives todo_http_rejections_total.
  http_server(boost::asio::io_context& ioc, const http_config& cfg, dispatcher& d, metrics::registry& m);
  ~http_server();

  // Binds and starts accepting; returns the bound port (useful with PORT=0).
  std::uint16_t start();
  // Stops accepting, closes idle keep-alive connections, lets in-flight
  // requests finish (answered with Connection: close), then calls `done`
  // once no connection is left or the drain timeout has passed.
  void drain(std::function<void()> done);

  std::size_t open_connections() const;

  // Upgrades requests for `path` to WebSocket, handled by `h` (before start).
  void serve_websocket(std::string path, ws::handler& h, const ws::limits& l, metrics::registry& m);

  struct state;

 private:
  std::shared_ptr<state> state_;
};

}  // namespace todo
