// The database layer against a real PostgreSQL.
#include "pg_fixture.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <thread>

using namespace todo;
namespace asio = boost::asio;

namespace {

const db::statement select_sum{"it_sum", "SELECT $1::int + $2::int"};
const db::statement create_scratch{"it_scratch",
                                   "CREATE TABLE IF NOT EXISTS it_scratch (k text PRIMARY KEY, v int NOT NULL)"};
const db::statement insert_scratch{"it_scratch_insert", "INSERT INTO it_scratch (k, v) VALUES ($1, $2)"};
const db::statement count_scratch{"it_scratch_count", "SELECT count(*) FROM it_scratch WHERE k LIKE $1 || '%'"};
const db::statement fail_stmt{"it_fail", "SELECT 1 / $1::int"};
const db::statement sleep_stmt{"it_sleep", "SELECT pg_sleep($1::float8)"};
const db::statement begin_stmt{"it_begin", "BEGIN"};

asio::awaitable<boost::system::result<db::rows>> one(db::pool& p, const db::statement& s, std::vector<db::param> ps) {
  db::query q{&s, std::move(ps)};
  co_return co_await p.execute_one(std::move(q));
}

asio::awaitable<boost::system::result<std::vector<db::rows>>> many(db::pool& p, std::vector<db::query> qs) {
  co_return co_await p.execute(std::move(qs));
}

}  // namespace

TEST_CASE("statements run with parameters and stay prepared", "[db]") {
  test::pg_fixture f;
  for (int i = 0; i < 3; ++i) {
    auto r = test::run(f.io, one(*f.pool, select_sum, {"2", std::to_string(i)}));
    REQUIRE(r.has_value());
    CHECK(r->integer(0, 0) == 2 + i);
  }
  auto stats = f.pool->stats();
  CHECK(stats.open >= 1);
  CHECK(stats.idle == stats.open);
}

TEST_CASE("a pipeline is one transaction: a failure rolls back the statements before it", "[db]") {
  test::pg_fixture f;
  REQUIRE(test::run(f.io, one(*f.pool, create_scratch, {})).has_value());
  auto prefix = test::pg_fixture::fresh_user();
  std::vector<db::query> qs;
  qs.push_back({&insert_scratch, {prefix + "-a", "1"}});
  qs.push_back({&fail_stmt, {"0"}});  // division by zero
  auto r = test::run(f.io, many(*f.pool, std::move(qs)));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == db::errc::failed);
  auto n = test::run(f.io, one(*f.pool, count_scratch, {prefix}));
  REQUIRE(n.has_value());
  CHECK(n->integer(0, 0) == 0);

  std::vector<db::query> ok;
  ok.push_back({&insert_scratch, {prefix + "-b", "1"}});
  ok.push_back({&insert_scratch, {prefix + "-c", "2"}});
  REQUIRE(test::run(f.io, many(*f.pool, std::move(ok))).has_value());
  n = test::run(f.io, one(*f.pool, count_scratch, {prefix}));
  CHECK(n->integer(0, 0) == 2);
}

TEST_CASE("a unique violation is its own error and leaves the connection usable", "[db]") {
  test::pg_fixture f({.size = 1});
  REQUIRE(test::run(f.io, one(*f.pool, create_scratch, {})).has_value());
  auto key = test::pg_fixture::fresh_user();
  REQUIRE(test::run(f.io, one(*f.pool, insert_scratch, {key, "1"})).has_value());
  auto dup = test::run(f.io, one(*f.pool, insert_scratch, {key, "2"}));
  REQUIRE_FALSE(dup.has_value());
  CHECK(dup.error() == db::errc::unique_violation);
  auto after = test::run(f.io, one(*f.pool, select_sum, {"1", "1"}));
  REQUIRE(after.has_value());
  CHECK(f.pool->stats().open == 1);
}

TEST_CASE("a dead server answers unavailable within the connect timeout", "[db]") {
  boost::asio::io_context io;
  metrics::registry m;
  auto p = db::pool::create(io, {.conninfo = "postgresql://todo@127.0.0.1:1/todo", .connect_timeout = std::chrono::milliseconds(500)}, m);
  auto started = std::chrono::steady_clock::now();
  auto r = test::run(io, one(*p, select_sum, {"1", "1"}));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == db::errc::unavailable);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));  // bounded, not a benchmark
  CHECK(p->stats().open == 0);
}

namespace {
asio::awaitable<std::string> exhaust(std::shared_ptr<db::pool> p) {
  auto held = co_await p->acquire();
  if (!held) {
    co_return "first acquire failed";
  }
  auto second = co_await p->acquire();
  if (second) {
    co_return "second acquire succeeded while the only connection was leased";
  }
  co_return second.error() == db::errc::timeout ? "timeout" : second.error().message();
}

asio::awaitable<std::string> handoff(std::shared_ptr<db::pool> p) {
  auto held = co_await p->acquire();
  if (!held) {
    co_return "first acquire failed";
  }
  // Release the lease shortly, from a timer, while a second caller waits.
  auto ex = co_await asio::this_coro::executor;
  auto lease_ptr = std::make_shared<db::lease>(std::move(*held));
  auto timer = std::make_shared<asio::steady_timer>(ex, std::chrono::milliseconds(50));
  timer->async_wait([lease_ptr, timer](boost::system::error_code) mutable { lease_ptr.reset(); });
  lease_ptr.reset();  // the timer's copy keeps it alive until it fires
  auto second = co_await p->acquire();
  co_return second ? "ok" : second.error().message();
}
}  // namespace

