#pragma once
// JSON-lines logging: one object per line with ts, level, msg (a constant),
// module, then fields. Variables belong in fields, never in msg.
#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <variant>

namespace todo::log {

enum class level { debug = 0, info, warn, error };

// Returns false for an unknown name.
bool parse_level(std::string_view s, level& out);
void set_level(level l);
bool enabled(level l);

struct field {
  std::string_view key;
  std::variant<std::string_view, std::int64_t, bool, double> value;

  field(std::string_view k, std::string_view v) : key(k), value(v) {}
  field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  field(std::string_view k, std::int64_t v) : key(k), value(v) {}
  field(std::string_view k, int v) : key(k), value(static_cast<std::int64_t>(v)) {}
  field(std::string_view k, unsigned v) : key(k), value(static_cast<std::int64_t>(v)) {}
  field(std::string_view k, std::size_t v) : key(k), value(static_cast<std::int64_t>(v)) {}
  field(std::string_view k, bool v) : key(k), value(v) {}
  field(std::string_view k, double v) : key(k), value(v) {}
};

void write(level l, std::string_view module, std::string_view msg, std::initializer_list<field> fields = {});

inline void debug(std::string_view m, std::string_view msg, std::initializer_list<field> f = {}) {
  if (enabled(level::debug)) {
    write(level::debug, m, msg, f);
  }
}
inline void info(std::string_view m, std::string_view msg, std::initializer_list<field> f = {}) {
  if (enabled(level::info)) {
    write(level::info, m, msg, f);
  }
}
inline void warn(std::string_view m, std::string_view msg, std::initializer_list<field> f = {}) {
  write(level::warn, m, msg, f);
}
inline void error(std::string_view m, std::string_view msg, std::initializer_list<field> f = {}) {
  write(level::error, m, msg, f);
}

// At most `per_second` lines pass for one call site; the rest are counted
// and the count is reported on the next line that passes.
class limiter {
 public:
  explicit limiter(int per_second) : per_second_(per_second) {}
  // Returns how many were suppressed since the last pass, or -1 to drop.
  std::int64_t admit();

 private:
  int per_second_;
  std::int64_t window_ = 0;
  int used_ = 0;
  std::int64_t suppressed_ = 0;
};

}  // namespace todo::log
