#pragma once
// A rule's dates as local days, period by period (RFC 5545, 3.3.10), without
// COUNT and UNTIL: the series walk applies those.
#include "rule_parts.hpp"

#include <date/date.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>

namespace todo::recurrence {

// The BY parts as bit masks, with dtstart's defaults filled in, so that a
// period's dates are a few mask operations.
struct day_filter {
  frequency freq = frequency::daily;
  std::uint16_t months = 0;                     // bit m for month m; 0: any month
  bool by_monthday = false;                     // else every day passes
  std::uint32_t monthdays = 0;                  // bit d: day d
  std::uint32_t monthdays_from_end = 0;         // bit d: day -d
  bool by_day = false;                          // else every weekday passes
  std::uint8_t weekdays = 0;                    // bit w (0 = MO): every such weekday
  std::array<std::uint64_t, 7> nth{};           // per weekday, bit n: the n-th
  std::array<std::uint64_t, 7> nth_from_end{};  // per weekday, bit n: the n-th from the end
  bool nth_in_year = false;                     // ordinals count in the year, not the month
};

day_filter make_filter(const rule_parts& p, date::year_month_day dtstart);

class expansion {
 public:
  // Borrows p, which must outlive the expansion.
  expansion(const rule_parts& p, date::local_days dtstart);

  // Continues with the period holding `from` (not before dtstart's), keeping
  // the INTERVAL phase set by dtstart.
  void skip_to(date::local_days from);
  // The next date in order, or none when a whole calendar cycle (400 years)
  // of periods held no date, so none ever will, or past the year 9999.
  std::optional<date::local_days> next();

 private:
  // Fills days_ with period `period_`'s dates; false past the year 9999.
  bool fill();

  day_filter filter_;
  std::span<const int> setpos_;  // BYSETPOS of the rule_parts, which outlive this
  int interval_ = 1;
  int wkst_ = 0;
  std::int64_t first_ = 0;    // dtstart's period: a day, week start day, month or year number
  std::int64_t period_ = -1;  // periods since first_, in steps of one INTERVAL
  std::int64_t cycle_ = 0;    // periods in 400 years: more empty ones in a row mean never
  std::int64_t empty_run_ = 0;
  std::array<std::int32_t, 366> days_{};  // days since 1970-01-01
  int size_ = 0;
  int pos_ = 0;
};

}  // namespace todo::recurrence
