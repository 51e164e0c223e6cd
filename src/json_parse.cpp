#include "todo/json_parse.hpp"

#include <algorithm>

namespace todo::json {

namespace {
// The deepest nesting of arrays and objects, counted outside strings.
// simdjson counts an innermost container that holds a value one deeper than
// an empty one, so the contract's limit is checked here, exactly.
std::size_t nesting(std::string_view body) {
  std::size_t depth = 0;
  std::size_t deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}
}  // namespace

parse_outcome parse_body(std::string_view body) {
  thread_local simdjson::dom::parser parser;
  thread_local bool allocated = false;
  parse_outcome out;
  if (!allocated) {
    // Capacity grows on demand; the exact depth check is nesting() above.
    if (parser.allocate(64 * 1024, max_depth + 2) != simdjson::SUCCESS) {
      out.error = "Cannot allocate a JSON parser";
      return out;
    }
    allocated = true;
  }
  if (nesting(body) > max_depth) {
    out.error = "JSON is nested deeper than 64 levels";
    return out;
  }
  if (body.empty()) {
    // simdjson would copy from the view's null pointer.
    out.error = "The body is not valid JSON";
    return out;
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

object_outcome parse_object(std::string_view body) {
  object_outcome out;
  auto parsed = parse_body(body);
  if (!parsed.error.empty()) {
    out.error = std::move(parsed.error);
    return out;
  }
  simdjson::dom::object obj;
  if (parsed.root.get(obj) != simdjson::SUCCESS) {
    out.errors.push_back({"", "the body must be a JSON object"});
    return out;
  }
  out.object = true;
  for (auto field : obj) {
    bool again = std::any_of(out.members.begin(), out.members.end(),
                             [&field](const auto& m) { return m.first == field.key; });
    if (again) {
      out.errors.push_back({std::string(field.key), "appears more than once"});
      continue;
    }
    out.members.emplace_back(field.key, field.value);
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
