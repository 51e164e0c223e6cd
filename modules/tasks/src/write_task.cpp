#include "handlers.hpp"
#include "idempotency.hpp"
#include "task_store.hpp"

#include "todo/event_log.hpp"
#include "todo/problem.hpp"

namespace todo::tasks {
namespace {
constexpr int max_attempts = 8;
}

asio::awaitable<boost::system::result<http::response>> write_task(state_ptr st, std::string user, std::string id,
                                                                  std::optional<precondition> pre,
                                                                  std::optional<idempotency_key> key, transition tr) {
  for (int attempt = 0; attempt < max_attempts; ++attempt) {
    auto found = co_await store::find(*st->db, user, id);
    if (!found) {
      co_return found.error();
    }
    if (!*found) {
      co_return not_found();
    }
    const task& current = **found;
    if (pre && !pre->matches(current.version)) {
      auto r = problem(errc::precondition_failed, "The task has changed; fetch it again and retry");
      r.set("etag", etag(current));
      co_return r;
    }
    auto next = tr.next(current);
    // The successor recorded for this occurrence, if any: a completion that
    // is repeated, replayed or follows a reopen shows it and creates none.
    store::successor prior;
    if (tr.follow && current.rrule) {
      auto found_prior = co_await store::find_successor(*st->db, user, id);
      if (!found_prior) {
        co_return found_prior.error();
      }
      prior = std::move(*found_prior);
    }
    if (!next) {
      co_return tr.follow ? tr.answer_with_next(current, prior.next) : tr.answer(current);
    }
    if (tr.check) {
      auto errs = tr.check(current, *next);
      if (!errs.empty()) {
        co_return validation_problem(errs);
      }
    }
    if (tr.kind != "deleted") {
      next->version = current.version + 1;
      next->updated_at = std::max(time::now(), current.updated_at);
    }
    std::optional<task> successor;
    if (tr.follow && next->rrule && !prior.recorded) {
      successor = tr.follow(*next);
    }
    auto answer = tr.follow ? tr.answer_with_next(*next, prior.recorded ? prior.next : successor) : tr.answer(*next);
    // Named, not temporaries: GCC 12 miscompiles some temporaries that live
    // across a co_await.
    auto change = tr.kind == "deleted" ? store::remove(current) : store::replace(current, *next, tr.kind);
    auto kept = key ? record(*key, answer) : std::vector<db::query>{};
    if (successor) {
      kept.insert(kept.begin(), store::insert_successor(*successor, current.id));
    }
    auto applied = co_await commit(*st->db, std::move(change), std::move(kept));
    if (!applied) {
      co_return applied.error();
    }
    if (*applied) {
      st->bus->notify();
      co_return answer;
    }
  }
  co_return problem(errc::unavailable, "The task is being changed concurrently; retry");
}

asio::awaitable<http::response> run_transition(state_ptr st, request_context ctx, transition tr) {
  auto id = task_id(ctx);
  if (!id) {
    co_return not_found();
  }
  auto pre = read_if_match(ctx.req);
  if (auto* bad = std::get_if<http::response>(&pre)) {
    co_return std::move(*bad);
  }
  std::optional<precondition> cond;
  if (auto* p = std::get_if<precondition>(&pre)) {
    cond = *p;
  }
  // Named first: GCC 12 destroys a lambda converted to std::function inside
  // a co_await expression twice.
  idempotent_work work = [st, user = ctx.user, id = *id, cond, tr](std::optional<idempotency_key> key) {
    return write_task(st, user, id, cond, std::move(key), tr);
  };
  co_return co_await run_idempotent(st->db, ctx, std::move(work));
}

}  // namespace todo::tasks
