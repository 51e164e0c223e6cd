#include "todo/event_log.hpp"

#include "todo/db.hpp"
#include "todo/log.hpp"
#include "todo/metrics.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <charconv>
#include <mutex>
#include <set>

namespace todo {
namespace asio = boost::asio;

namespace {

#define EVENT_COLUMNS \
  "pos, user_id, seq, id, type, subject, floor(extract(epoch FROM time) * 1000)::int8, summary, data"

const db::statement read_stmt{
    "events_read",
    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text, " EVENT_COLUMNS
    " FROM events WHERE pos > $1 ORDER BY pos LIMIT $2"};
// The bound of a gap just seen: a new transaction id, above every id handed
// out before. Nothing is written, so PostgreSQL commits it without waiting
// for the disk.
const db::statement next_xid_stmt{"events_next_xid", "SELECT pg_current_xact_id()::text"};
const db::statement user_events_stmt{
    "events_user_after",
    "SELECT " EVENT_COLUMNS " FROM events WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"};
const db::statement user_bounds_stmt{
    "events_user_bounds",
    "SELECT coalesce((SELECT last_seq FROM user_sequences WHERE user_id = $1), 0),"
    " coalesce((SELECT min(seq) FROM events WHERE user_id = $1), 0)"};
const db::statement log_end_stmt{"events_end", "SELECT coalesce(max(pos), 0) FROM events"};
const db::statement load_checkpoint_stmt{"checkpoint_load",
                                         "SELECT pos FROM consumer_checkpoints WHERE name = $1"};
const db::statement save_checkpoint_stmt{
    "checkpoint_save",
    "INSERT INTO consumer_checkpoints (name, pos) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE"
    " SET pos = GREATEST(consumer_checkpoints.pos, excluded.pos), updated_at = now()"};

// The event columns (pos, user_id, seq, id, type, subject, time in ms,
// summary, data) of one row, starting at column `first`.
event read_event(const db::rows& r, int row, int first) {
  event e;
  e.pos = r.integer(row, first);
  e.user = std::string(r.text(row, first + 1));
  e.seq = r.integer(row, first + 2);
  e.id = std::string(r.text(row, first + 3));
  e.type = std::string(r.text(row, first + 4));
  e.subject = std::string(r.text(row, first + 5));
  e.time = time::from_unix_ms(r.integer(row, first + 6));
  e.summary = std::string(r.text(row, first + 7));
  e.data = std::string(r.text(row, first + 8));
  return e;
}

std::uint64_t to_u64(std::string_view s) {
  std::uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

}  // namespace

gap_tracker::step gap_tracker::advance(std::int64_t from, std::span<const std::int64_t> positions,
                                       std::uint64_t xmin) {
  std::int64_t expected = from + 1;
  std::size_t used = 0;
  for (auto p : positions) {
    while (expected < p) {
      auto it = pending_.find(expected);
      if (it == pending_.end()) {
        // A new hole: every position in it was handed out before it was
        // seen, so one bound serves the whole hole and it settles at once
        // (one position a poll would take a rolled-back batch minutes to pass).
        for (auto q = expected; q < p; ++q) {
          pending_.emplace(q, unbounded);
        }
        return {used, expected - 1, true};
      }
      if (it->second == unbounded) {
        return {used, expected - 1, true};
      }
      if (xmin < it->second) {
        return {used, expected - 1, false};  // its writer may still be running
      }
      pending_.erase(it);  // rolled back: that position will never appear
      ++expected;
    }
    pending_.erase(p);  // it was a late commit, not a hole
    expected = p + 1;
    ++used;
  }
  // Gaps behind the position are settled either way.
  pending_.erase(pending_.begin(), pending_.lower_bound(expected));
  return {used, expected - 1, false};
}

void gap_tracker::bound(std::uint64_t next_xid) {
  for (auto& [pos, b] : pending_) {
    if (b == unbounded) {
      b = next_xid;
    }
  }
}

log_reader::log_reader(std::shared_ptr<db::pool> db, std::int64_t position) : db_(std::move(db)), position_(position) {}

void log_reader::rewind(std::int64_t position) {
  position_ = position;
  gaps_ = gap_tracker{};
}

asio::awaitable<boost::system::result<std::vector<event>>> log_reader::next(int limit) {
  db::query q{&read_stmt, {std::to_string(position_), std::to_string(limit)}};
  auto r = co_await db_->execute_one(std::move(q));
  if (!r) {
    co_return r.error();
  }
  std::vector<event> out;
  if (r->size() == 0) {
    co_return out;
  }
  std::vector<std::int64_t> positions;
  positions.reserve(static_cast<std::size_t>(r->size()));
  for (int i = 0; i < r->size(); ++i) {
    positions.push_back(r->integer(i, 1));
  }
  auto step = gaps_.advance(position_, positions, to_u64(r->text(0, 0)));
  out.reserve(step.usable);
  for (int i = 0; i < static_cast<int>(step.usable); ++i) {
    out.push_back(read_event(*r, i, 1));  // after the snapshot's xmin
  }
  if (step.needs_bound) {
    // Taken after the read, so above the id of any writer that held a gap
    // then. If it fails the gap stays unbounded and the next read asks again.
    db::query b{&next_xid_stmt, {}};
    auto next = co_await db_->execute_one(std::move(b));
    if (next) {
      gaps_.bound(to_u64(next->text(0, 0)));
    }
  }
  // Moved only once the rows are the caller's: while this waited, position()
  // must not yet count rows the caller has not received (the Kafka relay
  // takes it as acknowledged once nothing is in flight).
  position_ = step.position;
  co_return out;
}

asio::awaitable<boost::system::result<std::vector<event>>> user_events_after(db::pool& db, std::string user,
                                                                            std::int64_t after, int limit) {
  db::query q{&user_events_stmt, {std::move(user), std::to_string(after), std::to_string(limit)}};
  auto r = co_await db.execute_one(std::move(q));
  if (!r) {
    co_return r.error();
  }
  std::vector<event> out;
  out.reserve(static_cast<std::size_t>(r->size()));
  for (int i = 0; i < r->size(); ++i) {
    out.push_back(read_event(*r, i, 0));
  }
  co_return out;
}

asio::awaitable<boost::system::result<user_log_bounds>> user_bounds(db::pool& db, std::string user) {
  db::query q{&user_bounds_stmt, {std::move(user)}};
  auto r = co_await db.execute_one(std::move(q));
  if (!r) {
    co_return r.error();
  }
  co_return user_log_bounds{r->integer(0, 0), r->integer(0, 1)};
}

asio::awaitable<boost::system::result<std::int64_t>> log_end(db::pool& db) {
  db::query q{&log_end_stmt, {}};
  auto r = co_await db.execute_one(std::move(q));
  if (!r) {
    co_return r.error();
  }
  co_return r->integer(0, 0);
}

asio::awaitable<void> pause(std::chrono::milliseconds d) {
  if (d.count() <= 0) {
    co_return;
  }
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<boost::system::result<std::int64_t>> load_checkpoint(db::pool& db, std::string name) {
  db::query q{&load_checkpoint_stmt, {std::move(name)}};
  auto r = co_await db.execute_one(std::move(q));
  if (!r) {
    co_return r.error();
  }
  co_return r->size() == 0 ? std::int64_t{0} : r->integer(0, 0);
}

asio::awaitable<boost::system::result<void>> save_checkpoint(db::pool& db, std::string name, std::int64_t pos) {
  db::query q{&save_checkpoint_stmt, {std::move(name), std::to_string(pos)}};
  auto r = co_await db.execute_one(std::move(q));
  if (!r) {
    co_return r.error();
  }
  co_return boost::system::result<void>{};
}

// Waiters park on their own timers; notify() cancels them on their own
// executors. `mu` guards the set and the generation.
struct event_bus::impl {
  impl(asio::io_context& i, std::shared_ptr<db::pool> d, metrics::registry& m, bus_options o)
      : io(i), db(std::move(d)), metrics(m), opt(o) {}
  asio::io_context& io;
  std::shared_ptr<db::pool> db;
  metrics::registry& metrics;
  bus_options opt;
  struct subscriber {
    std::string name;
    handler h;
    checkpoint_store where;
  };
  std::vector<subscriber> subscribers;
  mutable std::mutex mu;
  std::uint64_t generation = 0;
  std::set<std::shared_ptr<asio::steady_timer>> waiting;
};

event_bus::event_bus(asio::io_context& io, std::shared_ptr<db::pool> db, metrics::registry& m, bus_options o)
    : impl_(std::make_shared<impl>(io, std::move(db), m, o)) {}

event_bus::~event_bus() = default;

void event_bus::subscribe(std::string name, handler h) { subscribe(std::move(name), std::move(h), checkpoint_store{}); }

void event_bus::subscribe(std::string name, handler h, checkpoint_store where) {
  if (!where.load) {
    auto db = impl_->db;
    where.load = [db](std::string n) { return load_checkpoint(*db, std::move(n)); };
    where.save = [db](std::string n, std::int64_t pos) { return save_checkpoint(*db, std::move(n), pos); };
  }
  impl_->subscribers.push_back({std::move(name), std::move(h), std::move(where)});
}

void event_bus::notify() {
  std::lock_guard lock(impl_->mu);
  ++impl_->generation;
  for (const auto& t : impl_->waiting) {
    asio::post(t->get_executor(), [t] { t->cancel(); });
  }
}

std::uint64_t event_bus::generation() const {
  std::lock_guard lock(impl_->mu);
  return impl_->generation;
}

asio::awaitable<void> event_bus::wait(std::uint64_t seen, std::chrono::milliseconds poll) {
  auto interval = poll.count() > 0 ? poll : impl_->opt.poll_interval;
  auto timer = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor, interval);
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->generation != seen) {
      co_return;
    }
    impl_->waiting.insert(timer);
  }
  co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
  std::lock_guard lock(impl_->mu);
  impl_->waiting.erase(timer);
}

