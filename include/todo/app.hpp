#pragma once
// What main hands each module at install time: the shared machinery.
#include <atomic>
#include <functional>
#include <memory>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace todo {

struct config;
class router;
class event_bus;
namespace db {
class pool;
}
namespace metrics {
class registry;
}
namespace json {
class writer;
}
namespace jwt {
class verifier;
}
namespace ws {
class handler;
}
class recurrence_rules;

// One dependency in /ready: writes its fields, returns whether it is ready.
using readiness_check = std::function<bool(json::writer&)>;

struct app {
  boost::asio::io_context& io;
  const config& cfg;
  router& routes;
  std::shared_ptr<db::pool> db;
  metrics::registry& metrics;
  // The in-process bus over the committed event log: writers notify it after
  // each commit; modules subscribe before start.
  event_bus& bus;
  // False until migrations have been applied; /api answers 503 until then.
  std::atomic<bool>& schema_ready;
  // Beyond PostgreSQL and migrations; filled before the server starts.
  std::vector<readiness_check>& ready_checks;
  const jwt::verifier& jwt;
  // Set by the module that serves WebSocket upgrades of /api/v1/ws.
  std::shared_ptr<ws::handler> websocket;
  // Set by the recurrence module, before the tasks module installs.
  std::shared_ptr<const recurrence_rules> recurrence;
  // Run once migrations are applied, with the bus and the relay.
  std::vector<std::function<void()>> on_schema_ready;
  // Run off the I/O threads once they have stopped, before the io_context
  // is destroyed: components with threads of their own end them here.
  std::vector<std::function<void()>> on_stopped;
};

// /health, /ready and /metrics.
void install_ops_routes(app& a);

}  // namespace todo
