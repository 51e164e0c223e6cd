#include "todo/app.hpp"
#include "todo/db.hpp"
#include "todo/json.hpp"
#include "todo/metrics.hpp"
#include "todo/openapi.hpp"
#include "todo/router.hpp"

namespace todo {
namespace {

boost::asio::awaitable<http::response> health(request_context) {
  co_return http::json(200, R"({"status":"ok"})");
}

boost::asio::awaitable<http::response> ready(std::shared_ptr<db::pool> db, const std::atomic<bool>* schema,
                                             const std::vector<readiness_check>* checks, request_context) {
  auto ping = co_await db->ping();
  bool pg_ok = static_cast<bool>(ping);
  bool schema_ok = schema->load();
  json::writer w;
  w.begin_object();
  w.key("postgres").value(pg_ok ? "ok" : "down");
  w.key("migrations").value(schema_ok ? "ok" : "pending");
  bool others_ok = true;
  for (const auto& check : *checks) {
    others_ok = check(w) && others_ok;
  }
  w.end_object();
  auto res = http::json(pg_ok && schema_ok && others_ok ? 200 : 503, w.take());
  if (res.status == 503) {
    res.set("retry-after", "1");
  }
  co_return res;
}

boost::asio::awaitable<http::response> metrics_text(const metrics::registry* m, request_context) {
  http::response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = m->render();
  co_return r;
}

boost::asio::awaitable<http::response> openapi(request_context) {
  co_return http::json(200, std::string(openapi_json()));
}

}  // namespace

void install_ops_routes(app& a) {
  auto db = a.db;
  const auto* schema = &a.schema_ready;
  const auto* m = &a.metrics;
  const auto* checks = &a.ready_checks;
  a.routes.add(http::method::get, "/health", health, access::ops);
  a.routes.add(http::method::get, "/ready", [db, schema, checks](request_context c) { return ready(db, schema, checks, std::move(c)); },
               access::ops);
  a.routes.add(http::method::get, "/metrics", [m](request_context c) { return metrics_text(m, std::move(c)); },
               access::ops);
  a.routes.add(http::method::get, "/openapi.json", openapi, access::ops);
}

}  // namespace todo
