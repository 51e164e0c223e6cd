// JSON merge patch (RFC 7396) of a task: a patch body parsed by
// parse_task_body and applied with apply(). Members left out keep their
// values, members sent take exactly the patch's value, and a patch applied
// twice changes nothing the second time.
#include "check.hpp"
#include "recurrence/recurrence.hpp"
#include "task.hpp"
#include "todo/recurrence_rules.hpp"
#include "validate.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

using namespace todo;
using namespace todo::tasks;

task base_task(bool recurring) {
  task t;
  t.id = "01900000-0000-7000-8000-000000000001";
  t.user_id = "fuzz";
  t.title = "Water the plants";
  t.created_at = t.updated_at = time::from_unix_ms(1'772'000'000'000);
  if (!recurring) {
    return t;
  }
  t.description = "the big ones first";
  t.prio = priority::high;
  t.tags = {"home", "weekly"};
  t.due_at = time::from_unix_ms(1'772'470'800'000);  // 2026-03-02T17:00:00Z
  t.timezone = "Europe/Berlin";
  t.rrule = "FREQ=WEEKLY";
  t.series_start = t.due_at;
  t.series_id = t.id;
  reminder before;
  before.id = "01900000-0000-7000-8000-0000000000a1";
  before.before = "PT15M";
  before.offset = std::chrono::minutes(15);
  before.fire_at = *t.due_at - before.offset;
  reminder at;
  at.id = "01900000-0000-7000-8000-0000000000a2";
  at.at = *t.due_at - std::chrono::hours(24);
  at.fire_at = *at.at;
  at.state = "sent";
  t.reminders = {before, at};
  return t;
}

bool same(const task& a, const task& b) {
  return to_json(a) == to_json(b) && a.reminders == b.reminders && a.series_start == b.series_start &&
         a.series_id == b.series_id;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto rules = recurrence::make_rules();
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_task_body(body, body_mode::patch, rules.get());
  if (!parsed.bad_request.empty() || !parsed.errors.empty()) {
    return 0;
  }
  const auto& p = parsed.patch;
  const task before = base_task(size % 2 == 0);
  task after = before;
  bool changed = apply(p, after);

  FUZZ_CHECK(after.title == (p.title ? *p.title : before.title));
  FUZZ_CHECK(after.description == (p.description ? *p.description : before.description));
  FUZZ_CHECK(after.prio == (p.prio ? *p.prio : before.prio));
  FUZZ_CHECK(after.tags == (p.tags ? *p.tags : before.tags));
  FUZZ_CHECK(after.due_at == (p.due_at ? *p.due_at : before.due_at));
  FUZZ_CHECK(after.timezone == (p.timezone ? *p.timezone : before.timezone));
  FUZZ_CHECK(after.rrule == (p.rrule ? *p.rrule : before.rrule));
  FUZZ_CHECK(!after.rrule || after.series_id);
  FUZZ_CHECK(after.id == before.id && after.user_id == before.user_id && after.version == before.version);
  if (!p.reminders) {
    FUZZ_CHECK(after.reminders.size() == before.reminders.size());
  } else {
    FUZZ_CHECK(after.reminders.size() <= p.reminders->size());
  }
  FUZZ_CHECK(changed || same(before, after));

  // Idempotent: the same patch again changes nothing.
  task again = after;
  FUZZ_CHECK(!apply(p, again));
  FUZZ_CHECK(same(after, again));

  // The whole-task rules run on any applied patch without failing.
  auto now = time::from_unix_ms(1'772'400'000'000);
  (void)check_task(&before, after, rules.get(), p.reminders ? &*p.reminders : nullptr, now);
  return 0;
}
