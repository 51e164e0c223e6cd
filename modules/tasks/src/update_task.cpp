// PATCH /api/v1/tasks/{id}: JSON merge patch (RFC 7396).
#include "handlers.hpp"
#include "idempotency.hpp"
#include "validate.hpp"

#include "todo/problem.hpp"

namespace todo::tasks {

asio::awaitable<http::response> update_task(state_ptr st, request_context ctx) {
  auto id = task_id(ctx);
  if (!id) {
    co_return not_found();
  }
  if (auto refused = require_json(ctx.req, true)) {
    co_return std::move(*refused);
  }
  auto body = parse_task_body(ctx.req.body, body_mode::patch, st->rules.get());
  if (!body.bad_request.empty()) {
    co_return problem(errc::bad_request, body.bad_request);
  }
  if (!body.errors.empty()) {
    co_return validation_problem(body.errors);
  }
  transition tr{
      .kind = "updated",
      .next = [patch = body.patch](const task& t) -> std::optional<task> {
        task n = t;
        return apply(patch, n) ? std::optional<task>(std::move(n)) : std::nullopt;
      },
      .answer = [](const task& t) { return task_answer(200, t); },
      .check = [rules = st->rules, reminders = body.patch.reminders](const task& before, const task& after) {
        return check_task(&before, after, rules.get(), reminders ? &*reminders : nullptr);
      },
  };
  co_return co_await run_transition(std::move(st), std::move(ctx), std::move(tr));
}

}  // namespace todo::tasks
