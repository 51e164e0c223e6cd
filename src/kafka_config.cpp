// KAFKA_* environment variables passed through to librdkafka, and checked
// against it at start so that a typo fails the start, not the first publish.
#include "todo/kafka.hpp"

#include <librdkafka/rdkafka.h>

#include <cctype>
#include <memory>

namespace todo::kafka {
namespace {

constexpr std::string_view prefix = "KAFKA_";

struct conf_free {
  void operator()(rd_kafka_conf_t* c) const noexcept { rd_kafka_conf_destroy(c); }
};

// Ours, not librdkafka's: the bootstrap list and topic names.
bool is_server_variable(std::string_view name) {
  return name == "KAFKA_BROKERS" || name.starts_with("KAFKA_TOPIC_");
}

std::string to_property(std::string_view variable) {
  std::string out(variable.substr(prefix.size()));
  for (char& c : out) {
    c = c == '_' ? '.' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string to_variable(std::string_view property) {
  std::string out(prefix);
  for (char c : property) {
    out.push_back(c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return out;
}

}  // namespace

properties passthrough(const std::vector<std::pair<std::string, std::string>>& env) {
  properties out;
  for (const auto& [name, value] : env) {
    if (name.size() > prefix.size() && name.starts_with(prefix) && !is_server_variable(name)) {
      out.emplace_back(to_property(name), value);
    }
  }
  return out;
}

std::vector<std::string> validate(const properties& p) {
  std::vector<std::string> errors;
  // A scratch conf: librdkafka checks names and values as they are set.
  std::unique_ptr<rd_kafka_conf_t, conf_free> scratch(rd_kafka_conf_new());
  for (const auto& [name, value] : p) {
    char err[512];
    if (rd_kafka_conf_set(scratch.get(), name.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      errors.push_back(to_variable(name) + ": " + err);
    }
  }
  return errors;
}

}  // namespace todo::kafka
