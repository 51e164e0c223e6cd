#pragma once
// Where a WebSocket client's token comes from. Pure.
#include "todo/http.hpp"

#include <optional>
#include <string>

namespace todo::sync {

struct presented_token {
  std::string token;
  std::string subprotocol;  // "bearer.<token>" to echo, when that is how it came
};

// Authorization: Bearer, then ?access_token=, then a "bearer.<token>"
// entry in Sec-WebSocket-Protocol.
std::optional<presented_token> find_token(const http::request& req);

}  // namespace todo::sync
