// The embedded scheduler: jobs in the scheduler_jobs table, one timer for
// the next due one. A replica claims due rows with FOR UPDATE SKIP LOCKED and
// a lease, so a job runs on one replica at a time; a replica that dies
// mid-job leaves a lease that expires, and another runs it again. Jobs
// scheduled by another replica are seen within the poll interval.
#include "scheduler.hpp"

#include "parallel.hpp"

#include "todo/db.hpp"
#include "todo/log.hpp"
#include "todo/metrics.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <optional>

namespace todo::reminders {
namespace {

using namespace std::chrono_literals;
constexpr auto poll_interval = 500ms;  // for jobs other replicas schedule
constexpr int claim_batch = 1000;
constexpr std::size_t chunk = 250;   // jobs handed to the handler at once
constexpr std::size_t parallel = 8;  // chunks run at once per replica

const db::statement upsert_job{
    "sched_upsert",
    "INSERT INTO scheduler_jobs (name, due_at, data) VALUES ($1, $2::timestamptz, $3)"
    " ON CONFLICT (name) DO UPDATE SET due_at = excluded.due_at, data = excluded.data, claimed_until = NULL"};
const db::statement delete_job{"sched_delete", "DELETE FROM scheduler_jobs WHERE name = $1"};
const db::statement upsert_jobs{
    "sched_upsert_many",
    "INSERT INTO scheduler_jobs (name, due_at, data)"
    " SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[])"
    " ON CONFLICT (name) DO UPDATE SET due_at = excluded.due_at, data = excluded.data, claimed_until = NULL"};
const db::statement delete_jobs{"sched_delete_many", "DELETE FROM scheduler_jobs WHERE name = ANY($1::text[])"};
// The lease outlives any handler (their calls have deadlines well under it).
// `= ANY(ARRAY(...))`, not `IN (...)`: with a large limit the planner joins
// an IN list by hashing the whole table (20 ms at 100,000 jobs); an array
// is looked up in the primary key.
const db::statement claim_due{
    "sched_claim",
    "UPDATE scheduler_jobs SET claimed_until = now() + interval '2 minutes' WHERE name = ANY(ARRAY("
    " SELECT name FROM scheduler_jobs WHERE due_at <= now() + $2::interval"
    " AND (claimed_until IS NULL OR claimed_until < now())"
    " ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED))"
    " RETURNING name, data, floor(extract(epoch FROM due_at) * 1000)::int8"};
// Done: gone, unless it was scheduled again meanwhile (a new due time).
const db::statement finish_jobs{
    "sched_finish",
    "DELETE FROM scheduler_jobs j USING unnest($1::text[], $2::int8[]) AS d(name, due)"
    " WHERE j.name = d.name AND floor(extract(epoch FROM j.due_at) * 1000)::int8 = d.due"};
// Failed: tried again a little later, on any replica.
const db::statement release_jobs{
    "sched_release",
    "UPDATE scheduler_jobs SET claimed_until = now() + interval '1 second' WHERE name = ANY($1::text[])"};
// Claims and their release need not wait for the disk: a claim lost in a
// crash only means the job runs again after its lease, as it would anyway.
const db::statement no_flush{"sched_no_flush", "SELECT set_config('synchronous_commit', 'off', true)"};
// Both halves are index lookups (the claimed rows are few), never a scan.
const db::statement next_due{
    "sched_next",
    "SELECT floor(extract(epoch FROM LEAST("
    " (SELECT due_at FROM scheduler_jobs WHERE claimed_until IS NULL ORDER BY due_at LIMIT 1),"
    " (SELECT min(GREATEST(due_at, claimed_until)) FROM scheduler_jobs WHERE claimed_until IS NOT NULL)"
    ")) * 1000)::int8"};


class embedded final : public scheduler, public std::enable_shared_from_this<embedded> {
 public:
  embedded(asio::io_context& io, std::shared_ptr<db::pool> db, metrics::registry& m)
      : io_(io),
        strand_(asio::make_strand(io)),
        timer_(strand_),
        db_(std::move(db)),
        fired_(m.get_counter("todo_scheduler_jobs_run_total", "Jobs the scheduler ran", metrics::label("outcome", "done"))),
        failed_(m.get_counter("todo_scheduler_jobs_run_total", "Jobs the scheduler ran", metrics::label("outcome", "failed"))),
        lateness_(m.get_histogram("todo_scheduler_lateness_seconds", "From a job's due time to its start")) {}

  asio::awaitable<result<void>> schedule(job j) override {
    auto due = j.due;
    db::query q{&upsert_job, {std::move(j.name), time::format(j.due), std::move(j.data)}};
    auto r = co_await db_->execute_one(std::move(q));
    if (!r) {
      co_return r.error();
    }
    wake_for(due);
    co_return result<void>{};
  }

