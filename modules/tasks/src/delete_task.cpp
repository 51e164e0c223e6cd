// DELETE /api/v1/tasks/{id}
#include "handlers.hpp"

namespace todo::tasks {

asio::awaitable<http::response> delete_task(state_ptr st, request_context ctx) {
  transition tr{
      .kind = "deleted",
      .next = [](const task& t) -> std::optional<task> { return t; },
      .answer = [](const task&) { return http::no_content(204); },
  };
  co_return co_await run_transition(std::move(st), std::move(ctx), std::move(tr));
}

}  // namespace todo::tasks
