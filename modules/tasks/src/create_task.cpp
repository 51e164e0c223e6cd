// POST /api/v1/tasks
#include "handlers.hpp"
#include "idempotency.hpp"
#include "task_store.hpp"
#include "validate.hpp"

#include "todo/event_log.hpp"
#include "todo/problem.hpp"
#include "todo/uuid.hpp"

namespace todo::tasks {
namespace {

asio::awaitable<boost::system::result<http::response>> insert_task(state_ptr st, task t,
                                                                   std::optional<idempotency_key> key) {
  auto answer = task_answer(201, t);
  answer.set("location", "/api/v1/tasks/" + t.id);
  std::vector<db::query> qs;
  if (key) {
    qs = record(*key, answer);
  }
  // One pipeline, one implicit transaction: the task and its idempotency
  // record commit together or not at all.
  qs.push_back(store::insert(t));
  auto r = co_await st->db->execute(std::move(qs));
  if (!r) {
    co_return r.error();
  }
  st->bus->notify();
  co_return answer;
}

}  // namespace

asio::awaitable<http::response> create_task(state_ptr st, request_context ctx) {
  if (auto refused = require_json(ctx.req, false)) {
    co_return std::move(*refused);
  }
  auto body = parse_task_body(ctx.req.body, body_mode::create, st->rules.get());
  if (!body.bad_request.empty()) {
    co_return problem(errc::bad_request, body.bad_request);
  }
  if (!body.errors.empty()) {
    co_return validation_problem(body.errors);
  }
  task t;
  t.id = uuid::v7();
  t.user_id = ctx.user;
  apply(body.patch, t);
  const auto* reminders = body.patch.reminders ? &*body.patch.reminders : nullptr;
  if (auto errs = check_task(nullptr, t, st->rules.get(), reminders); !errs.empty()) {
    co_return validation_problem(errs);
  }
  t.created_at = t.updated_at = time::now();
  // Named first: GCC 12 destroys a lambda converted to std::function inside
  // a co_await expression twice.
  idempotent_work work = [st, t](std::optional<idempotency_key> key) {
    return insert_task(st, t, std::move(key));
  };
  co_return co_await run_idempotent(st->db, ctx, std::move(work));
}

}  // namespace todo::tasks
