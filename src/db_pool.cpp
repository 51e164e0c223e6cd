#include "pg_connection.hpp"

#include "todo/log.hpp"
#include "todo/metrics.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <deque>
#include <mutex>

namespace todo::db {

namespace {
// A caller waiting for a connection. The timer fires at the deadline, or is
// cancelled (on the waiter's own executor) once a connection is handed over.
struct waiter {
  explicit waiter(asio::any_io_executor ex, deadline until) : timer(ex, until) {}
  asio::steady_timer timer;
  std::unique_ptr<connection> conn;
  bool may_open = false;  // a slot was freed: open a connection yourself
};
}  // namespace

struct pool::impl {
  impl(asio::io_context& i, pool_options o, metrics::registry& m)
      : ioc(i),
        opt(std::move(o)),
        blocking(std::make_unique<asio::thread_pool>(1)),
        acquire_timeouts(m.get_counter("todo_db_pool_acquire_timeouts_total",
                                       "Callers that waited for a database connection past their deadline")),
        rejected(m.get_counter("todo_db_pool_rejected_total",
                               "Callers refused at once because DB_MAX_WAITERS callers were already waiting")),
        connect_failures(m.get_counter("todo_db_connect_failures_total", "Failed attempts to open a database connection")),
        acquire_wait(m.get_histogram("todo_db_pool_acquire_seconds", "Time to obtain a database connection")),
        query_time(m.get_histogram("todo_db_execute_seconds", "Round trip of one pipeline to the database")) {}

  asio::io_context& ioc;
  pool_options opt;
  // Runs PQconnectStartParams. Guarded by `mu`: shutdown() takes it away.
  std::unique_ptr<asio::thread_pool> blocking;
  metrics::counter& acquire_timeouts;
  metrics::counter& rejected;
  metrics::counter& connect_failures;
  metrics::histogram& acquire_wait;
  metrics::histogram& query_time;

