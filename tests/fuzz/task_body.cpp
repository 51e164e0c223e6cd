// Task create and patch bodies: parse_task_body must never crash, and what it accepts
// is canonical: written back as JSON and parsed again it gives the same
// fields (trimmed title, lower-case tags, the rule's canonical text).
#include "check.hpp"
#include "recurrence/recurrence.hpp"
#include "todo/json.hpp"
#include "todo/recurrence_rules.hpp"
#include "validate.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

using namespace todo;
using namespace todo::tasks;

std::string write_back(const task_patch& p) {
  json::writer w;
  w.begin_object();
  if (p.title) {
    w.key("title").value(*p.title);
  }
  if (p.description) {
    w.key("description").value(*p.description);
  }
  if (p.prio) {
    w.key("priority").value(to_string(*p.prio));
  }
  if (p.tags) {
    w.key("tags").begin_array();
    for (const auto& t : *p.tags) {
      w.value(t);
    }
    w.end_array();
  }
  if (p.due_at) {
    w.key("due_at");
    if (*p.due_at) {
      w.value(time::format(**p.due_at));
    } else {
      w.null();
    }
  }
  if (p.timezone) {
    w.key("timezone").value(*p.timezone);
  }
  if (p.rrule) {
    w.key("recurrence");
    if (*p.rrule) {
      w.begin_object().key("rrule").value(**p.rrule).end_object();
    } else {
      w.null();
    }
  }
  w.end_object();
  return w.take();
}

void check_body(std::string_view body, body_mode mode, const recurrence_rules* rules) {
  auto parsed = parse_task_body(body, mode, rules);
  if (!parsed.bad_request.empty()) {
    // Not JSON: nothing may have been read out of it.
    FUZZ_CHECK(parsed.errors.empty() && !parsed.patch.title && !parsed.patch.tags);
    return;
  }
  if (!parsed.errors.empty()) {
    return;
  }
  const auto& p = parsed.patch;
  if (mode == body_mode::create) {
    FUZZ_CHECK(p.title.has_value());
  }
  if (p.title) {
    auto again = *p.title;
    FUZZ_CHECK(check_title(again).empty() && again == *p.title);
  }
  if (p.tags) {
    auto again = *p.tags;
    FUZZ_CHECK(check_tags(again).empty() && again == *p.tags);
  }
  if (p.timezone) {
    FUZZ_CHECK(valid_timezone(*p.timezone));
  }

  auto text = write_back(p);
  auto round = parse_task_body(text, mode, rules);
  FUZZ_CHECK(round.bad_request.empty() && round.errors.empty());
  const auto& q = round.patch;
  FUZZ_CHECK(q.title == p.title);
  FUZZ_CHECK(q.description == p.description);
  FUZZ_CHECK(q.prio == p.prio);
  FUZZ_CHECK(q.tags == p.tags);
  FUZZ_CHECK(q.due_at == p.due_at);
  FUZZ_CHECK(q.timezone == p.timezone);
  FUZZ_CHECK(q.rrule == p.rrule);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto rules = recurrence::make_rules();
  std::string_view body(reinterpret_cast<const char*>(data), size);
  check_body(body, body_mode::create, rules.get());
  check_body(body, body_mode::patch, rules.get());
  return 0;
}
