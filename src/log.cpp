#include "todo/log.hpp"

#include "todo/json.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>

namespace todo::log {
namespace {

std::atomic<int> current{static_cast<int>(level::info)};
std::mutex limiter_mu;

std::string_view name(level l) {
  switch (l) {
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "warn";
    case level::error: return "error";
  }
  return "info";
}

void timestamp(std::string& out) {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  out += buf;
}

}  // namespace

bool parse_level(std::string_view s, level& out) {
  for (auto l : {level::debug, level::info, level::warn, level::error}) {
    if (s == name(l)) {
      out = l;
      return true;
    }
  }
  return false;
}

void set_level(level l) { current.store(static_cast<int>(l), std::memory_order_relaxed); }

bool enabled(level l) { return static_cast<int>(l) >= current.load(std::memory_order_relaxed); }

void write(level l, std::string_view module, std::string_view msg, std::initializer_list<field> fields) {
  if (!enabled(l)) {
    return;
  }
  std::string line;
  line.reserve(160);
  line += "{\"ts\":\"";
  timestamp(line);
  line += "\",\"level\":\"";
  line += name(l);
  line += "\",\"msg\":";
  json::escape_into(line, msg);
  line += ",\"module\":";
  json::escape_into(line, module);
  for (const auto& f : fields) {
    line.push_back(',');
    json::escape_into(line, f.key);
    line.push_back(':');
    if (auto s = std::get_if<std::string_view>(&f.value)) {
      json::escape_into(line, *s);
    } else if (auto i = std::get_if<std::int64_t>(&f.value)) {
      line += std::to_string(*i);
    } else if (auto b = std::get_if<bool>(&f.value)) {
      line += *b ? "true" : "false";
    } else {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.6g", std::get<double>(f.value));
      line += buf;
    }
  }
  line += "}\n";
  // One write(2) per line keeps lines whole across threads without a lock.
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDOUT_FILENO, p, left);
    if (n <= 0) {
      break;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

std::int64_t limiter::admit() {
  std::lock_guard lock(limiter_mu);
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
                 .count();
  if (now != window_) {
    window_ = now;
    used_ = 0;
  }
  if (used_ >= per_second_) {
    ++suppressed_;
    return -1;
  }
  ++used_;
  auto s = suppressed_;
  suppressed_ = 0;
  return s;
}

}  // namespace todo::log
