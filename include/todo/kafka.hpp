#pragma once
// Kafka through librdkafka: an idempotent producer whose delivery reports
// are handled on the io_context, and librdkafka's mock cluster, a real
// Kafka-protocol broker in memory for local runs and tests.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace todo::kafka {

using properties = std::vector<std::pair<std::string, std::string>>;  // librdkafka names: "sasl.mechanisms"

struct producer_config {
  std::string brokers;  // bootstrap.servers
  properties extra;     // passed through to librdkafka, after ours, so they may override
};

struct record {
  std::string topic;
  std::string key;
  std::string value;
  properties headers;
  std::uint64_t token = 0;  // handed back in the delivery report
};

struct delivery {
  std::uint64_t token = 0;
  bool ok = false;
  std::string error;   // when !ok
  bool fatal = false;  // the producer is unusable: recreate it and resend
};

class producer {
 public:
  // Idempotent (enable.idempotence=true, acks=all), retries without a time
  // limit so that per-key order survives any broker outage. `on_delivery`
  // runs on the io_context, on a strand of the producer's own.
  // Throws std::runtime_error naming the property librdkafka refused.
  producer(boost::asio::io_context& io, producer_config cfg, std::function<void(delivery)> on_delivery);
  ~producer();
  producer(const producer&) = delete;
  producer& operator=(const producer&) = delete;

  enum class enqueue { queued, queue_full, failed };
  enqueue send(const record& r);
  // Records handed to librdkafka and not yet reported.
  std::size_t in_flight() const;
  // False after librdkafka reports all brokers down, true again after a
  // successful delivery or a broker coming back.
  bool brokers_up() const;
  // Blocks up to `timeout`: call only after io_context::run() has returned.
  void flush(std::chrono::milliseconds timeout);

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

struct topic_spec {
  std::string name;
  int partitions;
};

class mock_cluster {
 public:
  mock_cluster(int brokers, const std::vector<topic_spec>& topics);
  ~mock_cluster();
  mock_cluster(const mock_cluster&) = delete;
  mock_cluster& operator=(const mock_cluster&) = delete;

  std::string bootstrap() const;  // "127.0.0.1:port,..."
  int brokers() const;
  // Takes a broker (1-based id) down or up, as in a real outage.
  void set_broker_up(int broker_id, bool up);

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

// KAFKA_* environment variables other than the server's own (KAFKA_BROKERS,
// KAFKA_TOPIC_*) to librdkafka names: KAFKA_SASL_MECHANISMS → sasl.mechanisms.
properties passthrough(const std::vector<std::pair<std::string, std::string>>& env);
// One line per property librdkafka refuses, naming the environment variable.
std::vector<std::string> validate(const properties& p);

// `todo-server broker`: runs a mock cluster alone and prints its bootstrap
// address; with --control, reads "down N" / "up N" lines from stdin.
int run_broker_command(const std::vector<std::string>& args);

}  // namespace todo::kafka
