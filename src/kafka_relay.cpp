#include "todo/kafka_relay.hpp"

#include "todo/db.hpp"
#include "todo/event_log.hpp"
#include "todo/events.hpp"
#include "todo/log.hpp"
#include "todo/metrics.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <deque>
#include <mutex>

namespace todo {
namespace asio = boost::asio;

namespace {

constexpr std::string_view checkpoint_name = "kafka-relay";
const db::statement lock_stmt{"relay_lock", "SELECT pg_try_advisory_lock(1953457264)"};
const db::statement alive_stmt{"relay_alive", "SELECT 1"};
const db::statement lag_stmt{
    "relay_lag",
    "SELECT count(*), coalesce(extract(epoch FROM now() - min(time)), 0)::float8 FROM events WHERE pos > $1"};
const db::statement prune_stmt{
    "events_prune",
    "DELETE FROM events WHERE time < now() - $1::interval"
    " AND pos <= (SELECT coalesce(min(pos), 0) FROM consumer_checkpoints)"};

}  // namespace

std::vector<std::string> topics_for(std::string_view type, const relay_options& o) {
  if (type.starts_with("com.todo.reminder.")) {
    return {o.topic_reminders, o.topic_task_updates};
  }
  return {o.topic_task_events, o.topic_task_updates};
}

// All mutable state below is owned by `strand`: the relay loop runs there
// and delivery reports are posted there.
struct kafka_relay::impl {
  impl(asio::io_context& i, std::shared_ptr<db::pool> d, event_bus& b, kafka::producer_config pc, relay_options o,
       metrics::registry& m)
      : io(i),
        strand(asio::make_strand(i)),
        db(std::move(d)),
        bus(b),
        producer_cfg(std::move(pc)),
        opt(std::move(o)),
        publish_lag(m.get_histogram("todo_kafka_publish_lag_seconds",
                                    "From commit to the Kafka delivery report of an event")),
        delivered(m.get_counter("todo_kafka_events_delivered_total", "Events acknowledged by Kafka")),
        delivery_errors(m.get_counter("todo_kafka_delivery_errors_total", "Failed Kafka deliveries (resent)")),
        reader(db, 0) {}

  asio::io_context& io;
  asio::strand<asio::io_context::executor_type> strand;
  std::shared_ptr<db::pool> db;
  event_bus& bus;
  kafka::producer_config producer_cfg;
  relay_options opt;
  metrics::histogram& publish_lag;
  metrics::counter& delivered;
  metrics::counter& delivery_errors;

  std::unique_ptr<kafka::producer> producer;
  log_reader reader;
  struct sent {
    std::int64_t pos;
    int remaining;  // records not yet acknowledged
    time::ms committed;
  };
  std::deque<sent> in_flight;   // in log order
  std::int64_t acked = 0;       // every event up to here is acknowledged
  std::int64_t saved = 0;       // the durable checkpoint
  std::uint64_t generation = 0; // bumped on every rewind; stale reports are ignored
  bool rewind = false;
  bool recreate = false;
  // Set by finish(), which waits on it: the loop cancels it and returns once
  // a read begun after that found the end of the log.
  std::shared_ptr<asio::steady_timer> finishing;

  // Read by status() from other threads.
  std::atomic<bool> leader{false};
  std::atomic<bool> brokers_up{false};
  std::atomic<std::int64_t> lag{0};
  std::atomic<double> oldest{0};

