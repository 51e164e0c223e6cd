// GET /api/v1/tags
#include "handlers.hpp"
#include "listing.hpp"
#include "task_store.hpp"

#include "todo/json.hpp"
#include "todo/problem.hpp"

namespace todo::tasks {

asio::awaitable<http::response> list_tags(state_ptr st, request_context ctx) {
  auto pairs = http::parse_query(ctx.req.query);
  if (!pairs || !pairs->empty()) {
    field_error e{pairs ? listing::shown_name(pairs->front().first) : "query",
                  "is not a known parameter (this route takes none)"};
    co_return problem(errc::bad_request, e.field + ": " + e.message, {e});
  }
  auto r = co_await store::tag_counts(*st->db, ctx.user);
  if (!r) {
    co_return problem_from(r.error());
  }
  json::writer w;
  w.begin_object().key("items").begin_array();
  for (const auto& t : *r) {
    w.begin_object().key("tag").value(t.tag).key("open").value(t.open).key("total").value(t.total).end_object();
  }
  w.end_array().end_object();
  co_return http::json(200, w.take());
}

}  // namespace todo::tasks