asio::awaitable<void> event_bus::wait_for_log(std::uint64_t seen, const log_reader& r, std::chrono::milliseconds idle) {
  auto poll = r.waiting_on_gap() ? impl_->opt.poll_interval : (idle.count() > 0 ? idle : impl_->opt.idle_poll);
  co_await wait(seen, poll);
}

namespace {

asio::awaitable<void> run_subscriber(event_bus* bus, std::shared_ptr<event_bus::impl> st, std::string name,
                                     event_bus::handler h, event_bus::checkpoint_store where) {
  auto& delivered = st->metrics.get_counter("todo_event_bus_delivered_total",
                                            "Events delivered to in-process subscribers", metrics::label("subscriber", name));
  auto& failures = st->metrics.get_counter("todo_event_bus_failures_total",
                                           "Subscriber batches that failed and will be retried",
                                           metrics::label("subscriber", name));
  std::int64_t checkpoint = 0;
  for (;;) {
    auto load = where.load(name);
    auto loaded = co_await std::move(load);
    if (loaded) {
      checkpoint = *loaded;
      break;
    }
    co_await pause(st->opt.poll_interval);
  }
  log_reader reader(st->db, checkpoint);
  for (;;) {
    auto seen = bus->generation();
    auto batch = co_await reader.next(st->opt.batch);
    if (!batch) {
      co_await pause(st->opt.poll_interval);
      continue;
    }
    if (batch->empty()) {
      co_await bus->wait_for_log(seen, reader);
      continue;
    }
    auto count = batch->size();
    auto handled = co_await h(std::move(*batch));
    if (!handled) {
      failures.inc();
      log::warn("bus", "subscriber failed; will retry", {{"subscriber", std::string_view(name)},
                                                          {"error", handled.error().message()}});
      reader.rewind(checkpoint);
      co_await pause(st->opt.poll_interval);
      continue;
    }
    delivered.inc(count);
    auto save = where.save(name, reader.position());
    auto saved = co_await std::move(save);
    if (saved) {
      checkpoint = reader.position();
    }
  }
}

// Commits by other replicas: nobody here calls notify() for them, so one
// query per interval looks at the end of the log for everyone.
asio::awaitable<void> watch(event_bus* bus, std::shared_ptr<event_bus::impl> st) {
  std::int64_t last = -1;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    auto end = co_await log_end(*st->db);
    if (end && *end != last) {
      if (last >= 0) {
        bus->notify();
      }
      last = *end;
    }
    timer.expires_after(st->opt.poll_interval);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace

void event_bus::start() {
  for (auto& s : impl_->subscribers) {
    asio::co_spawn(asio::make_strand(impl_->io), run_subscriber(this, impl_, s.name, s.h, s.where),
                   [name = s.name](std::exception_ptr e) {
                     if (e) {
                       log::error("bus", "subscriber stopped", {{"subscriber", std::string_view(name)}});
                     }
                   });
  }
  asio::co_spawn(asio::make_strand(impl_->io), watch(this, impl_), [](std::exception_ptr e) {
    if (e) {
      log::error("bus", "log watcher stopped", {});
    }
  });
}

}  // namespace todo
