// RRULE parsing and the series it describes. Input: "RULE" or "RULE|ZONE"
// ("~every~interval" for the shorthand). A parsed rule's canonical text
// parses to itself, and the next dates of its series move forward: the
// first date after dtstart is later than it, and asking again from just
// before that date finds the same date.
#include "check.hpp"
#include "recurrence/recurrence.hpp"

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

using namespace todo::recurrence;
using std::chrono::seconds;
using std::chrono::sys_seconds;

// Instants around daylight-saving changes and leap days (Unix seconds).
constexpr std::array<std::int64_t, 4> starts = {
    1'772'470'800,  // 2026-03-02T17:00:00Z
    1'774'747'800,  // 2026-03-29T01:30:00Z, the night Europe springs forward
    1'709'164'800,  // 2024-02-29T00:00:00Z
    1'793'494'800,  // 2026-10-31T23:00:00Z
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto bar = in.find('|');
  std::string_view text = in.substr(0, bar);
  std::string_view zone = bar == std::string_view::npos ? std::string_view("UTC") : in.substr(bar + 1);

  result<rule> r = rule_error{};
  if (text.starts_with("~")) {
    auto rest = text.substr(1);
    auto tilde = rest.find('~');
    std::int64_t interval = 1;
    if (tilde != std::string_view::npos) {
      auto n = rest.substr(tilde + 1);
      std::from_chars(n.data(), n.data() + n.size(), interval);
    }
    r = from_shorthand(rest.substr(0, tilde), interval);
  } else {
    r = parse_rule(text);
  }
  if (!r) {
    FUZZ_CHECK(!r.error().part.empty() && !r.error().message.empty());
    return 0;
  }
  auto again = parse_rule(r->text());
  FUZZ_CHECK(again && *again == *r);

  sys_seconds dtstart{seconds(starts[size % starts.size()])};
  (void)check_series(*r, zone, dtstart);
  auto first = next_occurrence(*r, zone, dtstart, dtstart);
  if (!first) {
    return 0;
  }
  FUZZ_CHECK(*first > dtstart);
  auto same = next_occurrence(*r, zone, dtstart, *first - seconds(1));
  FUZZ_CHECK(same && *same == *first);
  auto second = next_occurrence(*r, zone, dtstart, *first);
  FUZZ_CHECK(!second || *second > *first);
  return 0;
}
