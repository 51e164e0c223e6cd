// The sync module: GET /api/v1/ws, and the log follower feeding the hub.
#include "sync/sync.hpp"

#include "hub.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include "todo/app.hpp"
#include "todo/config.hpp"
#include "todo/event_log.hpp"
#include "todo/json.hpp"
#include "todo/log.hpp"
#include "todo/metrics.hpp"
#include "todo/problem.hpp"
#include "todo/router.hpp"

namespace todo::sync {
namespace {

// Reached only without an Upgrade header: the HTTP server upgrades the rest.
boost::asio::awaitable<http::response> not_an_upgrade(request_context) {
  auto r = problem(errc::bad_request, "This route is a WebSocket: send Connection: Upgrade and Upgrade: websocket");
  r.set("upgrade", "websocket");
  co_return r;
}

}  // namespace

void install(todo::app& a) {
  auto h = std::make_shared<hub>(a.io, a.db, a.jwt, a.cfg.websocket, a.metrics);
  a.routes.add(http::method::get, "/api/v1/ws", not_an_upgrade);
  std::weak_ptr<hub> weak = h;
  // The log exists once migrations ran.
  a.on_schema_ready.push_back([h, io = &a.io, bus = &a.bus] {
    boost::asio::co_spawn(boost::asio::make_strand(*io), hub::follow(h, bus), [](std::exception_ptr e) {
      if (e) {
        log::error("sync", "log follower stopped", {});
      }
    });
  });
  // Until then upgrades get 503: /ready waits for it.
  a.ready_checks.push_back([weak](json::writer& w) {
    auto self = weak.lock();
    bool ok = self && self->following();
    w.key("websocket").value(ok ? "ok" : "starting");
    return ok;
  });
  a.metrics.add_gauge("todo_ws_connections", "Open WebSocket connections", {}, [weak] {
    auto self = weak.lock();
    return self ? static_cast<double>(self->connections()) : 0.0;
  });
  a.websocket = h;
}

}  // namespace todo::sync
