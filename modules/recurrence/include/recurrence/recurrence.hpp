#pragma once
// Recurrence rules (a subset of RFC 5545 RRULE) and their next dates in an
// IANA time zone. Pure: no I/O beyond the system tz database, no Asio.
//
// A series is a rule, a zone and its first due date (dtstart). Dates are
// computed in the zone's local wall-clock time, at dtstart's local time of
// day, then mapped to UTC: a local time inside a spring-forward gap takes the
// offset from before the gap (02:30 becomes 03:30), a local time that occurs
// twice takes its first occurrence (RFC 5545, 3.3.5). A local day skipped
// whole (Samoa, 2011-12-30) lands on the next day's instant: one date.
//
// The expansion is our own, checked against python-dateutil by the oracle
// test: libical 3.0 (Debian 12) gets weekly rules with BYDAY or WKST wrong
// and, running every step through ICU, stays under the 200 000 next dates a
// second wanted (see README.md).
//
// Trap: the system tz database as read by the date library lists offset
// changes up to 2037 only; dates after that keep the last offset listed.
#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace todo {
struct app;
class recurrence_rules;
}

namespace todo::recurrence {

// Hands the engine to the tasks module as app.recurrence
// (todo::recurrence_rules); call before the tasks module installs.
void install(todo::app& a);
// The same engine behind todo::recurrence_rules, for callers without an app
// (the fuzz targets).
std::shared_ptr<const todo::recurrence_rules> make_rules();

// Why a rule or series was refused (a 422): `part` names the RRULE part
// ("FREQ", "BYMONTHDAY", ...), the shorthand member ("every", "interval"),
// "timezone", or "RRULE" when no one part is to blame; `message` is client
// text that reads after the part ("COUNT leaves no date after due_at").
struct rule_error {
  std::string part;
  std::string message;
};

template <class T>
using result = boost::system::result<T, rule_error>;

// A validated rule in canonical form: upper case, parts in the order FREQ,
// INTERVAL, COUNT, UNTIL, BYMONTH, BYMONTHDAY, BYDAY, BYSETPOS, WKST, lists
// sorted without duplicates, defaults (INTERVAL=1, WKST=MO) left out.
class rule {
 public:
  const std::string& text() const noexcept { return text_; }
  friend bool operator==(const rule&, const rule&) = default;

 private:
  explicit rule(std::string text) : text_(std::move(text)) {}
  friend result<rule> parse_rule(std::string_view rrule);
  std::string text_;
};

// Parses and normalizes an RRULE value ("FREQ=WEEKLY;BYDAY=MO"; an "RRULE:"
// prefix is accepted). Checks what needs no start date, including rules no
// calendar can satisfy (BYMONTH=2;BYMONTHDAY=30).
result<rule> parse_rule(std::string_view rrule);

// The shorthand {"every": "day"|"weekday"|"week"|"month"|"year",
// "interval": n} as its rule. "weekday" is FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR
// (interval n: every n-th week).
result<rule> from_shorthand(std::string_view every, std::int64_t interval = 1);

// Whether the series has a date after dtstart: an unknown zone, a COUNT of 1,
// an UNTIL before the second date, or a rule with no date up to the year 9999
// (the calendar repeats every 400 years, so short of a large daily or weekly
// INTERVAL that means never) are refused, naming the part.
std::optional<rule_error> check_series(const rule& r, std::string_view zone, std::chrono::sys_seconds dtstart);

// The first date of the series strictly after `after`, or none when COUNT or
// UNTIL has ended the series, the zone is unknown, or the rule has no date
// left up to the year 9999. dtstart is always the first date and counts as
// occurrence 1 of COUNT, whether or not it matches the rule. For the date
// after the current one pass the current due date as `after`; any instant
// works, so a series can be skipped ahead to the first date after now. Thread
// safe; a series with COUNT is counted from dtstart on every call.
//
// Trap: pass the series' first date as dtstart, not the current occurrence.
// An occurrence moved out of a gap (02:30 became 03:30) as dtstart would move
// every later one to 03:30: the time of day comes from dtstart.
std::optional<std::chrono::sys_seconds> next_occurrence(const rule& r, std::string_view zone,
                                                        std::chrono::sys_seconds dtstart,
                                                        std::chrono::sys_seconds after);

// Limits, part of the contract.
inline constexpr int max_interval = 1000;
inline constexpr int max_count = 5000;

// result<T>::value() on an error lands here; callers test the result first.
[[noreturn]] void throw_exception_from_error(const rule_error& e, const boost::source_location& loc);

}  // namespace todo::recurrence
