// POST /api/v1/tasks/{id}/complete and /reopen
#include "handlers.hpp"
#include "idempotency.hpp"

#include "todo/json.hpp"
#include "todo/problem.hpp"

namespace todo::tasks {
namespace {

asio::awaitable<http::response> set_completed(state_ptr st, request_context ctx, bool completed) {
  transition tr{
      .kind = completed ? "completed" : "reopened",
      .next = [completed](const task& t) -> std::optional<task> {
        if (t.completed == completed) {
          return std::nullopt;  // completing a completed task is a no-op
        }
        task n = t;
        n.completed = completed;
        n.completed_at = completed ? std::optional<time::ms>(time::now()) : std::nullopt;
        return n;
      },
      .answer = [completed](const task& t) {
        if (!completed) {
          return task_answer(200, t);
        }
        json::writer w;
        w.begin_object().key("task").raw(to_json(t)).key("next").null().end_object();
        auto r = http::json(200, w.take());
        r.set("etag", etag(t));
        return r;
      },
  };
  co_return co_await run_transition(std::move(st), std::move(ctx), std::move(tr));
}

}  // namespace

asio::awaitable<http::response> complete_task(state_ptr st, request_context ctx) {
  return set_completed(std::move(st), std::move(ctx), true);
}

asio::awaitable<http::response> reopen_task(state_ptr st, request_context ctx) {
  return set_completed(std::move(st), std::move(ctx), false);
}

}  // namespace todo::tasks
