// GET /api/v1/tasks/{id}
#include "handlers.hpp"
#include "task_store.hpp"

#include "todo/problem.hpp"

namespace todo::tasks {

asio::awaitable<http::response> get_task(state_ptr st, request_context ctx) {
  auto id = task_id(ctx);
  if (!id) {
    co_return not_found();
  }
  auto found = co_await store::find(*st->db, ctx.user, *id);
  if (!found) {
    co_return problem_from(found.error());
  }
  if (!*found) {
    co_return not_found();
  }
  const task& t = **found;
  if (auto inm = ctx.req.header_value("if-none-match")) {
    auto tag = etag(t);
    if (*inm == "*" || inm->find(tag) != std::string_view::npos) {
      http::response r = http::no_content(304);
      r.set("etag", tag);
      co_return r;
    }
  }
  co_return task_answer(200, t);
}

}  // namespace todo::tasks
