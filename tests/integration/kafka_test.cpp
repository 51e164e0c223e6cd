// The producer against librdkafka's mock cluster, read back by kcat, a
// separate Kafka client, to prove what is on the wire.
#include "todo/kafka.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <catch2/catch.hpp>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace kafka = todo::kafka;
using namespace std::chrono_literals;

namespace {

const std::vector<kafka::topic_spec> local_topics{{"task-events", 3}, {"reminders", 1}, {"task-updates", 3}};
const std::vector<std::string> keys{"user-a", "user-b"};
const std::string content_type = "application/cloudevents+json";

// Runs `io` until `done()` holds or `timeout` passes; returns done().
bool eventually(asio::io_context& io, std::chrono::milliseconds timeout, const std::function<bool()>& done) {
  auto until = std::chrono::steady_clock::now() + timeout;
  asio::steady_timer tick(io);
  std::function<void()> check = [&] {
    if (done() || std::chrono::steady_clock::now() >= until) {
      io.stop();
      return;
    }
    tick.expires_after(10ms);
    tick.async_wait([&](boost::system::error_code ec) {
      if (!ec) {
        check();
      }
    });
  };
  io.restart();
  asio::post(io, check);
  io.run();
  tick.cancel();
  return done();
}

// A producer on a local io_context against a one-broker mock cluster,
// sending "<key>/<counter>" values with a per-key counter.
struct mirror {
  kafka::mock_cluster cluster{1, local_topics};
  asio::io_context io;
  std::vector<kafka::delivery> reports;  // appended on the producer's strand; io runs on this thread only
  // Declared after io: destroyed first, once run() has returned.
  kafka::producer producer{io, kafka::producer_config{.brokers = cluster.bootstrap()},
                           [this](kafka::delivery d) { reports.push_back(std::move(d)); }};
  std::map<std::string, int> next_counter;
  std::uint64_t next_token = 1;

  void send(int n) {
    for (int i = 0; i < n; ++i) {
      const std::string& key = keys[static_cast<std::size_t>(i) % keys.size()];
      kafka::record r{.topic = "task-events",
                      .key = key,
                      .value = key + "/" + std::to_string(next_counter[key]++),
                      .headers = {{"content-type", content_type}},
                      .token = next_token++};
      REQUIRE(producer.send(r) == kafka::producer::enqueue::queued);
    }
  }

  std::size_t delivered_ok() const {
    return static_cast<std::size_t>(std::count_if(reports.begin(), reports.end(), [](const auto& d) { return d.ok; }));
  }
};

struct consumed {
  std::int64_t partition = -1;
  std::string key;
  std::string value;
  std::string content_type;  // the header's value, empty when absent
};

// All records of `topic` in the order kcat prints them (per partition in
// offset order), from its JSON envelope output.
std::vector<consumed> read_with_kcat(const std::string& bootstrap, const std::string& topic) {
  std::string cmd = "timeout 20 kcat -q -b " + bootstrap + " -C -t " + topic + " -o beginning -e -J";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) {
    out.append(buf, n);
  }
  REQUIRE(::pclose(pipe) == 0);

  std::vector<consumed> records;
  simdjson::dom::parser parser;
  std::size_t start = 0;
  while (start < out.size()) {
    auto end = out.find('\n', start);
    if (end == std::string::npos) {
      end = out.size();
    }
    std::string line = out.substr(start, end - start);
    start = end + 1;
    if (line.empty()) {
      continue;
    }
    simdjson::dom::element e;
    REQUIRE(parser.parse(line).get(e) == simdjson::SUCCESS);
    consumed c;
    REQUIRE(e["partition"].get(c.partition) == simdjson::SUCCESS);
    std::string_view s;
    REQUIRE(e["key"].get(s) == simdjson::SUCCESS);
    c.key = s;
    REQUIRE(e["payload"].get(s) == simdjson::SUCCESS);
    c.value = s;
    simdjson::dom::array headers;  // kcat: ["name", "value", ...]
    if (e["headers"].get(headers) == simdjson::SUCCESS) {
      for (std::size_t i = 0; i + 1 < headers.size(); i += 2) {
        std::string_view name;
        std::string_view value;
        if (headers.at(i).get(name) == simdjson::SUCCESS && headers.at(i + 1).get(value) == simdjson::SUCCESS &&
            name == "content-type") {
          c.content_type = value;
        }
      }
    }
    records.push_back(std::move(c));
  }
  return records;
}

