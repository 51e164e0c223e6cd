#include "todo/json.hpp"

namespace todo::json {

void escape_into(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  // Runs that need no escaping are appended whole.
  std::size_t run = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') {
      continue;
    }
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        out += "\\u00";
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 0xf]);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

std::string quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  escape_into(out, s);
  return out;
}

void writer::separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!has_item_.empty()) {
    if (has_item_.back()) {
      out_.push_back(',');
    }
    has_item_.back() = true;
  }
}

writer& writer::begin_object() {
  separate();
  out_.push_back('{');
  has_item_.push_back(false);
  return *this;
}

writer& writer::end_object() {
  out_.push_back('}');
  has_item_.pop_back();
  return *this;
}

writer& writer::begin_array() {
  separate();
  out_.push_back('[');
  has_item_.push_back(false);
  return *this;
}

writer& writer::end_array() {
  out_.push_back(']');
  has_item_.pop_back();
  return *this;
}

writer& writer::key(std::string_view k) {
  separate();
  escape_into(out_, k);
  out_.push_back(':');
  after_key_ = true;
  return *this;
}

writer& writer::value(std::string_view s) {
  separate();
  escape_into(out_, s);
  return *this;
}

writer& writer::value(bool b) {
  separate();
  out_ += b ? "true" : "false";
  return *this;
}

writer& writer::value(std::int64_t n) {
  separate();
  out_ += std::to_string(n);
  return *this;
}

writer& writer::null() {
  separate();
  out_ += "null";
  return *this;
}

writer& writer::raw(std::string_view encoded) {
  separate();
  out_ += encoded;
  return *this;
}

}  // namespace todo::json
