#include "rule_parts.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>

namespace todo::recurrence {
namespace {

constexpr std::array<std::string_view, 7> weekday_names{"MO", "TU", "WE", "TH", "FR", "SA", "SU"};
// February counts 29 days: a day that exists in some year is possible.
constexpr std::array<int, 12> max_month_days{31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

rule_error err(std::string_view part, std::string message) { return {std::string(part), std::move(message)}; }

std::optional<int> parse_int(std::string_view s) {
  if (s.empty() || s.size() > 6) {
    return std::nullopt;
  }
  std::size_t pos = (s[0] == '+' || s[0] == '-') ? 1 : 0;
  if (pos == s.size()) {
    return std::nullopt;
  }
  int v = 0;
  auto [end, ec] = std::from_chars(s.data() + pos, s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return std::nullopt;
  }
  return s[0] == '-' ? -v : v;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    auto i = s.find(sep);
    out.push_back(s.substr(0, i));
    if (i == std::string_view::npos) {
      return out;
    }
    s.remove_prefix(i + 1);
  }
}

std::optional<int> weekday_index(std::string_view s) {
  for (std::size_t i = 0; i < weekday_names.size(); ++i) {
    if (s == weekday_names[i]) {
      return static_cast<int>(i);
    }
  }
  return std::nullopt;
}

// A comma list of integers in [-max, -1] ∪ [1, max] (or [1, max] when !negative_ok).
result<std::vector<int>> int_list(std::string_view part, std::string_view value, int max, bool negative_ok) {
  std::set<int> seen;
  for (auto item : split(value, ',')) {
    auto v = parse_int(item);
    if (!v || *v == 0 || *v > max || *v < (negative_ok ? -max : 1)) {
      auto range = negative_ok ? "1.." + std::to_string(max) + " or -" + std::to_string(max) + "..-1"
                               : "1.." + std::to_string(max);
      return err(part, "'" + std::string(item) + "' is not a number in " + range);
    }
    seen.insert(*v);
  }
  return std::vector<int>(seen.begin(), seen.end());
}

result<std::vector<weekday_num>> day_list(std::string_view value) {
  std::set<weekday_num> seen;
  for (auto item : split(value, ',')) {
    if (item.size() < 2) {
      return err("BYDAY", "'" + std::string(item) + "' is not a weekday such as MO, 1MO or -1FR");
    }
    auto day = weekday_index(item.substr(item.size() - 2));
    auto ord_text = item.substr(0, item.size() - 2);
    std::optional<int> ord = ord_text.empty() ? std::optional<int>(0) : parse_int(ord_text);
    if (!day || !ord || (!ord_text.empty() && (*ord == 0 || *ord > 53 || *ord < -53))) {
      return err("BYDAY", "'" + std::string(item) + "' is not a weekday such as MO, 1MO or -1FR");
    }
    seen.insert({*ord, *day});
  }
  std::vector<weekday_num> out(seen.begin(), seen.end());
  std::sort(out.begin(), out.end(), [](const weekday_num& a, const weekday_num& b) {
    return std::pair(a.weekday, a.ordinal) < std::pair(b.weekday, b.ordinal);
  });
  return out;
}

bool digits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

result<until_value> parse_until(std::string_view v) {
  until_value u;
  bool date_form = v.size() == 8 && digits(v);
  bool utc_form = v.size() == 16 && digits(v.substr(0, 8)) && v[8] == 'T' && digits(v.substr(9, 6)) && v[15] == 'Z';
  if (!date_form && !utc_form) {
    return err("UNTIL", "must be a UTC date-time such as 20261231T235959Z, or a date such as 20261231");
  }
  auto num = [&](std::size_t pos, std::size_t n) { return *parse_int(v.substr(pos, n)); };
  u.date_only = date_form;
  u.year = num(0, 4);
  u.month = num(4, 2);
  u.day = num(6, 2);
  if (utc_form) {
    u.hour = num(9, 2);
    u.minute = num(11, 2);
    u.second = num(13, 2);
  }
  std::chrono::year_month_day ymd{std::chrono::year(u.year), std::chrono::month(static_cast<unsigned>(u.month)),
                                  std::chrono::day(static_cast<unsigned>(u.day))};
  if (u.year < 1900 || !ymd.ok() || u.hour > 23 || u.minute > 59 || u.second > 59) {
    return err("UNTIL", "is not a valid date");
  }
  return u;
}

// Checks between parts, in the order a client would fix them.
std::optional<rule_error> check_combination(const rule_parts& p) {
  bool by_period = p.freq == frequency::monthly || p.freq == frequency::yearly;
  if (p.count && p.until) {
    return err("UNTIL", "COUNT and UNTIL cannot both be given");
  }
  if (!p.bymonthday.empty() && p.freq == frequency::weekly) {
    return err("BYMONTHDAY", "cannot be used with FREQ=WEEKLY");
  }
  int ordinal_max = (p.freq == frequency::yearly && p.bymonth.empty()) ? 53 : 5;
  for (const auto& d : p.byday) {
    if (d.ordinal != 0 && !by_period) {
      return err("BYDAY", "ordinals such as 1MO need FREQ=MONTHLY or FREQ=YEARLY");
    }
    if (std::abs(d.ordinal) > ordinal_max) {
      return err("BYDAY", "ordinals go up to " + std::to_string(ordinal_max) + " here");
    }
  }
  if (!p.bymonthday.empty()) {
    std::vector<int> months = p.bymonth;
    if (months.empty()) {
      months = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    }
    bool possible = std::any_of(months.begin(), months.end(), [&](int m) {
      return std::any_of(p.bymonthday.begin(), p.bymonthday.end(),
                         [&](int d) { return std::abs(d) <= max_month_days[static_cast<std::size_t>(m - 1)]; });
    });
    if (!possible) {
      return err("BYMONTHDAY", "no month in BYMONTH has such a day");
    }
  }
  if (!p.bysetpos.empty()) {
    if (p.byday.empty() && p.bymonthday.empty() && p.bymonth.empty()) {
      return err("BYSETPOS", "needs BYDAY, BYMONTHDAY or BYMONTH to choose from");
    }
    // An upper bound of the dates one period can hold: when every position
    // is beyond it nothing ever matches, which needs no start date to tell.
    int months = p.bymonth.empty() ? 12 : static_cast<int>(p.bymonth.size());
    int bound = 1;
    int by_days = 0;
    for (const auto& d : p.byday) {
      by_days += d.ordinal != 0                                          ? 1
                 : p.freq == frequency::weekly                           ? 1
                 : (p.freq == frequency::yearly && p.bymonth.empty())    ? 53
                 : p.freq == frequency::yearly                           ? 5 * months
                                                                         : 5;
    }
    if (p.freq == frequency::yearly && !p.bymonth.empty()) {
      // Ordinals count within each listed month.
      int ordinals = static_cast<int>(std::count_if(p.byday.begin(), p.byday.end(),
                                                    [](const weekday_num& d) { return d.ordinal != 0; }));
      by_days += ordinals * (months - 1);
    }
    int by_monthdays = static_cast<int>(p.bymonthday.size()) * (p.freq == frequency::yearly ? months : 1);
    if (p.freq == frequency::daily) {
      bound = 1;
    } else if (!p.byday.empty() && !p.bymonthday.empty()) {
      bound = std::min(by_days, by_monthdays);
    } else if (!p.byday.empty()) {
      bound = by_days;
    } else if (!p.bymonthday.empty()) {
      bound = by_monthdays;
    } else if (p.freq == frequency::yearly) {
      bound = p.bymonth.empty() ? 1 : months;
    }
    if (std::all_of(p.bysetpos.begin(), p.bysetpos.end(), [&](int pos) { return std::abs(pos) > bound; })) {
      return err("BYSETPOS", "a period of this rule holds at most " + std::to_string(bound) + " date" +
                                 (bound == 1 ? "" : "s"));
    }
  }
  return std::nullopt;
}

}  // namespace

result<rule_parts> parse_parts(std::string_view text) {
  std::string up;
  for (char c : text) {
    up.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c);
  }
  std::string_view s = up;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) {
    s.remove_prefix(1);
  }
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
    s.remove_suffix(1);
  }
  if (s.starts_with("RRULE:")) {
    s.remove_prefix(6);
  }
  if (s.size() > 1000) {
    return err("RRULE", "is too long");
  }
  rule_parts p;
  std::set<std::string_view> seen;
  for (auto item : split(s, ';')) {
    if (item.empty()) {
      continue;
    }
    auto eq = item.find('=');
    auto name = item.substr(0, eq);
    if (name.empty()) {
      // "=..." names no part to blame.
      return err("RRULE", "has a part without a name (NAME=VALUE)");
    }
    if (eq == std::string_view::npos || eq + 1 == item.size()) {
      return err(name, "needs a value (NAME=VALUE)");
    }
    auto value = item.substr(eq + 1);
    if (!seen.insert(name).second) {
      return err(name, "is given twice");
    }
    if (name == "FREQ") {
      if (value == "DAILY") {
        p.freq = frequency::daily;
      } else if (value == "WEEKLY") {
        p.freq = frequency::weekly;
      } else if (value == "MONTHLY") {
        p.freq = frequency::monthly;
      } else if (value == "YEARLY") {
        p.freq = frequency::yearly;
      } else if (value == "HOURLY" || value == "MINUTELY" || value == "SECONDLY") {
        return err(name, "only DAILY, WEEKLY, MONTHLY and YEARLY are supported: a task has one due time a day");
      } else {
        return err(name, "must be DAILY, WEEKLY, MONTHLY or YEARLY");
      }
    } else if (name == "INTERVAL" || name == "COUNT") {
      int max = name == "INTERVAL" ? max_interval : max_count;
      auto v = parse_int(value);
      if (!v || *v < 1 || *v > max || value[0] == '+' || value[0] == '-') {
        return err(name, "must be a whole number from 1 to " + std::to_string(max));
      }
      (name == "INTERVAL" ? p.interval : p.count.emplace()) = *v;
    } else if (name == "UNTIL") {
      auto u = parse_until(value);
      if (!u) {
        return u.error();
      }
      p.until = *u;
    } else if (name == "BYMONTH") {
      auto v = int_list(name, value, 12, false);
      if (!v) {
        return v.error();
      }
      p.bymonth = std::move(*v);
    } else if (name == "BYMONTHDAY") {
      auto v = int_list(name, value, 31, true);
      if (!v) {
        return v.error();
      }
      p.bymonthday = std::move(*v);
    } else if (name == "BYSETPOS") {
      auto v = int_list(name, value, 366, true);
      if (!v) {
        return v.error();
      }
      p.bysetpos = std::move(*v);
    } else if (name == "BYDAY") {
      auto v = day_list(value);
      if (!v) {
        return v.error();
      }
      p.byday = std::move(*v);
    } else if (name == "WKST") {
      auto d = weekday_index(value);
      if (!d) {
        return err(name, "must be a weekday: MO, TU, WE, TH, FR, SA or SU");
      }
      p.wkst = *d;
    } else if (name == "BYHOUR" || name == "BYMINUTE" || name == "BYSECOND") {
      return err(name, "is not supported: the time of day comes from due_at");
    } else if (name == "BYWEEKNO" || name == "BYYEARDAY" || name == "RSCALE" || name == "SKIP") {
      return err(name, "is not supported");
    } else {
      return err(name.empty() ? std::string_view("RRULE") : name, "is not an RRULE part");
    }
  }
  if (!seen.contains("FREQ")) {
    return err("FREQ", "is required");
  }
  if (auto e = check_combination(p)) {
    return *e;
  }
  return p;
}

