#pragma once
// Asynchronous PostgreSQL access: a bounded pool of libpq connections in
// non-blocking pipeline mode, their sockets watched by Asio. Nothing here
// blocks an I/O thread; every wait has a deadline.
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct pg_result;
namespace boost::asio {
class io_context;
}

namespace todo::metrics {
class registry;
}

namespace todo::db {

namespace asio = boost::asio;

enum class errc {
  unavailable = 1,   // cannot connect, connection lost, server shutting down
  timeout,           // pool exhausted past its deadline or with its queue full, or a statement timed out
  unique_violation,  // SQLSTATE 23505
  serialization,     // SQLSTATE 40001 / 40P01
  failed,            // any other server error: a bug in our SQL or data
};
const boost::system::error_category& category() noexcept;
boost::system::error_code make_error_code(errc e) noexcept;

// A statement with a fixed name, prepared once per connection on first use.
// Instances are static constants; the pool keys on their address.
struct statement {
  std::string_view name;
  std::string_view sql;
};

using param = std::optional<std::string>;  // text format; nullopt is NULL

struct query {
  const statement* stmt;  // prepared once per connection; nullptr: run `text` unprepared
  std::vector<param> params;
  // SQL built per request (listing filters): planned with its values each
  // time, which gives the planner the real selectivity. (Prepared once per
  // connection instead, PostgreSQL soon switches to a generic plan, which
  // was 4 to 5 times slower for a tag filter of a user with many tasks.)
  std::string text;
};

// The text form of a one-dimensional array parameter ($1::text[], ::int8[],
// ...): every element quoted, quotes and backslashes escaped, so any string
// round-trips.
std::string array_literal(const std::vector<std::string>& items);

// The rows of one statement's result (text format).
class rows {
 public:
  rows();
  explicit rows(pg_result* r);
  rows(rows&&) noexcept;
  rows& operator=(rows&&) noexcept;
  ~rows();

  int size() const;
  bool is_null(int row, int col) const;
  std::string_view text(int row, int col) const;
  std::int64_t integer(int row, int col) const;
  bool boolean(int row, int col) const;
  std::int64_t affected() const;  // for INSERT/UPDATE/DELETE

 private:
  pg_result* r_;
};

struct pool_options {
  std::string conninfo;
  std::size_t size = 8;
  std::chrono::milliseconds acquire_timeout{2000};
  // Callers that may wait for a connection at once. Each holds its request
  // (up to a whole body) while it waits: beyond this, excess load is refused
  // at once instead of queueing memory it will time out on anyway.
  std::size_t max_waiters = 256;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds statement_timeout{5000};
  std::string application_name = "todo-server";
};

class connection;
class pool;

// A connection checked out of the pool; returns it when destroyed.
class lease {
 public:
  lease(std::shared_ptr<pool> p, std::unique_ptr<connection> c);
  lease(lease&&) noexcept;
  lease& operator=(lease&&) = delete;
  ~lease();

  // Runs the queries in one pipeline ending in one Sync: one round trip and
  // one implicit transaction, all or nothing. Returns one `rows` per query.
  asio::awaitable<boost::system::result<std::vector<rows>>> execute(std::vector<query> qs);
  // Simple-protocol script (several statements, no parameters): migrations.
  asio::awaitable<boost::system::result<void>> run_script(std::string sql);

 private:
  std::shared_ptr<pool> pool_;
  std::unique_ptr<connection> conn_;
};

struct pool_stats {
  std::size_t size = 0;     // configured maximum
  std::size_t open = 0;     // connections that exist
  std::size_t idle = 0;     // open and not leased
  std::size_t waiting = 0;  // callers waiting for a connection
};

class pool : public std::enable_shared_from_this<pool> {
 public:
  static std::shared_ptr<pool> create(asio::io_context& ioc, pool_options o, metrics::registry& m);
  ~pool();

  asio::awaitable<boost::system::result<lease>> acquire();
  // acquire + execute + release.
  asio::awaitable<boost::system::result<std::vector<rows>>> execute(std::vector<query> qs);
  asio::awaitable<boost::system::result<rows>> execute_one(query q);
  // A round trip to the server: readiness.
  asio::awaitable<boost::system::result<void>> ping();

  pool_stats stats() const;
  const pool_options& options() const;
  // Ends the helper thread that runs blocking libpq calls (connecting),
  // letting a call under way finish and destroying the ones it never ran.
  // Call once the io_context has stopped and before it is destroyed: the
  // coroutines awaiting those calls are handed to it. Afterwards acquire()
  // answers unavailable instead of connecting.
  void shutdown();

  struct impl;

 private:
  friend class lease;
  pool(asio::io_context& ioc, pool_options o, metrics::registry& m);
  void release(std::unique_ptr<connection> c);
  std::unique_ptr<impl> impl_;
};

}  // namespace todo::db

template <>
struct boost::system::is_error_code_enum<todo::db::errc> : std::true_type {};