  mutable std::mutex mu;
  std::vector<std::unique_ptr<connection>> idle;
  std::size_t open = 0;  // leased + idle + being opened
  std::deque<std::shared_ptr<waiter>> waiters;
};

std::shared_ptr<pool> pool::create(asio::io_context& ioc, pool_options o, metrics::registry& m) {
  std::shared_ptr<pool> p(new pool(ioc, std::move(o), m));
  std::weak_ptr<pool> weak = p;
  auto gauge = [weak](auto pick) {
    return [weak, pick]() -> double {
      auto self = weak.lock();
      return self ? static_cast<double>(pick(self->stats())) : 0.0;
    };
  };
  m.add_gauge("todo_db_pool_connections", "Database connections by state", metrics::label("state", "idle"),
              gauge([](const pool_stats& s) { return s.idle; }));
  m.add_gauge("todo_db_pool_connections", "Database connections by state", metrics::label("state", "in_use"),
              gauge([](const pool_stats& s) { return s.open - s.idle; }));
  m.add_gauge("todo_db_pool_size", "Configured maximum of database connections", {},
              gauge([](const pool_stats& s) { return s.size; }));
  m.add_gauge("todo_db_pool_waiting", "Callers waiting for a database connection", {},
              gauge([](const pool_stats& s) { return s.waiting; }));
  return p;
}

pool::pool(asio::io_context& ioc, pool_options o, metrics::registry& m)
    : impl_(std::make_unique<impl>(ioc, std::move(o), m)) {}

pool::~pool() {
  if (impl_->blocking) {
    impl_->blocking->join();
  }
}

void pool::shutdown() {
  std::unique_ptr<asio::thread_pool> blocking;
  {
    std::lock_guard lock(impl_->mu);
    blocking = std::move(impl_->blocking);
  }
  // Stops the thread, lets a call under way finish, then destroys the
  // handlers it will never run. Such a handler, the completion of a
  // connection attempt, owns the new PGconn and the awaiting coroutine
  // frames, which own this pool through acquire(): kept, that cycle would
  // never be freed. Destroyed, the connection is closed here and the frames
  // go to the stopped io_context, which destroys them with itself.
  blocking.reset();
}

const pool_options& pool::options() const { return impl_->opt; }

pool_stats pool::stats() const {
  std::lock_guard lock(impl_->mu);
  return {impl_->opt.size, impl_->open, impl_->idle.size(), impl_->waiters.size()};
}

asio::awaitable<boost::system::result<lease>> pool::acquire() {
  auto& m = *impl_;
  auto started = std::chrono::steady_clock::now();
  auto until = started + m.opt.acquire_timeout;
  auto self = shared_from_this();
  auto done = [&](std::unique_ptr<connection> c) {
    m.acquire_wait.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    return lease(self, std::move(c));
  };
  for (;;) {
    std::unique_ptr<connection> c;
    bool open_new = false;
    asio::any_io_executor blocking;
    std::shared_ptr<waiter> w;
    {
      std::lock_guard lock(m.mu);
      if (!m.idle.empty()) {
        c = std::move(m.idle.back());
        m.idle.pop_back();
      } else if (m.open < m.opt.size) {
        if (!m.blocking) {
          co_return make_error_code(errc::unavailable);  // shut down: nothing connects any more
        }
        ++m.open;
        open_new = true;
        blocking = m.blocking->get_executor();
      } else if (m.waiters.size() >= m.opt.max_waiters) {
        // Shed at once: the queue is as long as the pool may drain in time.
        m.rejected.inc();
        co_return make_error_code(errc::timeout);
      } else {
        auto ex = co_await asio::this_coro::executor;
        w = std::make_shared<waiter>(ex, until);
        m.waiters.push_back(w);
      }
    }
    if (c) {
      if (c->healthy()) {
        co_return done(std::move(c));
      }
      c.reset();
      std::lock_guard lock(m.mu);
      --m.open;
      continue;
    }
    if (open_new) {
      auto r = co_await connection::open(m.ioc.get_executor(), std::move(blocking), m.opt);
      if (!r) {
        m.connect_failures.inc();
        release(nullptr);
        co_return r.error();
      }
      co_return done(std::move(*r));
    }
    co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    std::lock_guard lock(m.mu);
    if (w->conn) {
      co_return done(std::move(w->conn));
    }
    if (w->may_open) {
      continue;  // a slot was freed; try again from the top
    }
    std::erase(m.waiters, w);
    m.acquire_timeouts.inc();
    co_return make_error_code(errc::timeout);
  }
}

void pool::release(std::unique_ptr<connection> c) {
  auto& m = *impl_;
  std::lock_guard lock(m.mu);
  bool reusable = c && !c->broken() && !c->in_transaction();
  if (!reusable) {
    --m.open;
    c.reset();
  }
  if (!m.waiters.empty()) {
    auto w = std::move(m.waiters.front());
    m.waiters.pop_front();
    if (reusable) {
      w->conn = std::move(c);
    } else {
      w->may_open = true;
    }
    // Cancel on the waiter's executor: the timer belongs to its strand.
    asio::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
    return;
  }
  if (reusable) {
    m.idle.push_back(std::move(c));
  }
}

asio::awaitable<boost::system::result<std::vector<rows>>> pool::execute(std::vector<query> qs) {
  auto l = co_await acquire();
  if (!l) {
    co_return l.error();
  }
  co_return co_await l->execute(std::move(qs));
}

asio::awaitable<boost::system::result<rows>> pool::execute_one(query q) {
  std::vector<query> qs;
  qs.push_back(std::move(q));
  auto r = co_await execute(std::move(qs));
  if (!r) {
    co_return r.error();
  }
  co_return std::move(r->front());
}

asio::awaitable<boost::system::result<void>> pool::ping() {
  static const statement ping_stmt{"ping", "SELECT 1"};
  query q{&ping_stmt, {}};
  auto r = co_await execute_one(std::move(q));
  if (!r) {
    co_return r.error();
  }
  co_return boost::system::result<void>{};
}

lease::lease(std::shared_ptr<pool> p, std::unique_ptr<connection> c) : pool_(std::move(p)), conn_(std::move(c)) {}

lease::lease(lease&& o) noexcept = default;

lease::~lease() {
  if (pool_ && conn_) {
    pool_->release(std::move(conn_));
  }
}

asio::awaitable<boost::system::result<std::vector<rows>>> lease::execute(std::vector<query> qs) {
  auto started = std::chrono::steady_clock::now();
  // The server's statement_timeout fires first and keeps the connection;
  // ours covers a server that stopped answering.
  auto r = co_await conn_->execute(qs, started + pool_->options().statement_timeout + std::chrono::seconds(1));
  pool_->impl_->query_time.observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  co_return r;
}

asio::awaitable<boost::system::result<void>> lease::run_script(std::string sql) {
  // Migrations may legitimately run longer than one request's statement.
  co_return co_await conn_->run_script(sql, std::chrono::steady_clock::now() + std::chrono::minutes(5));
}

}  // namespace todo::db
