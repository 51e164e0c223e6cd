#pragma once
// The Kafka mirror of the event log. One replica at a time (the holder of a
// PostgreSQL advisory lock) reads the committed log from its checkpoint and
// produces each event, keyed by user, with the idempotent producer; the
// checkpoint advances only over events whose every record was acknowledged
// (the delivery report), so a crash resends, with the same CloudEvent id,
// exactly what was not acknowledged.
#include "todo/kafka.hpp"

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

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
class event_bus;

struct relay_options {
  std::string topic_task_events = "task-events";
  std::string topic_reminders = "reminders";
  std::string topic_task_updates = "task-updates";
  std::size_t max_in_flight = 20000;  // records handed to librdkafka, not yet acknowledged
  int batch = 1000;
};

struct relay_status {
  bool leader = false;       // this replica holds the relay lock
  bool brokers_up = false;   // librdkafka reaches the cluster
  std::int64_t lag = 0;      // committed events not yet acknowledged by Kafka
  double oldest_seconds = 0; // age of the oldest of them
};

class kafka_relay {
 public:
  kafka_relay(boost::asio::io_context& io, std::shared_ptr<db::pool> db, event_bus& bus,
              kafka::producer_config producer, relay_options o, metrics::registry& m);
  ~kafka_relay();

  // After migrations: starts competing for the relay lock, then relaying.
  void start();
  relay_status status() const;
  // Once no request is in flight, before the io_context stops: reads the log
  // to its end and hands every event to librdkafka (until `until` at most),
  // then relaying stops. Without it, events committed since the relay's last
  // read would wait for the next relaying replica.
  boost::asio::awaitable<void> finish(std::chrono::steady_clock::time_point until);
  // Blocks up to `timeout` for outstanding deliveries: after io_context::run() returned.
  void flush(std::chrono::milliseconds timeout);

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

// Which topics an event type goes to: task lifecycle to task-events, reminder
// events to reminders, and everything a client must see to task-updates.
std::vector<std::string> topics_for(std::string_view type, const relay_options& o);

}  // namespace todo
