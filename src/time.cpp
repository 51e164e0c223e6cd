#include "todo/time.hpp"

#include <cstdio>

namespace todo::time {
namespace {

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) {
    return false;
  }
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

}  // namespace

ms now() { return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now()); }

std::optional<ms> parse_rfc3339(std::string_view s) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!digits(s, 0, 4, y) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't') || !digits(s, 11, 2, h) || s[13] != ':' ||
      !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, sec)) {
    return std::nullopt;
  }
  std::chrono::year_month_day ymd{std::chrono::year(y), std::chrono::month(static_cast<unsigned>(mo)),
                                  std::chrono::day(static_cast<unsigned>(d))};
  if (y < 1 || !ymd.ok() || h > 23 || mi > 59 || sec > 59) {
    return std::nullopt;
  }
  std::size_t pos = 19;
  std::int64_t millis = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (pos - start < 3) {
        millis = millis * 10 + (s[pos] - '0');
      }
      ++pos;
    }
    if (pos == start) {
      return std::nullopt;
    }
    for (auto n = pos - start; n < 3; ++n) {
      millis *= 10;
    }
  }
  int offset_minutes = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh = 0, om = 0;
    if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' || !digits(s, pos + 4, 2, om) ||
        oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_minutes = (oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) {
    return std::nullopt;
  }
  auto t = std::chrono::sys_days(ymd) + std::chrono::hours(h) + std::chrono::minutes(mi) + std::chrono::seconds(sec) +
           std::chrono::milliseconds(millis) - std::chrono::minutes(offset_minutes);
  return std::chrono::time_point_cast<std::chrono::milliseconds>(t);
}

std::string format(ms t) {
  auto days = std::chrono::floor<std::chrono::days>(t);
  std::chrono::year_month_day ymd{days};
  std::chrono::hh_mm_ss<std::chrono::milliseconds> hms{t - days};
  char buf[40];
  auto millis = hms.subseconds().count();
  const int year = static_cast<int>(ymd.year());
  if (year >= 0 && year <= 9999) {
    // Written digit by digit: listings format three stamps per task, and
    // snprintf was a visible share of their time.
    auto put = [](char* at, unsigned v, int width) {
      for (int i = width - 1; i >= 0; --i) {
        at[i] = static_cast<char>('0' + v % 10);
        v /= 10;
      }
    };
    std::string out(millis == 0 ? 20 : 24, '\0');
    put(&out[0], static_cast<unsigned>(year), 4);
    out[4] = '-';
    put(&out[5], static_cast<unsigned>(ymd.month()), 2);
    out[7] = '-';
    put(&out[8], static_cast<unsigned>(ymd.day()), 2);
    out[10] = 'T';
    put(&out[11], static_cast<unsigned>(hms.hours().count()), 2);
    out[13] = ':';
    put(&out[14], static_cast<unsigned>(hms.minutes().count()), 2);
    out[16] = ':';
    put(&out[17], static_cast<unsigned>(hms.seconds().count()), 2);
    if (millis != 0) {
      out[19] = '.';
      put(&out[20], static_cast<unsigned>(millis), 3);
    }
    out.back() = 'Z';
    return out;
  }
  if (millis == 0) {
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
  } else {
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()), static_cast<int>(millis));
  }
  return buf;
}

std::int64_t to_unix_ms(ms t) { return t.time_since_epoch().count(); }

ms from_unix_ms(std::int64_t v) { return ms(std::chrono::milliseconds(v)); }

}  // namespace todo::time
