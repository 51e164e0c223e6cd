// The event log, its gap-safe reader and the in-process bus, against a real
// PostgreSQL.
#include "pg_fixture.hpp"

#include "todo/errors.hpp"
#include "todo/event_log.hpp"
#include "todo/events.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <map>

using namespace todo;
namespace asio = boost::asio;

namespace {

const db::statement append_stmt{"it_append", "WITH changed AS (SELECT 1), " APPEND_EVENT_FROM("changed")};
const db::statement begin_stmt{"it_ev_begin", "BEGIN"};
const db::statement rollback_stmt{"it_ev_rollback", "ROLLBACK"};
const db::statement commit_stmt{"it_ev_commit", "COMMIT"};
const db::statement max_pos_stmt{"it_max_pos", "SELECT coalesce(max(pos), 0) FROM events"};
const db::statement xact_id_stmt{"it_xact_id", "SELECT pg_current_xact_id()::text"};

db::query append(const std::string& user, const std::string& subject) {
  return {&append_stmt,
          {user, uuid::v7(), "com.todo.task.updated", subject, time::format(time::now()), "s", R"({"task":{}})"}};
}

asio::awaitable<boost::system::result<std::vector<db::rows>>> exec(std::shared_ptr<db::pool> p, std::vector<db::query> qs) {
  co_return co_await p->execute(std::move(qs));
}

std::int64_t max_pos(test::pg_fixture& f) {
  std::vector<db::query> qs;
  qs.push_back({&max_pos_stmt, {}});
  return test::run(f.io, exec(f.pool, std::move(qs))).value()[0].integer(0, 0);
}

void write(test::pg_fixture& f, const std::string& user, int n) {
  for (int i = 0; i < n; ++i) {
    std::vector<db::query> qs;
    qs.push_back(append(user, "task-" + std::to_string(i)));
    REQUIRE(test::run(f.io, exec(f.pool, std::move(qs))).has_value());
  }
}

asio::awaitable<std::vector<event>> read_all(std::shared_ptr<log_reader> r) {
  std::vector<event> out;
  for (;;) {
    auto batch = co_await r->next(100);
    if (!batch || batch->empty()) {
      co_return out;
    }
    for (auto& e : *batch) {
      out.push_back(std::move(e));
    }
  }
}

// Runs the io_context until `done` or the deadline.
template <class Pred>
bool run_until(asio::io_context& io, Pred done, std::chrono::seconds limit = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  io.restart();
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(10));
  }
  return done();
}

}  // namespace

TEST_CASE("appended events get gap-free per-user sequences", "[events]") {
  test::pg_fixture f;
  auto start = max_pos(f);
  auto alice = test::pg_fixture::fresh_user();
  auto bob = test::pg_fixture::fresh_user();
  write(f, alice, 3);
  write(f, bob, 2);
  write(f, alice, 2);
  auto reader = std::make_shared<log_reader>(f.pool, start);
  auto events = test::run(f.io, read_all(reader));
  std::map<std::string, std::vector<std::int64_t>> seqs;
  for (const auto& e : events) {
    seqs[e.user].push_back(e.seq);
  }
  CHECK(seqs[alice] == std::vector<std::int64_t>{1, 2, 3, 4, 5});
  CHECK(seqs[bob] == std::vector<std::int64_t>{1, 2});
}

