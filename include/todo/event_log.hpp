#pragma once
// Reading the committed event log in order, and the in-process bus built on
// it: every consumer (the Kafka relay, in-process subscribers) walks the log
// from a checkpoint stored in PostgreSQL, so a crash replays and never skips.
#include "todo/events.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace todo {

namespace db {
class pool;
}
namespace metrics {
class registry;
}

// Positions are handed out when a row is inserted, not when it commits, so
// a reader can see position 12 while 11 is still uncommitted (it may commit
// later, or roll back and never appear). A reader never passes a missing
// position until every transaction that could still write it has ended.
// Its writer already had a transaction id when it took the position (the
// event is never a transaction's first write), so a transaction id assigned
// after the gap was seen bounds the writer's: once a snapshot's xmin reaches
// that bound, the writer has ended. A snapshot's own xmax is no such bound:
// it is the newest *finished* id plus one, and a writer that got its id after
// another transaction still running can hold an id above it.
class gap_tracker {
 public:
  struct step {
    std::size_t usable;      // leading rows that may be consumed now
    std::int64_t position;   // the reader's position after consuming them
    bool needs_bound;        // a gap has no bound yet: call bound() with a fresh transaction id
  };
  // `positions` ascending, all greater than `from`; `xmin` from the snapshot
  // they were read in.
  step advance(std::int64_t from, std::span<const std::int64_t> positions, std::uint64_t xmin);
  // A transaction id assigned after the last advance(): the bound of every gap
  // found so far without one.
  void bound(std::uint64_t next_xid);
  std::size_t open_gaps() const { return pending_.size(); }

 private:
  static constexpr std::uint64_t unbounded = UINT64_MAX;
  std::map<std::int64_t, std::uint64_t> pending_;  // missing position → bound on its writer's id
};

class log_reader {
 public:
  log_reader(std::shared_ptr<db::pool> db, std::int64_t position);
  // The next committed events after the position, in log order, at most
  // `limit`; empty when there is nothing (yet) to read.
  boost::asio::awaitable<boost::system::result<std::vector<event>>> next(int limit);
  std::int64_t position() const { return position_; }
  // True while a missing position may still commit: its commit does not
  // move the end of the log, so only reading again will find it.
  bool waiting_on_gap() const { return gaps_.open_gaps() > 0; }
  void rewind(std::int64_t position);

 private:
  std::shared_ptr<db::pool> db_;
  std::int64_t position_;
  gap_tracker gaps_;
};

// One user's events after a sequence number, oldest first.
boost::asio::awaitable<boost::system::result<std::vector<event>>> user_events_after(db::pool& db, std::string user,
                                                                                    std::int64_t after, int limit);
struct user_log_bounds {
  std::int64_t last_seq = 0;   // the newest sequence number (0: none yet)
  std::int64_t first_seq = 0;  // the oldest still retained (0: none retained)
};
boost::asio::awaitable<boost::system::result<user_log_bounds>> user_bounds(db::pool& db, std::string user);
// The newest log position (0 when the log is empty).
boost::asio::awaitable<boost::system::result<std::int64_t>> log_end(db::pool& db);

// Resumes after `d` (at once when it is not positive), on the caller's
// executor: the back-off of every reader and writer of the log.
boost::asio::awaitable<void> pause(std::chrono::milliseconds d);

// Checkpoints, one row per consumer name.
boost::asio::awaitable<boost::system::result<std::int64_t>> load_checkpoint(db::pool& db, std::string name);
boost::asio::awaitable<boost::system::result<void>> save_checkpoint(db::pool& db, std::string name, std::int64_t pos);

struct bus_options {
  // How often the end of the log is read for commits made by other
  // replicas, and how often a reader waiting on a gap reads again.
  std::chrono::milliseconds poll_interval{100};
  // A reader with nothing to do reads again after this even if nothing woke it.
  std::chrono::milliseconds idle_poll{5000};
  int batch = 500;
};

// The in-process bus. Writers call notify() after they commit; one watcher
// reads the end of the log every poll interval and calls notify() when
// another replica's commit moved it, so idle readers cost one query per
// interval in all. Each subscriber runs on its own strand, receives batches
// of events in log order (per user: in sequence order), and must be
// idempotent: after a crash, events after its last checkpoint are delivered
// again.
class event_bus {
 public:
  using handler = std::function<boost::asio::awaitable<boost::system::result<void>>(std::vector<event>)>;

  event_bus(boost::asio::io_context& io, std::shared_ptr<db::pool> db, metrics::registry& m, bus_options o = {});
  ~event_bus();

  // Where a subscriber keeps its checkpoint; by default the
  // consumer_checkpoints table. load answers 0 when there is none yet.
  struct checkpoint_store {
    std::function<boost::asio::awaitable<boost::system::result<std::int64_t>>(std::string)> load;
    std::function<boost::asio::awaitable<boost::system::result<void>>(std::string, std::int64_t)> save;
  };

  // Before start(). A subscriber that has no checkpoint yet starts from the
  // beginning of the log.
  void subscribe(std::string name, handler h, checkpoint_store where);
  void subscribe(std::string name, handler h);
  void start();
  // Wakes every subscriber now (and the Kafka relay, which waits here too).
  void notify();
  // Changes with every notify(). Read it before looking at the log and pass
  // it to wait(), so a notify() in between is not lost.
  std::uint64_t generation() const;
  // Resolves at once if notify() was called since `seen`, otherwise after
  // notify() or `poll` (the poll interval when zero), whichever comes first.
  boost::asio::awaitable<void> wait(std::uint64_t seen, std::chrono::milliseconds poll = std::chrono::milliseconds(0));
  // The wait of a reader that found nothing new: the poll interval while it
  // waits on a gap, `idle` (the idle poll when zero) otherwise.
  boost::asio::awaitable<void> wait_for_log(std::uint64_t seen, const log_reader& r,
                                            std::chrono::milliseconds idle = std::chrono::milliseconds(0));

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace todo