  asio::awaitable<result<void>> cancel(std::string name) override {
    db::query q{&delete_job, {std::move(name)}};
    auto r = co_await db_->execute_one(std::move(q));
    if (!r) {
      co_return r.error();
    }
    co_return result<void>{};
  }

  asio::awaitable<std::vector<bool>> schedule_many(std::vector<job> jobs) override {
    std::vector<std::string> names, dues, data;
    auto earliest = time::ms::max();
    for (auto& j : jobs) {
      names.push_back(std::move(j.name));
      dues.push_back(time::format(j.due));
      data.push_back(std::move(j.data));
      earliest = std::min(earliest, j.due);
    }
    db::query q{&upsert_jobs, {db::array_literal(names), db::array_literal(dues), db::array_literal(data)}};
    auto r = co_await db_->execute_one(std::move(q));
    if (r && !jobs.empty()) {
      wake_for(earliest);
    }
    co_return std::vector<bool>(jobs.size(), r.has_value());
  }

  asio::awaitable<std::vector<bool>> cancel_many(std::vector<std::string> names) override {
    db::query q{&delete_jobs, {db::array_literal(names)}};
    auto r = co_await db_->execute_one(std::move(q));
    co_return std::vector<bool>(names.size(), r.has_value());
  }

  void start(fire_fn f) override {
    fire_ = std::move(f);
    asio::co_spawn(strand_, run(shared_from_this()), [](std::exception_ptr e) {
      if (e) {
        log::error("scheduler", "embedded scheduler stopped", {});
      }
    });
  }

  bool ready() const override { return healthy_.load(); }

  asio::awaitable<bool> deliver(std::string, std::string) override { co_return false; }

 private:
  // Wakes the runner when a job is due before the time it sleeps until.
  void wake_for(time::ms due) {
    auto at = time::to_unix_ms(due);
    auto current = sleeping_until_.load();
    while (at < current && !sleeping_until_.compare_exchange_weak(current, at)) {
    }
    if (at < current) {
      woken_.store(true);
      asio::post(strand_, [self = shared_from_this()] { self->timer_.cancel(); });
    }
  }

  struct claimed_job {
    std::string name;
    std::string data;
    std::int64_t due;
  };

  // Claims due jobs and hands each claim to a batch of its own, without
  // waiting for earlier batches to commit: the leases keep a job on one
  // runner, and a job falling due while a batch commits starts at once. At
  // most claim_batch jobs are out at a time.
  static asio::awaitable<void> run(std::shared_ptr<embedded> self) {
    for (;;) {
      auto until = time::to_unix_ms(time::now()) + std::chrono::milliseconds(poll_interval).count();
      auto room = claim_batch - self->in_flight_;
      if (room > 0) {
        auto claim = self->claim(room);
        auto c = co_await std::move(claim);
        if (c && !c->jobs.empty()) {
          auto n = static_cast<int>(c->jobs.size());
          self->in_flight_ += n;
          auto batch = run_batch(self, std::make_shared<std::vector<claimed_job>>(std::move(c->jobs)));
          asio::co_spawn(self->strand_, std::move(batch), asio::detached);
          if (n == room) {
            continue;  // more may be due
          }
        }
        if (c && c->next_due) {
          until = std::min(until, *c->next_due - handover_ahead.count());
        }
      }
      co_await self->sleep_until(until);
    }
  }

  struct claim_result {
    std::vector<claimed_job> jobs;
    std::optional<std::int64_t> next_due;  // of the jobs left, in unix ms
  };

  // One round trip: the claim, and when the next unclaimed job falls due.
  asio::awaitable<std::optional<claim_result>> claim(int limit) {
    std::vector<db::query> qs;
    qs.push_back({&no_flush, {}});
    qs.push_back({&claim_due, {std::to_string(limit), std::to_string(handover_ahead.count()) + " milliseconds"}});
    qs.push_back({&next_due, {}});
    auto result = co_await db_->execute(std::move(qs));
    healthy_.store(result.has_value());
    if (!result || result->size() != 3) {
      co_return std::nullopt;
    }
    claim_result out;
    const auto& claimed = (*result)[1];
    for (int i = 0; i < claimed.size(); ++i) {
      out.jobs.push_back({std::string(claimed.text(i, 0)), std::string(claimed.text(i, 1)), claimed.integer(i, 2)});
    }
    // RETURNING follows the primary key; jobs run in due order.
    std::stable_sort(out.jobs.begin(), out.jobs.end(),
                     [](const claimed_job& a, const claimed_job& b) { return a.due < b.due; });
    const auto& next = (*result)[2];
    if (next.size() == 1 && !next.is_null(0, 0)) {
      out.next_due = next.integer(0, 0);
    }
    auto now = time::to_unix_ms(time::now());
    for (const auto& j : out.jobs) {
      lateness_.observe(static_cast<double>(std::max<std::int64_t>(0, now - j.due)) / 1000.0);
    }
    co_return out;
  }

