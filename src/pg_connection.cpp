#include "pg_connection.hpp"

#include "todo/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <poll.h>

#include <cstring>
#include <string>

namespace todo::db {
namespace {

using wait_type = asio::posix::descriptor_base::wait_type;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

log::limiter error_log_limit(5);

bool is_connection_sqlstate(std::string_view s) {
  // Class 08 (connection exception), admin/crash shutdown, cannot connect now.
  return s.starts_with("08") || s == "57P01" || s == "57P02" || s == "57P03";
}

// Borrows libpq's socket: released, never closed, however the frame holding
// it ends, also when the io_context destroys it unresumed at exit (PQfinish
// closes the fd after that).
struct borrowed_fd {
  asio::posix::stream_descriptor sd;
  ~borrowed_fd() { sd.release(); }
};

// Waits for a socket that is not (yet) owned by a connection: the handshake.
asio::awaitable<bool> wait_fd(int fd, wait_type w, deadline until) {
  auto ex = co_await asio::this_coro::executor;
  borrowed_fd borrowed{asio::posix::stream_descriptor(ex, fd)};
  auto& sd = borrowed.sd;
  asio::steady_timer timer(ex, until);
  bool timed_out = false;
  timer.async_wait([&sd, &timed_out](boost::system::error_code ec) {
    if (!ec) {
      timed_out = true;
      sd.cancel();
    }
  });
  auto [ec] = co_await sd.async_wait(w, use_tuple);
  timer.cancel();
  co_return !ec && !timed_out;
}

// Runs on the blocking pool: PQconnectStartParams resolves host names
// synchronously. Parameters are copies; the caller's frame may move on.
// Owned from the start: at shutdown the result may never reach the caller.
asio::awaitable<std::unique_ptr<PGconn, pg_conn_free>> start_connect(std::string conninfo, std::string app,
                                                                     std::string options) {
  const char* keys[] = {"dbname", "application_name", "options", nullptr};
  const char* values[] = {conninfo.c_str(), app.c_str(), options.c_str(), nullptr};
  co_return std::unique_ptr<PGconn, pg_conn_free>(PQconnectStartParams(keys, values, 1));
}

}  // namespace

boost::system::error_code classify(PGconn* conn, const PGresult* r) {
  const char* state = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string_view s = state != nullptr ? state : "";
  if (PQstatus(conn) == CONNECTION_BAD || is_connection_sqlstate(s)) {
    return errc::unavailable;
  }
  if (s == "23505") {
    return errc::unique_violation;
  }
  if (s == "40001" || s == "40P01") {
    return errc::serialization;
  }
  if (s == "57014") {  // statement_timeout
    return errc::timeout;
  }
  if (auto skipped = error_log_limit.admit(); skipped >= 0) {
    const char* msg = r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(conn);
    log::error("db", "statement failed", {{"sqlstate", s}, {"error", msg}, {"suppressed", skipped}});
  }
  return errc::failed;
}

connection::connection(asio::any_io_executor io, PGconn* c) : conn_(c), sock_(io, PQsocket(c)) {}

connection::~connection() {
  sock_.release();
}

asio::awaitable<boost::system::result<std::unique_ptr<connection>>> connection::open(
    asio::any_io_executor io, asio::any_io_executor blocking, const pool_options& o) {
  auto until = std::chrono::steady_clock::now() + o.connect_timeout;
  std::string options = "-c statement_timeout=" + std::to_string(o.statement_timeout.count()) +
                        " -c TimeZone=UTC -c lock_timeout=" + std::to_string(o.statement_timeout.count());

  auto started = asio::co_spawn(blocking, start_connect(o.conninfo, o.application_name, options), asio::use_awaitable);
  std::unique_ptr<PGconn, pg_conn_free> c = co_await std::move(started);

  if (!c || PQstatus(c.get()) == CONNECTION_BAD) {
    log::warn("db", "connect failed", {{"error", c ? PQerrorMessage(c.get()) : "out of memory"}});
    co_return make_error_code(errc::unavailable);
  }
  auto st = PGRES_POLLING_WRITING;
  while (st != PGRES_POLLING_OK) {
    if (st == PGRES_POLLING_FAILED) {
      if (auto skipped = error_log_limit.admit(); skipped >= 0) {
        log::warn("db", "connect failed", {{"error", PQerrorMessage(c.get())}, {"suppressed", skipped}});
      }
      co_return make_error_code(errc::unavailable);
    }
    // The socket can change while libpq tries several addresses.
    auto direction = st == PGRES_POLLING_READING ? wait_type::wait_read : wait_type::wait_write;
    bool ready = co_await wait_fd(PQsocket(c.get()), direction, until);
    if (!ready) {
      log::warn("db", "connect timed out", {});
      co_return make_error_code(errc::unavailable);
    }
    st = PQconnectPoll(c.get());
  }
  // Server notices ("relation already exists, skipping") go to the debug log,
  // not to libpq's default of stderr.
  PQsetNoticeProcessor(
      c.get(), [](void*, const char* message) { log::debug("db", "server notice", {{"notice", message}}); }, nullptr);
  if (PQsetnonblocking(c.get(), 1) != 0 || PQenterPipelineMode(c.get()) != 1) {
    co_return make_error_code(errc::unavailable);
  }
  co_return std::unique_ptr<connection>(new connection(io, c.release()));
}

bool connection::healthy() {
  if (broken_ || PQstatus(conn_.get()) != CONNECTION_OK) {
    return false;
  }
  pollfd p{PQsocket(conn_.get()), POLLIN, 0};
  if (::poll(&p, 1, 0) > 0) {
    // Idle connections receive nothing unless the server is going away.
    if (PQconsumeInput(conn_.get()) == 0 || PQstatus(conn_.get()) != CONNECTION_OK) {
      broken_ = true;
      return false;
    }
    while (PGresult* r = PQgetResult(conn_.get())) {
      PQclear(r);
      broken_ = true;
    }
  }
  return !broken_;
}

asio::awaitable<bool> connection::wait(wait_type w, deadline until) {
  asio::steady_timer timer(co_await asio::this_coro::executor, until);
  bool timed_out = false;
  timer.async_wait([this, &timed_out](boost::system::error_code ec) {
    if (!ec) {
      timed_out = true;
      sock_.cancel();
    }
  });
  auto [ec] = co_await sock_.async_wait(w, use_tuple);
  timer.cancel();
  co_return !ec && !timed_out;
}

boost::system::error_code connection::fail_connection() {
  broken_ = true;
  return errc::unavailable;
}

asio::awaitable<boost::system::error_code> connection::flush(deadline until) {
  for (;;) {
    int f = PQflush(conn_.get());
    if (f == 0) {
      co_return boost::system::error_code{};
    }
    if (f < 0) {
      co_return fail_connection();
    }
    bool ready = co_await wait(wait_type::wait_write, until);
    if (!ready) {
      broken_ = true;
      co_return errc::timeout;
    }
    // The server may be blocked writing to us; read what it sent.
    if (PQconsumeInput(conn_.get()) == 0) {
      co_return fail_connection();
    }
  }
}

asio::awaitable<boost::system::result<PGresult*>> connection::next_result(deadline until) {
  while (PQisBusy(conn_.get()) != 0) {
    bool ready = co_await wait(wait_type::wait_read, until);
    if (!ready) {
      broken_ = true;
      co_return make_error_code(errc::timeout);
    }
    if (PQconsumeInput(conn_.get()) == 0) {
      co_return fail_connection();
    }
  }
  co_return PQgetResult(conn_.get());
}

asio::awaitable<boost::system::result<std::vector<rows>>> connection::execute(std::vector<query>& qs, deadline until) {
  PGconn* c = conn_.get();
  if (PQpipelineStatus(c) == PQ_PIPELINE_OFF && PQenterPipelineMode(c) != 1) {
    co_return fail_connection();
  }
  // Each entry is one result we expect back: a Parse (stmt set) or an Execute.
  struct expected {
    const statement* prepare;
  };
  std::vector<expected> order;
  order.reserve(qs.size() * 2);
  std::vector<const char*> values;
  std::unordered_set<const statement*> preparing;
  for (auto& q : qs) {
    if (q.stmt == nullptr) {
      values.clear();
      for (const auto& p : q.params) {
        values.push_back(p ? p->c_str() : nullptr);
      }
      if (PQsendQueryParams(c, q.text.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                            nullptr, 0) != 1) {
        co_return fail_connection();
      }
      order.push_back({nullptr});
      continue;
    }
    const auto& s = *q.stmt;
    std::string name(s.name);
    // Prepared once even when the pipeline uses the statement many times.
    if (!prepared_.contains(q.stmt) && preparing.insert(q.stmt).second) {
      std::string sql(s.sql);
      if (PQsendPrepare(c, name.c_str(), sql.c_str(), 0, nullptr) != 1) {
        co_return fail_connection();
      }
      order.push_back({q.stmt});
    }
    values.clear();
    for (const auto& p : q.params) {
      values.push_back(p ? p->c_str() : nullptr);
    }
    if (PQsendQueryPrepared(c, name.c_str(), static_cast<int>(values.size()), values.data(), nullptr, nullptr, 0) !=
        1) {
      co_return fail_connection();
    }
    order.push_back({nullptr});
  }
  if (PQpipelineSync(c) != 1) {
    co_return fail_connection();
  }
  auto flushed = co_await flush(until);
  if (flushed) {
    co_return flushed;
  }

  std::vector<rows> out;
  out.reserve(qs.size());
  boost::system::error_code first_error;
  for (const auto& e : order) {
    auto r = co_await next_result(until);
    if (!r) {
      co_return r.error();
    }
    rows held(*r);  // owns the result from here on
    if (*r == nullptr) {
      co_return fail_connection();
    }
    auto status = PQresultStatus(*r);
    if (status == PGRES_FATAL_ERROR) {
      if (!first_error) {
        first_error = classify(c, *r);
      }
    } else if (status == PGRES_PIPELINE_ABORTED) {
      // An earlier statement failed; first_error has the reason.
    } else if (e.prepare != nullptr) {
      prepared_.insert(e.prepare);
    } else {
      out.push_back(std::move(held));
    }
    // Each statement's results end with a null.
    auto end = co_await next_result(until);
    if (!end) {
      co_return end.error();
    }
    if (*end != nullptr) {
      PQclear(*end);
      co_return fail_connection();
    }
  }
  auto sync = co_await next_result(until);
  if (!sync) {
    co_return sync.error();
  }
  rows sync_held(*sync);
  if (*sync == nullptr || PQresultStatus(*sync) != PGRES_PIPELINE_SYNC) {
    co_return fail_connection();
  }
  if (first_error) {
    if (first_error == errc::unavailable) {
      broken_ = true;
    }
    co_return first_error;
  }
  co_return out;
}

asio::awaitable<boost::system::result<void>> connection::run_script(const std::string& sql, deadline until) {
  PGconn* c = conn_.get();
  if (PQpipelineStatus(c) != PQ_PIPELINE_OFF && PQexitPipelineMode(c) != 1) {
    co_return fail_connection();
  }
  if (PQsendQuery(c, sql.c_str()) != 1) {
    co_return fail_connection();
  }
  auto flushed = co_await flush(until);
  if (flushed) {
    co_return flushed;
  }
  boost::system::error_code first_error;
  for (;;) {
    auto r = co_await next_result(until);
    if (!r) {
      co_return r.error();
    }
    if (*r == nullptr) {
      break;
    }
    rows held(*r);
    auto status = PQresultStatus(*r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && !first_error) {
      first_error = classify(c, *r);
    }
  }
  if (first_error) {
    co_return first_error;
  }
  co_return boost::system::result<void>{};
}

}  // namespace todo::db
