#pragma once
// Request bodies through simdjson's DOM. The element borrows the calling
// thread's parser: read everything out of it before the next parse on this
// thread, and before any co_await.
#include "todo/errors.hpp"

#include <simdjson.h>

#include <string>
#include <string_view>

namespace todo::json {

inline constexpr std::size_t max_depth = 64;

struct parse_outcome {
  simdjson::dom::element root;
  std::string error;  // empty on success: the 400 detail otherwise
};

parse_outcome parse_body(std::string_view body);

// A JSON type name for messages: "a string", "an object", ...
std::string_view type_name(const simdjson::dom::element& e);

}  // namespace todo::json