  // Where the chunk of jobs (sorted by due time) that starts at `first`
  // ends: at most `chunk` jobs, and jobs not yet due only with others due
  // within a millisecond, since a handler waits for the latest of its chunk.
  // A chunk is cut when a runner takes it, not at the claim: a runner that
  // fell behind takes everything already due at once, in one transaction,
  // rather than a string of millisecond-wide chunks cut before it was late.
  static std::size_t chunk_end(const std::vector<claimed_job>& jobs, std::size_t first, std::int64_t now) {
    auto start = std::max(now, jobs[first].due);
    auto last = first + 1;
    while (last < jobs.size() && last - first < chunk && jobs[last].due <= start + 1) {
      ++last;
    }
    return last;
  }

  // Runs one claim's jobs, in chunks, `parallel` chunks at a time, in due
  // order; then settles them: done ones deleted, failed ones released.
  static asio::awaitable<void> run_batch(std::shared_ptr<embedded> self, std::shared_ptr<std::vector<claimed_job>> jobs) {
    // Whatever happens below, the runner gets its room back.
    struct give_back {
      embedded* e;
      int n;
      ~give_back() {
        e->in_flight_ -= n;
        e->woken_.store(true);
        e->timer_.cancel();
      }
    } guard{self.get(), static_cast<int>(jobs->size())};
    auto done = std::make_shared<std::vector<char>>(jobs->size(), 0);
    // The runners share `next` on for_each_parallel's strand.
    auto next = std::make_shared<std::size_t>(0);
    std::function<asio::awaitable<void>(std::size_t)> runner = [self, jobs, done, next](std::size_t) -> asio::awaitable<void> {
      while (*next < jobs->size()) {
        auto first = *next;
        auto last = chunk_end(*jobs, first, time::to_unix_ms(time::now()));
        *next = last;
        std::vector<due_job> batch;
        for (auto i = first; i < last; ++i) {
          batch.push_back({(*jobs)[i].name, (*jobs)[i].data, time::from_unix_ms((*jobs)[i].due)});
        }
        auto call = self->fire_(std::move(batch));
        try {
          auto ok = co_await std::move(call);
          for (auto i = first; i < last && i - first < ok.size(); ++i) {
            (*done)[i] = ok[i - first] ? 1 : 0;
          }
        } catch (const std::exception& e) {
          log::error("scheduler", "job handler threw", {{"error", std::string_view(e.what())}});
        }
      }
    };
    auto runners = std::min(parallel, jobs->size());
    co_await for_each_parallel(runners, runners, std::move(runner));
    std::vector<std::string> finished, retry, dues;
    for (std::size_t i = 0; i < jobs->size(); ++i) {
      if ((*done)[i]) {
        finished.push_back((*jobs)[i].name);
        dues.push_back(std::to_string((*jobs)[i].due));
      } else {
        retry.push_back((*jobs)[i].name);
      }
    }
    self->fired_.inc(finished.size());
    self->failed_.inc(retry.size());
    std::vector<db::query> qs;
    qs.push_back({&no_flush, {}});
    if (!finished.empty()) {
      qs.push_back({&finish_jobs, {db::array_literal(finished), db::array_literal(dues)}});
    }
    if (!retry.empty()) {
      qs.push_back({&release_jobs, {db::array_literal(retry)}});
    }
    // A lost answer here only means a job runs again: handlers are idempotent.
    auto settled = co_await self->db_->execute(std::move(qs));
    if (!settled) {
      log::warn("scheduler", "could not settle jobs; they run again", {{"error", settled.error().message()}});
    }
  }

  // Until `until` (unix ms), a job scheduled here for sooner, or a batch
  // that finished and gave room back.
  asio::awaitable<void> sleep_until(std::int64_t until) {
    sleeping_until_.store(until);
    auto delay = std::chrono::milliseconds(until - time::to_unix_ms(time::now()));
    // woken_: a wake since the claim, whose cancel found no wait to cancel.
    if (delay > std::chrono::milliseconds(0) && !woken_.exchange(false)) {
      timer_.expires_after(delay);
      co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    woken_.store(false);
    sleeping_until_.store(std::numeric_limits<std::int64_t>::max());
  }

  asio::io_context& io_;
  asio::strand<asio::io_context::executor_type> strand_;
  asio::steady_timer timer_;
  std::shared_ptr<db::pool> db_;
  std::atomic<std::int64_t> sleeping_until_{std::numeric_limits<std::int64_t>::max()};
  std::atomic<bool> healthy_{false};
  std::atomic<bool> woken_{false};
  int in_flight_ = 0;  // claimed jobs not yet settled; on the strand
  metrics::counter& fired_;
  metrics::counter& failed_;
  metrics::histogram& lateness_;
};

}  // namespace

std::shared_ptr<scheduler> make_embedded_scheduler(asio::io_context& io, std::shared_ptr<db::pool> db,
                                                   metrics::registry& m) {
  return std::make_shared<embedded>(io, std::move(db), m);
}

}  // namespace todo::reminders
