#pragma once
// One libpq connection in non-blocking pipeline mode. Owned by exactly one
// coroutine at a time (the pool's lease), so it needs no strand of its own;
// its waits resume on the caller's executor.
#include "todo/db.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <libpq-fe.h>

#include <chrono>
#include <optional>
#include <unordered_set>

namespace todo::db {

using deadline = std::chrono::steady_clock::time_point;

struct pg_conn_free {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};

class connection {
 public:
  // Connects without blocking the caller's thread: the DNS lookup inside
  // PQconnectStartParams runs on `blocking`, the handshake on `io`.
  static asio::awaitable<boost::system::result<std::unique_ptr<connection>>> open(
      asio::any_io_executor io, asio::any_io_executor blocking, const pool_options& o);

  ~connection();

  asio::awaitable<boost::system::result<std::vector<rows>>> execute(std::vector<query>& qs, deadline until);
  asio::awaitable<boost::system::result<void>> run_script(const std::string& sql, deadline until);

  // Without waiting: false if the server closed the connection while idle.
  bool healthy();
  bool broken() const { return broken_; }
  // A lease dropped mid-transaction must not hand its open transaction on.
  bool in_transaction() const { return PQtransactionStatus(conn_.get()) != PQTRANS_IDLE; }

 private:
  connection(asio::any_io_executor io, PGconn* c);
  // Waits until the socket is ready; false on deadline or error.
  asio::awaitable<bool> wait(asio::posix::descriptor_base::wait_type w, deadline until);
  asio::awaitable<boost::system::error_code> flush(deadline until);
  asio::awaitable<boost::system::result<PGresult*>> next_result(deadline until);
  boost::system::error_code fail_connection();

  std::unique_ptr<PGconn, pg_conn_free> conn_;
  // Borrows PQsocket's fd; released (not closed) before PQfinish closes it.
  asio::posix::stream_descriptor sock_;
  std::unordered_set<const statement*> prepared_;
  bool broken_ = false;
};

// Maps a failed result to our error code (and logs what the client never sees).
boost::system::error_code classify(PGconn* conn, const PGresult* r);

}  // namespace todo::db
