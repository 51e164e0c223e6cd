#pragma once
// A small streaming JSON writer. Output is compact UTF-8; strings are
// escaped per RFC 8259 (control characters as \u00XX).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace todo::json {

void escape_into(std::string& out, std::string_view s);
std::string quote(std::string_view s);

class writer {
 public:
  writer& begin_object();
  writer& end_object();
  writer& begin_array();
  writer& end_array();
  writer& key(std::string_view k);
  writer& value(std::string_view s);
  writer& value(const char* s) { return value(std::string_view(s)); }
  writer& value(const std::string& s) { return value(std::string_view(s)); }
  writer& value(bool b);
  writer& value(std::int64_t n);
  writer& value(int n) { return value(static_cast<std::int64_t>(n)); }
  writer& null();
  // Inserts already-encoded JSON.
  writer& raw(std::string_view encoded);

  const std::string& str() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void separate();
  std::string out_;
  std::vector<bool> has_item_;  // one entry per open container
  bool after_key_ = false;
};

}  // namespace todo::json