namespace {
// Holds an uncommitted event in one transaction, commits another after it,
// and reports what a reader sees at each step. With `other_id_first` the
// committing transaction takes its id before the held one: the held writer's
// id is then above the xmax of the snapshot that finds its gap.
asio::awaitable<std::string> reader_waits_for_uncommitted(std::shared_ptr<db::pool> p, std::int64_t start,
                                                          bool commit_first, bool other_id_first = false) {
  auto held = co_await p->acquire();
  if (!held) {
    co_return "acquire failed";
  }
  auto other_tx = co_await p->acquire();
  if (!other_tx) {
    co_return "acquire failed";
  }
  // Other tests write to the same log meanwhile: only these two users count.
  const auto held_user = "it-held-" + uuid::v7();
  const auto other_user = "it-other-" + uuid::v7();
  std::vector<db::query> other_begin;
  other_begin.push_back({&begin_stmt, {}});
  if (other_id_first) {
    other_begin.push_back({&xact_id_stmt, {}});
  }
  auto began = co_await other_tx->execute(std::move(other_begin));
  if (!began) {
    co_return "begin failed";
  }
  std::vector<db::query> open;
  open.push_back({&begin_stmt, {}});
  open.push_back({&xact_id_stmt, {}});
  open.push_back(append(held_user, "held"));
  auto opened = co_await held->execute(std::move(open));
  if (!opened) {
    co_return "begin failed";
  }
  std::vector<db::query> other;
  other.push_back(append(other_user, "later"));
  other.push_back({&commit_stmt, {}});
  auto later = co_await other_tx->execute(std::move(other));
  if (!later) {
    co_return "second write failed";
  }
  log_reader reader(p, start);
  // Several reads while the writer runs: a gap must hold on each, not only
  // on the read that found it.
  for (int i = 0; i < 5; ++i) {
    auto first = co_await reader.next(100);
    if (!first) {
      co_return "the reader failed";
    }
    for (const auto& e : *first) {
      if (e.user == held_user || e.user == other_user) {
        co_return "the reader passed an uncommitted position";
      }
    }
  }
  std::vector<db::query> finish;
  finish.push_back({commit_first ? &commit_stmt : &rollback_stmt, {}});
  auto finished = co_await held->execute(std::move(finish));
  if (!finished) {
    co_return "finish failed";
  }
  std::vector<event> seen;
  for (int i = 0; i < 50 && seen.size() < (commit_first ? 2u : 1u); ++i) {
    auto batch = co_await reader.next(100);
    if (batch) {
      for (auto& e : *batch) {
        if (e.user == held_user || e.user == other_user) {
          seen.push_back(std::move(e));
        }
      }
    }
  }
  if (commit_first) {
    bool ok = seen.size() == 2 && seen[0].subject == "held" && seen[1].subject == "later";
    co_return ok ? "ok" : "wrong order or count";
  }
  co_return seen.size() == 1 && seen[0].subject == "later" ? "ok" : "the rolled-back gap was never passed";
}
}  // namespace

namespace {
struct position_watch {
  std::shared_ptr<log_reader> reader;
  std::int64_t start = 0;
  bool returned = false;
  bool moved_early = false;
};

// Looks at the reader's position at every turn of the io_context until
// next() has returned.
asio::awaitable<void> watch_position(std::shared_ptr<position_watch> w) {
  while (!w->returned) {
    if (w->reader->position() != w->start) {
      w->moved_early = true;
    }
    auto ex = co_await asio::this_coro::executor;
    co_await asio::post(ex, asio::use_awaitable);
  }
}

// A committed event, then a gap (a held writer) with a committed event after
// it: next() returns the first and waits for the gap's bound before it does.
asio::awaitable<std::string> position_counts_only_returned_rows(std::shared_ptr<db::pool> p, std::int64_t start) {
  auto held = co_await p->acquire();
  if (!held) {
    co_return "acquire failed";
  }
  const auto user = "it-watch-" + uuid::v7();
  std::vector<db::query> before;
  before.push_back(append(user, "before"));
  auto first = co_await p->execute(std::move(before));
  if (!first) {
    co_return "first write failed";
  }
  std::vector<db::query> open;
  open.push_back({&begin_stmt, {}});
  open.push_back({&xact_id_stmt, {}});
  open.push_back(append(user + "-held", "held"));
  auto opened = co_await held->execute(std::move(open));
  if (!opened) {
    co_return "begin failed";
  }
  std::vector<db::query> after;
  after.push_back(append(user + "-after", "after"));
  auto second = co_await p->execute(std::move(after));
  if (!second) {
    co_return "second write failed";
  }
  auto w = std::make_shared<position_watch>();
  w->reader = std::make_shared<log_reader>(p, start);
  w->start = start;
  auto ex = co_await asio::this_coro::executor;
  asio::co_spawn(ex, watch_position(w), asio::detached);
  auto batch = co_await w->reader->next(100);
  w->returned = true;
  std::vector<db::query> finish;
  finish.push_back({&rollback_stmt, {}});
  co_await held->execute(std::move(finish));
  if (!batch) {
    co_return "the reader failed";
  }
  bool got_before = std::any_of(batch->begin(), batch->end(), [&](const event& e) { return e.user == user; });
  if (!got_before || !w->reader->waiting_on_gap()) {
    co_return "the read did not return the first event and stop at the gap";
  }
  co_return w->moved_early ? "position() counted rows before next() returned them" : "ok";
}
}  // namespace