TEST_CASE("an exhausted pool times out callers instead of queueing forever", "[db]") {
  test::pg_fixture f({.size = 1, .acquire_timeout = std::chrono::milliseconds(200)});
  CHECK(test::run(f.io, exhaust(f.pool)) == "timeout");
  CHECK(f.pool->stats().waiting == 0);
  CHECK(test::run(f.io, handoff(f.pool)) == "ok");
}

namespace {
asio::awaitable<bool> leave_transaction_open(std::shared_ptr<db::pool> p) {
  auto l = co_await p->acquire();
  if (!l) {
    co_return false;
  }
  std::vector<db::query> qs;
  qs.push_back({&begin_stmt, {}});
  auto r = co_await l->execute(std::move(qs));
  co_return static_cast<bool>(r);
}
}  // namespace

TEST_CASE("a connection returned inside a transaction is not reused", "[db]") {
  test::pg_fixture f({.size = 2});
  REQUIRE(test::run(f.io, leave_transaction_open(f.pool)));
  CHECK(f.pool->stats().idle == 0);
  CHECK(f.pool->stats().open == 0);
}

TEST_CASE("a statement past statement_timeout fails as a timeout", "[db]") {
  test::pg_fixture f({.size = 1, .statement_timeout = std::chrono::milliseconds(200)});
  auto r = test::run(f.io, one(*f.pool, sleep_stmt, {"2"}));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == db::errc::timeout);
  auto after = test::run(f.io, one(*f.pool, select_sum, {"1", "2"}));
  REQUIRE(after.has_value());
  CHECK(after->integer(0, 0) == 3);
}

TEST_CASE("migrations run concurrently apply once", "[db][migrations]") {
  test::pg_fixture f;
  boost::asio::io_context io;
  metrics::registry m;
  auto a = db::pool::create(io, {.conninfo = test::database_url()}, m);
  auto b = db::pool::create(io, {.conninfo = test::database_url()}, m);
  auto fa = asio::co_spawn(asio::make_strand(io), migrate(*a), asio::use_future);
  auto fb = asio::co_spawn(asio::make_strand(io), migrate(*b), asio::use_future);
  io.run();
  CHECK(fa.get().has_value());
  CHECK(fb.get().has_value());
  static const db::statement count{"it_migrations", "SELECT count(*), count(DISTINCT version) FROM schema_migrations"};
  auto r = test::run(f.io, one(*f.pool, count, {}));
  REQUIRE(r.has_value());
  CHECK(r->integer(0, 0) == static_cast<std::int64_t>(migrations().size()));
  CHECK(r->integer(0, 1) == r->integer(0, 0));
}

namespace {
// Holds PQconnectStartParams on the pool's connecting thread: libpq opens
// the service file (PGSERVICEFILE) there, and a FIFO's open waits for a
// writer. Once let through it reads an empty file, and the attempt fails.
struct connect_gate {
  connect_gate() {
    char tmpl[] = "/tmp/todo-gate.XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    path = dir + "/service";
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    ::setenv("PGSERVICEFILE", path.c_str(), 1);
  }
  ~connect_gate() {
    ::unsetenv("PGSERVICEFILE");
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
  }
  // False while nobody waits in the gate.
  bool open() const {
    int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd < 0) {
      return false;
    }
    ::close(fd);
    return true;
  }
  std::string dir;
  std::string path;
};

// True once the thread sleeps: for a thread that only calls pool::shutdown(),
// it is joining the connecting thread, so that thread is stopped.
bool sleeping(pid_t tid) {
  std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  std::getline(stat, line);
  auto paren = line.rfind(')');
  return paren != std::string::npos && line.compare(paren, 3, ") S") == 0;
}

// What acquire() answered (a lease is returned at once).
asio::awaitable<boost::system::error_code> try_acquire(std::shared_ptr<db::pool> p) {
  auto l = co_await p->acquire();
  co_return l ? boost::system::error_code{} : l.error();
}

bool eventually(std::chrono::milliseconds timeout, const std::function<bool()>& done) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) {
      return false;
    }
    std::this_thread::yield();
  }
  return true;
}
}  // namespace

TEST_CASE("a connection attempt under way at shutdown is freed along with the pool", "[db]") {
  connect_gate gate;
  std::weak_ptr<db::pool> weak;
  {
    boost::asio::io_context io;
    metrics::registry m;
    auto p = db::pool::create(io, {.conninfo = "service=todo_gate"}, m);
    weak = p;
    asio::co_spawn(asio::make_strand(io), try_acquire(p), [](std::exception_ptr, boost::system::error_code) {});
    io.poll();  // acquire() now awaits PQconnectStartParams, as at a SIGTERM right after start
    std::atomic<pid_t> tid{0};
    std::atomic<bool> stopped{false};
    std::thread stopper([&] {
      tid = ::gettid();
      p->shutdown();
      stopped = true;
    });
    // Let the attempt finish only after shutdown() has stopped the thread:
    // its completion is then never run.
    CHECK(eventually(std::chrono::seconds(10), [&] { return stopped || (tid != 0 && sleeping(tid) && gate.open()); }));
    while (!stopped) {
      gate.open();  // the check failed: still let the thread go, so that the test ends
    }
    stopper.join();
  }
  CHECK(weak.expired());
}

TEST_CASE("acquire after shutdown answers unavailable instead of connecting", "[db]") {
  boost::asio::io_context io;
  metrics::registry m;
  auto p = db::pool::create(io, {.conninfo = test::database_url()}, m);
  p->shutdown();
  auto f = asio::co_spawn(io, try_acquire(p), asio::use_future);
  io.run_for(std::chrono::seconds(5));
  REQUIRE(f.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
  CHECK(f.get() == db::errc::unavailable);
}
