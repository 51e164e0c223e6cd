#pragma once
// What the tasks module asks of recurrence: implemented by the recurrence
// module and handed over through the app at install time, so neither
// module includes the other. Pure: no I/O beyond the system tz database.
#include "todo/time.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace todo {

// Why a rule or series is refused (a 422): `part` names the RRULE part
// ("BYMONTHDAY"), the shorthand member ("every"), or "timezone".
struct recurrence_problem {
  std::string part;
  std::string message;
};

class recurrence_rules {
 public:
  virtual ~recurrence_rules() = default;

  // An RRULE value to its canonical text.
  virtual std::variant<std::string, recurrence_problem> parse(std::string_view rrule) const = 0;
  // {"every": ..., "interval": n} to the canonical text of the same rule.
  virtual std::variant<std::string, recurrence_problem> shorthand(std::string_view every,
                                                                 std::int64_t interval) const = 0;
  // Whether the series that starts at due_at (its first occurrence) in
  // `zone` has a date after it.
  virtual std::optional<recurrence_problem> check(std::string_view rrule, std::string_view zone,
                                                  time::ms due_at) const = 0;
  // The series' first date after `after`: the series starts at `start`
  // (its DTSTART, occurrence 1 of COUNT, whose local time of day every
  // date keeps). None when COUNT or UNTIL has ended the series.
  virtual std::optional<time::ms> next(std::string_view rrule, std::string_view zone, time::ms start,
                                       time::ms after) const = 0;
};

}  // namespace todo
