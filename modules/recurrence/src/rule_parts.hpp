#pragma once
// A rule taken apart, for the engine; the public rule keeps only its text.
#include "recurrence/recurrence.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace todo::recurrence {

enum class frequency { daily, weekly, monthly, yearly };

// Weekdays 0 = MO .. 6 = SU, as RFC 5545 lists them.
struct weekday_num {
  int ordinal = 0;  // 0: every such weekday in the period
  int weekday = 0;
  friend auto operator<=>(const weekday_num&, const weekday_num&) = default;
};

struct until_value {
  bool date_only = false;  // YYYYMMDD: the series ends with that local day
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;  // UTC unless date_only
};

struct rule_parts {
  frequency freq = frequency::daily;
  int interval = 1;
  std::optional<int> count;
  std::optional<until_value> until;
  std::vector<int> bymonth;
  std::vector<int> bymonthday;
  std::vector<weekday_num> byday;
  std::vector<int> bysetpos;
  int wkst = 0;
};

result<rule_parts> parse_parts(std::string_view text);

// Canonical text (see rule in recurrence.hpp).
std::string format_parts(const rule_parts& p);

}  // namespace todo::recurrence
