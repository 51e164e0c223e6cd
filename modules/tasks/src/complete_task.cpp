// POST /api/v1/tasks/{id}/complete and /reopen
#include "handlers.hpp"
#include "idempotency.hpp"

#include "todo/json.hpp"
#include "todo/problem.hpp"
#include "todo/uuid.hpp"

namespace todo::tasks {
namespace {

// The next occurrence of a completed recurring task: a copy due at the
// series' first date after this one's due_at, open, in the same series.
// None when the series has ended (COUNT, UNTIL).
std::optional<task> successor_of(const task& done, const recurrence_rules& rules) {
  if (!done.rrule || !done.due_at) {
    return std::nullopt;
  }
  // An occurrence moved before the series' start continues after the start.
  auto start = done.series_start.value_or(*done.due_at);
  auto next = rules.next(*done.rrule, done.timezone, start, std::max(start, *done.due_at));
  if (!next) {
    return std::nullopt;
  }
  task n = done;
  n.id = uuid::v7();
  n.completed = false;
  n.completed_at.reset();
  n.reminders = shifted(done.reminders, *done.due_at, *next, time::now());
  n.due_at = *next;
  n.series_start = start;
  n.series_id = done.series_id ? done.series_id : done.id;
  n.version = 1;
  n.created_at = n.updated_at = time::now();
  return n;
}

http::response completed_answer(const task& t, const std::optional<task>& next) {
  json::writer w;
  w.begin_object().key("task").raw(to_json(t)).key("next");
  next ? w.raw(to_json(*next)) : w.null();
  w.end_object();
  auto r = http::json(200, w.take());
  r.set("etag", etag(t));
  return r;
}

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
        if (completed) {
          cancel_pending(n.reminders);
        } else {
          restore_cancelled(n.reminders, time::now());
        }
        return n;
      },
      .answer = [](const task& t) { return task_answer(200, t); },
  };
  if (completed) {
    tr.answer_with_next = completed_answer;
    tr.follow = [rules = st->rules](const task& done) -> std::optional<task> {
      return rules ? successor_of(done, *rules) : std::nullopt;
    };
  }
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