TEST_CASE("a reader's position counts only the rows it has returned", "[events][gaps]") {
  // The Kafka relay acknowledges up to position() once nothing is in
  // flight; rows counted while next() still waits (for a gap's bound) would
  // be acknowledged unsent.
  test::pg_fixture f({.size = 4});
  CHECK(test::run(f.io, position_counts_only_returned_rows(f.pool, max_pos(f))) == "ok");
}

TEST_CASE("a reader never passes a position whose writer has not finished", "[events][gaps]") {
  test::pg_fixture f({.size = 4});
  SECTION("late commit: delivered first, in position order") {
    CHECK(test::run(f.io, reader_waits_for_uncommitted(f.pool, max_pos(f), true)) == "ok");
  }
  SECTION("rollback: the hole is skipped once settled") {
    CHECK(test::run(f.io, reader_waits_for_uncommitted(f.pool, max_pos(f), false)) == "ok");
  }
  SECTION("a writer whose id is newer than every finished one: its late commit is delivered") {
    CHECK(test::run(f.io, reader_waits_for_uncommitted(f.pool, max_pos(f), true, true)) == "ok");
  }
}

namespace {
struct recorder {
  std::vector<event> seen;
  int fail_next = 0;
};

asio::awaitable<boost::system::result<void>> record(std::shared_ptr<recorder> r, std::vector<event> batch) {
  if (r->fail_next > 0) {
    --r->fail_next;
    co_return todo::make_error_code(todo::errc::unavailable);
  }
  for (auto& e : batch) {
    r->seen.push_back(std::move(e));
  }
  co_return boost::system::result<void>{};
}

event_bus::handler recording(std::shared_ptr<recorder> r) {
  return [r](std::vector<event> b) { return record(r, std::move(b)); };
}

const db::statement set_checkpoint{"it_set_checkpoint",
                                   "INSERT INTO consumer_checkpoints (name, pos) VALUES ($1, $2)"};
}  // namespace

TEST_CASE("subscribers get every event once, in order, and resume from their checkpoint", "[events][bus]") {
  test::pg_fixture f;
  auto name = "it-sub-" + uuid::v7();
  auto user = test::pg_fixture::fresh_user();
  {
    std::vector<db::query> qs;
    qs.push_back({&set_checkpoint, {name, std::to_string(max_pos(f))}});
    REQUIRE(test::run(f.io, exec(f.pool, std::move(qs))).has_value());
  }
  write(f, user, 5);

  auto first = std::make_shared<recorder>();
  first->fail_next = 1;  // the first batch fails and must come again
  {
    event_bus bus(f.io, f.pool, f.metrics, {.poll_interval = std::chrono::milliseconds(20)});
    bus.subscribe(name, recording(first));
    bus.start();
    auto mine = [&] {
      return std::count_if(first->seen.begin(), first->seen.end(), [&](const event& e) { return e.user == user; });
    };
    REQUIRE(run_until(f.io, [&] { return mine() == 5; }));
    write(f, user, 2);
    bus.notify();
    REQUIRE(run_until(f.io, [&] { return mine() == 7; }));
  }
  std::vector<std::int64_t> seqs;
  for (const auto& e : first->seen) {
    if (e.user == user) {
      seqs.push_back(e.seq);
    }
  }
  CHECK(seqs == std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7});

  // A new process: only what came after the checkpoint.
  write(f, user, 1);
  test::pg_fixture g;
  auto second = std::make_shared<recorder>();
  event_bus bus2(g.io, g.pool, g.metrics, {.poll_interval = std::chrono::milliseconds(20)});
  bus2.subscribe(name, recording(second));
  bus2.start();
  REQUIRE(run_until(g.io, [&] {
    return std::any_of(second->seen.begin(), second->seen.end(), [&](const event& e) { return e.user == user; });
  }));
  run_until(g.io, [] { return false; }, std::chrono::seconds(1));
  std::vector<std::int64_t> resumed;
  for (const auto& e : second->seen) {
    if (e.user == user) {
      resumed.push_back(e.seq);
    }
  }
  CHECK(resumed == std::vector<std::int64_t>{8});
}