// Each key's counters, read in order, are exactly 0, 1, 2, ...: per-key
// order kept, nothing lost, nothing twice. Each key sits in one partition.
void check_per_key_order(const std::vector<consumed>& records, int per_key) {
  std::map<std::string, int> expected;
  std::map<std::string, std::int64_t> partition_of;
  for (const auto& r : records) {
    INFO("key " << r.key << " value " << r.value << " partition " << r.partition);
    REQUIRE((r.key == keys[0] || r.key == keys[1]));
    CHECK(r.content_type == content_type);
    auto [it, inserted] = partition_of.emplace(r.key, r.partition);
    CHECK(it->second == r.partition);
    auto slash = r.value.find('/');
    REQUIRE(slash != std::string::npos);
    CHECK(r.value.substr(0, slash) == r.key);
    int counter = -1;
    std::from_chars(r.value.data() + slash + 1, r.value.data() + r.value.size(), counter);
    REQUIRE(counter == expected[r.key]++);
  }
  for (const auto& k : keys) {
    CHECK(expected[k] == per_key);
  }
}

}  // namespace

TEST_CASE("records reach the broker with key, header and per-key order", "[kafka]") {
  mirror m;
  m.send(200);
  REQUIRE(eventually(m.io, 10s, [&] { return m.reports.size() == 200; }));
  CHECK(m.delivered_ok() == 200);
  CHECK(m.producer.brokers_up());

  auto records = read_with_kcat(m.cluster.bootstrap(), "task-events");
  REQUIRE(records.size() == 200);
  check_per_key_order(records, 100);
}

TEST_CASE("records sent while the broker is down are delivered in order when it returns", "[kafka]") {
  mirror m;
  m.send(200);
  REQUIRE(eventually(m.io, 10s, [&] { return m.reports.size() == 200; }));
  REQUIRE(m.delivered_ok() == 200);

  m.cluster.set_broker_up(1, false);
  m.send(50);
  CHECK(eventually(m.io, 10s, [&] { return !m.producer.brokers_up(); }));
  // Nothing is reported, neither delivered nor failed, while it is down.
  CHECK_FALSE(eventually(m.io, 1s, [&] { return m.reports.size() > 200; }));
  CHECK(m.producer.in_flight() >= 50);

  m.cluster.set_broker_up(1, true);
  REQUIRE(eventually(m.io, 20s, [&] { return m.reports.size() == 250; }));
  CHECK(m.delivered_ok() == 250);
  CHECK(m.producer.brokers_up());

  auto records = read_with_kcat(m.cluster.bootstrap(), "task-events");
  REQUIRE(records.size() == 250);
  check_per_key_order(records, 125);
}

TEST_CASE("a producer holding undeliverable records is destroyed without waiting for them", "[kafka]") {
  kafka::mock_cluster cluster(1, local_topics);
  asio::io_context io;
  int reports = 0;
  {
    kafka::producer p(io, {.brokers = cluster.bootstrap()}, [&](kafka::delivery) { ++reports; });
    cluster.set_broker_up(1, false);
    REQUIRE(p.send({.topic = "reminders", .key = "user-a", .value = "v", .token = 1}) ==
            kafka::producer::enqueue::queued);
    CHECK(eventually(io, 10s, [&] { return !p.brokers_up(); }));
    CHECK(p.in_flight() >= 1);
  }
  CHECK(reports == 0);
}

TEST_CASE("a property librdkafka refuses fails the producer's construction, naming it", "[kafka]") {
  asio::io_context io;
  kafka::producer_config cfg{.brokers = "127.0.0.1:9", .extra = {{"not.a.property", "1"}}};
  CHECK_THROWS_WITH(kafka::producer(io, cfg, [](kafka::delivery) {}), Catch::Contains("not.a.property"));
}

TEST_CASE("KAFKA_* variables pass through to librdkafka, the server's own stay out", "[kafka]") {
  auto p = kafka::passthrough({{"KAFKA_BROKERS", "kafka:9092"},
                               {"KAFKA_TOPIC_TASK_EVENTS", "events"},
                               {"KAFKA_SASL_MECHANISMS", "PLAIN"},
                               {"KAFKA_SECURITY_PROTOCOL", "sasl_ssl"},
                               {"KAFKA_SASL_USERNAME", "svc"},
                               {"HOME", "/root"},
                               {"KAFKA_NOT_A_PROPERTY", "1"}});
  CHECK(p == kafka::properties{{"sasl.mechanisms", "PLAIN"},
                               {"security.protocol", "sasl_ssl"},
                               {"sasl.username", "svc"},
                               {"not.a.property", "1"}});

  auto errors = kafka::validate(p);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].starts_with("KAFKA_NOT_A_PROPERTY: "));
  CHECK(kafka::validate({{"acks", "sometimes"}}).at(0).starts_with("KAFKA_ACKS: "));
}
