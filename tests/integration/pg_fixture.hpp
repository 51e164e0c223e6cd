#pragma once
// The real PostgreSQL started by scripts/test.sh (TODO_TEST_DATABASE_URL).
// Never mocked: without it the tests fail loudly.
#include "todo/db.hpp"
#include "todo/metrics.hpp"
#include "todo/migrations.hpp"
#include "todo/uuid.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <cstdlib>
#include <future>
#include <stdexcept>
#include <string>

namespace todo::test {

inline std::string database_url() {
  const char* url = std::getenv("TODO_TEST_DATABASE_URL");
  if (url == nullptr || *url == '\0') {
    throw std::runtime_error("TODO_TEST_DATABASE_URL is not set: run the tests through scripts/test.sh");
  }
  return url;
}

// Runs the io_context until the coroutine completes; other work on it (a
// subscriber, a relay) keeps running alongside and is left pending.
template <class T>
T run(boost::asio::io_context& io, boost::asio::awaitable<T> a) {
  auto f = boost::asio::co_spawn(boost::asio::make_strand(io), std::move(a), boost::asio::use_future);
  io.restart();
  while (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    io.run_one_for(std::chrono::milliseconds(10));
  }
  return f.get();
}

struct pg_fixture {
  boost::asio::io_context io;
  metrics::registry metrics;
  std::shared_ptr<db::pool> pool;

  explicit pg_fixture(db::pool_options o = {}) {
    if (o.conninfo.empty()) {
      o.conninfo = database_url();
    }
    pool = db::pool::create(io, std::move(o), metrics);
    auto migrated = run(io, migrate(*pool));
    if (!migrated) {
      throw std::runtime_error("migrations failed: " + migrated.error().message());
    }
  }

  static std::string fresh_user() { return "it-" + uuid::v7(); }
};

}  // namespace todo::test
