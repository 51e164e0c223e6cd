#include "recurrence/recurrence.hpp"
#include "rule_parts.hpp"
#include "search.hpp"

#include <array>

namespace todo::recurrence {
namespace {

const date::time_zone* find_zone(std::string_view name) {
  try {
    return date::locate_zone(name);
  } catch (const std::runtime_error&) {
    return nullptr;
  }
}

rule_parts parts_of(const rule& r) {
  // A rule only exists in valid canonical form: a refusal here is a bug, and throws.
  return parse_parts(r.text()).value();
}

// The part to name when a rule never gives a date: the first one whose
// removal gives the series a date; none when it takes more than one.
std::optional<std::string> blame(const rule_parts& p, const date::time_zone& z, std::chrono::sys_seconds dtstart) {
  using strip = void (*)(rule_parts&);
  static constexpr std::array<std::pair<std::string_view, strip>, 5> parts{{
      {"BYSETPOS", [](rule_parts& q) { q.bysetpos.clear(); }},
      {"BYDAY", [](rule_parts& q) { q.byday.clear(); }},
      {"BYMONTHDAY", [](rule_parts& q) { q.bymonthday.clear(); }},
      {"BYMONTH", [](rule_parts& q) { q.bymonth.clear(); }},
      {"INTERVAL", [](rule_parts& q) { q.interval = 1; }},
  }};
  rule_parts q = p;
  q.count.reset();
  q.until.reset();
  for (const auto& [name, remove] : parts) {
    rule_parts tried = q;
    remove(tried);
    if (format_parts(tried) != format_parts(q) && search(tried, z, dtstart, dtstart).date) {
      return std::string(name);
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<rule_error> check_series(const rule& r, std::string_view zone, std::chrono::sys_seconds dtstart) {
  const auto* z = find_zone(zone);
  if (z == nullptr) {
    return rule_error{"timezone", "is not a known IANA time zone"};
  }
  auto p = parts_of(r);
  auto found = search(p, *z, dtstart, dtstart);
  switch (found.end) {
    case series_end::none:
      return std::nullopt;
    case series_end::count:
      return rule_error{"COUNT", "leaves no date after due_at"};
    case series_end::until:
      return rule_error{"UNTIL", "is before the first date after due_at"};
    case series_end::bound:
      break;
  }
  if (auto part = blame(p, *z, dtstart)) {
    return rule_error{*part, "leaves the rule no date after due_at"};
  }
  return rule_error{"RRULE", "gives no date after due_at"};
}

std::optional<std::chrono::sys_seconds> next_occurrence(const rule& r, std::string_view zone,
                                                        std::chrono::sys_seconds dtstart,
                                                        std::chrono::sys_seconds after) {
  const auto* z = find_zone(zone);
  if (z == nullptr) {
    return std::nullopt;
  }
  return search(parts_of(r), *z, dtstart, after).date;
}

}  // namespace todo::recurrence
