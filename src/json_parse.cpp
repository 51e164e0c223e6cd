#include "todo/json_parse.hpp"

namespace todo::json {

parse_outcome parse_body(std::string_view body) {
  thread_local simdjson::dom::parser parser;
  thread_local bool allocated = false;
  parse_outcome out;
  if (!allocated) {
    // Capacity grows on demand; depth is fixed at the contract's limit.
    if (parser.allocate(64 * 1024, max_depth) != simdjson::SUCCESS) {
      out.error = "Cannot allocate a JSON parser";
      return out;
    }
    allocated = true;
  }
  auto r = parser.parse(body.data(), body.size(), true);
  if (r.error() == simdjson::DEPTH_ERROR) {
    out.error = "JSON is nested deeper than 64 levels";
  } else if (r.error() == simdjson::UTF8_ERROR) {
    out.error = "The body is not valid UTF-8";
  } else if (r.error() != simdjson::SUCCESS) {
    out.error = "The body is not valid JSON";
  } else {
    out.root = r.value_unsafe();
  }
  return out;
}

std::string_view type_name(const simdjson::dom::element& e) {
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY: return "an array";
    case simdjson::dom::element_type::OBJECT: return "an object";
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE: return "a number";
    case simdjson::dom::element_type::STRING: return "a string";
    case simdjson::dom::element_type::BOOL: return "a boolean";
    case simdjson::dom::element_type::NULL_VALUE: return "null";
  }
  return "a value";
}

}  // namespace todo::json