  void on_delivery(const kafka::delivery& d);
  std::size_t records_in_flight() const {
    std::size_t n = 0;
    for (const auto& s : in_flight) {
      n += static_cast<std::size_t>(s.remaining);
    }
    return n;
  }
};

void kafka_relay::impl::on_delivery(const kafka::delivery& d) {
  // token: generation in the high 16 bits, position in the low 48.
  if ((d.token >> 48) != (generation & 0xffff)) {
    return;  // sent before a rewind; it will be (or was) sent again
  }
  auto pos = static_cast<std::int64_t>(d.token & ((1ull << 48) - 1));
  if (!d.ok) {
    delivery_errors.inc();
    log::warn("kafka", "delivery failed; resending from the checkpoint", {{"pos", pos}, {"error", std::string_view(d.error)}});
    rewind = true;
    recreate = recreate || d.fatal;
    bus.notify();
    return;
  }
  auto it = std::lower_bound(in_flight.begin(), in_flight.end(), pos,
                             [](const sent& s, std::int64_t p) { return s.pos < p; });
  if (it != in_flight.end() && it->pos == pos && it->remaining > 0 && --it->remaining == 0) {
    delivered.inc();
    publish_lag.observe(std::chrono::duration<double>(time::now() - it->committed).count());
  }
  while (!in_flight.empty() && in_flight.front().remaining == 0) {
    acked = in_flight.front().pos;
    in_flight.pop_front();
  }
  // With a rewind pending the reader has passed events that were never
  // handed over (a full queue): they are not acknowledged by this.
  if (in_flight.empty() && !rewind) {
    acked = std::max(acked, reader.position());
  }
}

namespace {

// Ends finish()'s wait: the relay loop returns after this.
void finished(kafka_relay::impl& st) {
  st.finishing->cancel();
  st.finishing.reset();
  st.leader = false;
}

// Holds the relay lock on one leased connection for as long as it relays.
asio::awaitable<boost::system::result<db::lease>> become_leader(std::shared_ptr<db::pool> db) {
  for (;;) {
    auto l = co_await db->acquire();
    if (l) {
      std::vector<db::query> qs;
      qs.push_back({&lock_stmt, {}});
      auto r = co_await l->execute(std::move(qs));
      if (r && (*r)[0].boolean(0, 0)) {
        co_return std::move(*l);
      }
    }
    co_await pause(std::chrono::seconds(2));
  }
}

asio::awaitable<void> refresh_lag(std::shared_ptr<kafka_relay::impl> st) {
  db::query q{&lag_stmt, {std::to_string(st->acked)}};
  auto r = co_await st->db->execute_one(std::move(q));
  if (r) {
    st->lag = r->integer(0, 0);
    st->oldest = std::strtod(std::string(r->text(0, 1)).c_str(), nullptr);
  }
}

asio::awaitable<void> relay_loop(std::shared_ptr<kafka_relay::impl> st) {
  auto last_save = std::chrono::steady_clock::now();
  auto last_lag = last_save - std::chrono::hours(1);
  auto last_prune = last_lag;
  for (;;) {
    auto lease = co_await become_leader(st->db);
    if (!lease) {
      continue;
    }
    st->leader = true;
    log::info("kafka", "relay leader", {});
    std::int64_t start = 0;
    for (;;) {
      auto ck = co_await load_checkpoint(*st->db, std::string(checkpoint_name));
      if (ck) {
        start = *ck;
        break;
      }
      co_await pause(std::chrono::seconds(1));
    }
    st->acked = st->saved = start;
    st->reader.rewind(start);
    st->in_flight.clear();
    ++st->generation;

    auto last_alive = std::chrono::steady_clock::now();
    bool lost = false;
    while (!lost) {
      if (st->recreate || !st->producer) {
        st->producer.reset();
        bool created = true;
        try {
          std::weak_ptr<kafka_relay::impl> weak = st;
          st->producer = std::make_unique<kafka::producer>(st->io, st->producer_cfg, [weak](kafka::delivery d) {
            if (auto s = weak.lock()) {
              asio::post(s->strand, [s, d = std::move(d)] { s->on_delivery(d); });
            }
          });
        } catch (const std::exception& e) {
          log::error("kafka", "producer could not be created", {{"error", e.what()}});
          created = false;
        }
        if (!created) {
          co_await pause(std::chrono::seconds(1));
          continue;
        }
        st->recreate = false;
        st->rewind = true;
      }
      if (st->rewind) {
        st->rewind = false;
        ++st->generation;
        st->in_flight.clear();
        st->reader.rewind(st->acked);
      }
      // Read and send while there is room.
      auto seen = st->bus.generation();
      // Begun after finish() was called, this read sees every commit it waits for.
      bool final_read = st->finishing != nullptr;
      bool at_end = false;
      while (st->records_in_flight() < st->opt.max_in_flight && !st->rewind) {
        auto batch = co_await st->reader.next(st->opt.batch);
        if (!batch || batch->empty()) {
          at_end = batch && !st->reader.waiting_on_gap();
          break;
        }
        bool full = false;
        for (const auto& e : *batch) {
          auto topics = topics_for(e.type, st->opt);
          auto value = to_cloudevent(e);
          std::uint64_t token = ((st->generation & 0xffff) << 48) | static_cast<std::uint64_t>(e.pos);
          int queued = 0;
          for (const auto& t : topics) {
            kafka::record rec{t, e.user, value, {{"content-type", std::string(cloudevents_content_type)}}, token};
            auto r = st->producer->send(rec);
            if (r != kafka::producer::enqueue::queued) {
              full = true;
              break;
            }
            ++queued;
          }
          if (full) {
            // Resend this event (and what follows) once there is room;
            // records of it already queued are acknowledged harmlessly.
            st->rewind = true;
            break;
          }
          st->in_flight.push_back({e.pos, queued, e.time});
        }
        if (full) {
          break;
        }
      }
      if (st->in_flight.empty() && !st->rewind) {
        st->acked = std::max(st->acked, st->reader.position());
      }
      if (final_read && st->finishing && at_end && !st->rewind) {
        // Everything committed before finish() is with librdkafka; flush()
        // delivers it. The checkpoint stays behind: a restart resends.
        finished(*st);
        co_return;
      }
      st->brokers_up = st->producer && st->producer->brokers_up();
      auto now = std::chrono::steady_clock::now();
      if (st->acked > st->saved && now - last_save >= std::chrono::milliseconds(100)) {
        // acked may grow while the save runs: remember what was written.
        auto to_save = st->acked;
        auto saved = co_await save_checkpoint(*st->db, std::string(checkpoint_name), to_save);
        if (saved) {
          st->saved = to_save;
        }
        last_save = now;
      }
      if (now - last_lag >= std::chrono::seconds(1)) {
        co_await refresh_lag(st);
        last_lag = now;
      }
      if (now - last_prune >= std::chrono::hours(1)) {
        db::query q{&prune_stmt, {"90 days"}};
        auto pruned = co_await st->db->execute_one(std::move(q));
        if (pruned && pruned->affected() > 0) {
          log::info("kafka", "events pruned", {{"rows", pruned->affected()}});
        }
        last_prune = now;
      }
      if (now - last_alive >= std::chrono::seconds(5)) {
        std::vector<db::query> qs;
        qs.push_back({&alive_stmt, {}});
        auto alive = co_await lease->execute(std::move(qs));
        lost = !alive;
        last_alive = now;
      }
      // Acknowledgements arrive without a notify(): while records are out,
      // look again at the poll interval. Idle, once a second keeps the lag
      // gauge and the lock check current.
      if (!st->in_flight.empty() || st->acked > st->saved) {
        co_await st->bus.wait(seen);
      } else {
        co_await st->bus.wait_for_log(seen, st->reader, std::chrono::seconds(1));
      }
    }
    st->leader = false;
    log::warn("kafka", "relay lock lost; competing again", {});
    if (st->finishing) {
      finished(*st);  // whichever replica relays next sends the rest
      co_return;
    }
  }
}

asio::awaitable<void> finish_relay(std::shared_ptr<kafka_relay::impl> st, std::chrono::steady_clock::time_point until) {
  if (!st->leader) {
    co_return;  // a standby has nothing of its own to send
  }
  auto done = std::make_shared<asio::steady_timer>(st->strand, until);
  st->finishing = done;
  st->bus.notify();  // wakes the loop if it waits for the log
  co_await done->async_wait(asio::as_tuple(asio::use_awaitable));
  if (st->finishing == done) {
    st->finishing.reset();
    log::warn("kafka", "relay did not read the log to its end before the deadline", {{"acked", st->acked}});
  }
}

}  // namespace

kafka_relay::kafka_relay(asio::io_context& io, std::shared_ptr<db::pool> db, event_bus& bus,
                         kafka::producer_config producer, relay_options o, metrics::registry& m)
    : impl_(std::make_shared<impl>(io, std::move(db), bus, std::move(producer), std::move(o), m)) {
  std::weak_ptr<impl> weak = impl_;
  m.add_gauge("todo_kafka_outbox_depth", "Committed events not yet acknowledged by Kafka", {}, [weak] {
    auto s = weak.lock();
    return s ? static_cast<double>(s->lag.load()) : 0.0;
  });
  m.add_gauge("todo_kafka_brokers_up", "1 while the producer reaches the Kafka cluster", {}, [weak] {
    auto s = weak.lock();
    return s && s->brokers_up ? 1.0 : 0.0;
  });
  m.add_gauge("todo_kafka_relay_leader", "1 on the replica that relays the log to Kafka", {}, [weak] {
    auto s = weak.lock();
    return s && s->leader ? 1.0 : 0.0;
  });
}

kafka_relay::~kafka_relay() = default;

void kafka_relay::start() {
  asio::co_spawn(impl_->strand, relay_loop(impl_), [](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        log::error("kafka", "relay stopped", {{"error", x.what()}});
      }
    }
  });
}

relay_status kafka_relay::status() const {
  relay_status s;
  s.leader = impl_->leader;
  s.brokers_up = impl_->brokers_up;
  s.lag = impl_->lag;
  s.oldest_seconds = impl_->oldest;
  return s;
}

asio::awaitable<void> kafka_relay::finish(std::chrono::steady_clock::time_point until) {
  co_await asio::co_spawn(impl_->strand, finish_relay(impl_, until), asio::use_awaitable);
}

void kafka_relay::flush(std::chrono::milliseconds timeout) {
  if (impl_->producer) {
    impl_->producer->flush(timeout);
  }
}

}  // namespace todo
