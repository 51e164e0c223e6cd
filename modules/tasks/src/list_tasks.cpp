// GET /api/v1/tasks
#include "handlers.hpp"
#include "task_store.hpp"

#include "todo/json.hpp"
#include "todo/problem.hpp"
#include "todo/uuid.hpp"

#include <charconv>

namespace todo::tasks {

asio::awaitable<http::response> list_tasks(state_ptr st, request_context ctx) {
  auto pairs = http::parse_query(ctx.req.query);
  if (!pairs) {
    co_return problem(errc::bad_request, "The query string has a malformed percent escape");
  }
  store::page_query q;
  q.user = ctx.user;
  q.status = "open";
  for (const auto& [k, v] : *pairs) {
    if (k == "status") {
      if (v != "open" && v != "completed" && v != "all") {
        co_return problem(errc::bad_request, "status: must be one of open, completed, all");
      }
      q.status = v;
    } else if (k == "limit") {
      int n = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc{} || p != v.data() + v.size() || n < 1 || n > 200) {
        co_return problem(errc::bad_request, "limit: must be an integer from 1 to 200");
      }
      q.limit = n;
    } else if (k == "cursor") {
      auto id = uuid::normalize(v);
      if (!id) {
        co_return problem(errc::bad_request, "cursor: is not a cursor this server issued");
      }
      q.after_id = std::move(*id);
    } else {
      co_return problem(errc::bad_request, k + ": is not a known parameter");
    }
  }
  int limit = q.limit;
  auto r = co_await store::list(*st->db, std::move(q));
  if (!r) {
    co_return problem_from(r.error());
  }
  bool more = static_cast<int>(r->size()) > limit;
  if (more) {
    r->pop_back();
  }
  json::writer w;
  w.begin_object().key("items").begin_array();
  for (const auto& t : *r) {
    w.raw(to_json(t));
  }
  w.end_array().key("next_cursor");
  more ? w.value(r->back().id) : w.null();
  w.end_object();
  co_return http::json(200, w.take());
}

}  // namespace todo::tasks
