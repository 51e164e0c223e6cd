#pragma once
// What a client may send on its WebSocket: {"type":"resume","after":n}.
// Pure, so the parser is unit-tested and fuzzed without a connection.
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace todo::sync {

struct resume_command {
  std::int64_t after = 0;  // the last sequence number the client has; 0 or more
};

// The error text to send back for a frame that is not a command.
using client_frame = std::variant<resume_command, std::string>;

client_frame parse_client_frame(std::string_view text);

}  // namespace todo::sync
