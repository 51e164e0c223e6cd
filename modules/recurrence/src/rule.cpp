#include "recurrence/recurrence.hpp"
#include "rule_parts.hpp"

#include <stdexcept>

namespace todo::recurrence {

result<rule> parse_rule(std::string_view rrule) {
  auto p = parse_parts(rrule);
  if (!p) {
    return p.error();
  }
  return rule(format_parts(*p));
}

result<rule> from_shorthand(std::string_view every, std::int64_t interval) {
  std::string text;
  if (every == "day") {
    text = "FREQ=DAILY";
  } else if (every == "weekday") {
    text = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR";
  } else if (every == "week") {
    text = "FREQ=WEEKLY";
  } else if (every == "month") {
    text = "FREQ=MONTHLY";
  } else if (every == "year") {
    text = "FREQ=YEARLY";
  } else {
    return rule_error{"every", "must be day, weekday, week, month or year"};
  }
  if (interval < 1 || interval > max_interval) {
    return rule_error{"interval", "must be a whole number from 1 to " + std::to_string(max_interval)};
  }
  text += ";INTERVAL=" + std::to_string(interval);
  return parse_rule(text);
}

void throw_exception_from_error(const rule_error& e, const boost::source_location&) {
  throw std::invalid_argument("recurrence rule error in " + e.part + ": " + e.message);
}

}  // namespace todo::recurrence
