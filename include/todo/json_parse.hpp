#pragma once
// Request bodies through simdjson's DOM. The element borrows the calling
// thread's parser: read everything out of it before the next parse on this
// thread, and before any co_await.
#include "todo/errors.hpp"

#include <simdjson.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace todo::json {

inline constexpr std::size_t max_depth = 64;

struct parse_outcome {
  simdjson::dom::element root;
  std::string error;  // empty on success: the 400 detail otherwise
};

parse_outcome parse_body(std::string_view body);

// A body that must be one JSON object: its members in order, each key once,
// or what is wrong with it: `error` for a 400 (not JSON, too deep), `errors`
// for a 422 (not an object, a key sent twice; those members are left out).
// Members borrow the parser as parse_body's root does.
struct object_outcome {
  std::vector<std::pair<std::string_view, simdjson::dom::element>> members;
  std::string error;
  field_errors errors;
  bool object = false;  // the body is a JSON object (members may follow)
};

object_outcome parse_object(std::string_view body);

// A JSON type name for messages: "a string", "an object", ...
std::string_view type_name(const simdjson::dom::element& e);

}  // namespace todo::json
