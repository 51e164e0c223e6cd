#include "client_frame.hpp"

#include "todo/json_parse.hpp"

namespace todo::sync {

client_frame parse_client_frame(std::string_view text) {
  // The element borrows this thread's parser: everything is read out here.
  auto parsed = json::parse_body(text);
  if (!parsed.error.empty() || !parsed.root.is_object()) {
    return std::string("frames must be JSON objects such as {\"type\":\"resume\",\"after\":41}");
  }
  std::string_view type;
  if (parsed.root["type"].get(type) != simdjson::SUCCESS || type != "resume") {
    return std::string("unknown type; the only command is {\"type\":\"resume\",\"after\":n}");
  }
  std::int64_t after = 0;
  if (parsed.root["after"].get(after) != simdjson::SUCCESS || after < 0) {
    return std::string("resume needs \"after\": a sequence number (0 or more)");
  }
  return resume_command{after};
}

}  // namespace todo::sync
