#pragma once
// The series walk shared by next_occurrence and check_series.
#include "rule_parts.hpp"

#include <date/tz.h>

#include <chrono>
#include <optional>

namespace todo::recurrence {

enum class series_end { none, count, until, bound };

struct search_result {
  std::optional<std::chrono::sys_seconds> date;
  series_end end = series_end::none;  // why there is no date
};

// Dates examined per search at most; COUNT is capped below it, so counting
// from dtstart always fits.
inline constexpr int max_steps = 4 * max_count;

// Local wall time to UTC in one zone: the offset in force before the time,
// which gives RFC 5545's rule for gaps (skip forward by the gap) and
// overlaps (first occurrence). Remembers the offset period of its last
// answer: a series' dates seldom cross a change, and tz lookups would
// otherwise be most of a search's cost.
class wall_clock {
 public:
  explicit wall_clock(const date::time_zone& z) : zone_(&z) {}
  std::chrono::sys_seconds to_sys(date::local_seconds t);

 private:
  const date::time_zone* zone_;
  // Instants this far inside the remembered period, mapped with its offset,
  // are neither in a gap nor in an overlap: no offset ever changed by more.
  static constexpr std::chrono::hours margin{48};
  std::chrono::sys_seconds begin_{};  // the period shrunk by the margin; empty at first
  std::chrono::sys_seconds end_{};
  std::chrono::seconds offset_{};
};

search_result search(const rule_parts& p, const date::time_zone& z, std::chrono::sys_seconds dtstart,
                     std::chrono::sys_seconds after);

}  // namespace todo::recurrence