std::string format_parts(const rule_parts& p) {
  static constexpr std::array<std::string_view, 4> freqs{"DAILY", "WEEKLY", "MONTHLY", "YEARLY"};
  std::string out = "FREQ=";
  out += freqs[static_cast<std::size_t>(p.freq)];
  auto list = [&](std::string_view name, const std::vector<int>& v) {
    if (v.empty()) {
      return;
    }
    out += ';';
    out += name;
    out += '=';
    for (std::size_t i = 0; i < v.size(); ++i) {
      out += (i ? "," : "") + std::to_string(v[i]);
    }
  };
  if (p.interval != 1) {
    out += ";INTERVAL=" + std::to_string(p.interval);
  }
  if (p.count) {
    out += ";COUNT=" + std::to_string(*p.count);
  }
  if (p.until) {
    char buf[32];
    const auto& u = *p.until;
    if (u.date_only) {
      std::snprintf(buf, sizeof buf, "%04d%02d%02d", u.year, u.month, u.day);
    } else {
      std::snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02dZ", u.year, u.month, u.day, u.hour, u.minute,
                    u.second);
    }
    out += ";UNTIL=";
    out += buf;
  }
  list("BYMONTH", p.bymonth);
  list("BYMONTHDAY", p.bymonthday);
  if (!p.byday.empty()) {
    out += ";BYDAY=";
    for (std::size_t i = 0; i < p.byday.size(); ++i) {
      if (i) {
        out += ',';
      }
      if (p.byday[i].ordinal != 0) {
        out += std::to_string(p.byday[i].ordinal);
      }
      out += weekday_names[static_cast<std::size_t>(p.byday[i].weekday)];
    }
  }
  list("BYSETPOS", p.bysetpos);
  if (p.wkst != 0) {
    out += ";WKST=";
    out += weekday_names[static_cast<std::size_t>(p.wkst)];
  }
  return out;
}

}  // namespace todo::recurrence
