// A task's reminders: durations, resolution against the current list,
// re-timing, the past check, completion and succession. Pure.
#include "reminder.hpp"
#include "validate.hpp"

#include "todo/json.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using todo::tasks::parse_duration;
using todo::tasks::reminder;
using todo::tasks::reminder_input;

namespace {

todo::time::ms at(const char* s) { return *todo::time::parse_rfc3339(s); }

reminder_input before(const char* iso) {
  reminder_input in;
  in.before = iso;
  in.offset = *parse_duration(iso);
  return in;
}

reminder_input at_input(const char* s) {
  reminder_input in;
  in.at = at(s);
  return in;
}

}  // namespace

TEST_CASE("ISO 8601 durations of fixed length", "[reminder]") {
  CHECK(parse_duration("PT15M") == std::optional(std::chrono::milliseconds(15min)));
  CHECK(parse_duration("P1D") == std::optional(std::chrono::milliseconds(24h)));
  CHECK(parse_duration("P1DT2H30M") == std::optional(std::chrono::milliseconds(26h + 30min)));
  CHECK(parse_duration("PT1.5S") == std::optional(std::chrono::milliseconds(1500)));
  CHECK(parse_duration("PT0S") == std::optional(std::chrono::milliseconds(0)));
  CHECK(parse_duration("P2W") == std::optional(std::chrono::milliseconds(24h * 14)));
  CHECK(parse_duration("P366D"));
  for (const char* bad : {"", "P", "PT", "15M", "P1M", "P1Y", "PT1H2H", "PT30M1H", "P1WT1H", "P1.5D", "PT1.S", "P367D",
                          "PT-5M", "pt15m", "P1DT", "PT15M ", "P9999999999D"}) {
    INFO(bad);
    CHECK_FALSE(parse_duration(bad));
  }
}

TEST_CASE("resolve gives new reminders ids and fire_at", "[reminder]") {
  auto due = at("2026-03-02T17:00:00Z");
  auto rs = todo::tasks::resolve({before("PT15M"), at_input("2026-03-02T08:00:00Z")}, {}, due);
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].fire_at == at("2026-03-02T16:45:00Z"));
  CHECK(rs[1].fire_at == at("2026-03-02T08:00:00Z"));
  CHECK(rs[0].id != rs[1].id);
  CHECK(rs[0].state == "scheduled");
}

TEST_CASE("resolve keeps a reminder set again, and its state while its time stands", "[reminder]") {
  auto due = at("2026-03-02T17:00:00Z");
  auto current = todo::tasks::resolve({before("PT15M"), before("PT1H")}, {}, due);
  current[0].state = "sent";
  auto again = todo::tasks::resolve({before("PT1H"), before("PT15M")}, current, due);
  REQUIRE(again.size() == 2);
  CHECK(again[0].id == current[1].id);
  CHECK(again[1].id == current[0].id);
  CHECK(again[1].state == "sent");

  // Named by id with a new time: the same reminder, scheduled again.
  auto moved_in = before("PT30M");
  moved_in.id = current[0].id;
  auto moved = todo::tasks::resolve({moved_in}, current, due);
  REQUIRE(moved.size() == 1);
  CHECK(moved[0].id == current[0].id);
  CHECK(moved[0].fire_at == at("2026-03-02T16:30:00Z"));
  CHECK(moved[0].state == "scheduled");
}

TEST_CASE("moving due_at moves `before` reminders, not `at` ones", "[reminder]") {
  auto due = at("2026-03-02T17:00:00Z");
  auto rs = todo::tasks::resolve({before("PT15M"), at_input("2026-03-02T08:00:00Z")}, {}, due);
  rs[0].state = "sent";
  todo::tasks::retime(rs, at("2026-03-03T17:00:00Z"));
  CHECK(rs[0].fire_at == at("2026-03-03T16:45:00Z"));
  CHECK(rs[0].state == "scheduled");
  CHECK(rs[1].fire_at == at("2026-03-02T08:00:00Z"));
}

TEST_CASE("a new or moved reminder may be at most a minute past", "[reminder]") {
  auto now = at("2026-03-02T12:00:00Z");
  std::vector<reminder_input> ins{at_input("2026-03-02T11:59:30Z"), at_input("2026-03-02T11:58:00Z")};
  auto rs = todo::tasks::resolve(ins, {}, std::nullopt);
  auto errs = todo::tasks::check_reminders(&ins, {}, rs, std::nullopt, now);
  REQUIRE(errs.size() == 1);
  CHECK(errs[0].field == "reminders[1]");
  CHECK(errs[0].message.find("2026-03-02T11:58:00Z") != std::string::npos);

  // Unchanged, it is not judged again (it fired, or fires now).
  CHECK(todo::tasks::check_reminders(nullptr, rs, rs, std::nullopt, now).empty());

  // `before` without due_at.
  std::vector<reminder_input> rel{before("PT5M")};
  auto none = todo::tasks::resolve(rel, {}, std::nullopt);
  CHECK(none.empty());
  auto e2 = todo::tasks::check_reminders(&rel, {}, none, std::nullopt, now);
  REQUIRE(e2.size() == 1);
  CHECK(e2[0].field == "reminders[0].before");

  // An id the task does not have.
  auto stranger = at_input("2026-03-02T13:00:00Z");
  stranger.id = "0192d5e4-7c1a-7b3e-9f55-3c1d2b4a5e6f";
  std::vector<reminder_input> s{stranger};
  auto e3 = todo::tasks::check_reminders(&s, {}, todo::tasks::resolve(s, {}, std::nullopt), std::nullopt, now);
  REQUIRE(e3.size() == 1);
  CHECK(e3[0].field == "reminders[0].id");
}

TEST_CASE("completion cancels what has not fired; reopening restores what is not past", "[reminder]") {
  auto now = at("2026-03-02T12:00:00Z");
  auto rs = todo::tasks::resolve({at_input("2026-03-02T13:00:00Z"), at_input("2026-03-02T11:00:00Z"),
                                  at_input("2026-03-02T10:00:00Z")},
                                 {}, std::nullopt);
  rs[2].state = "sent";
  todo::tasks::cancel_pending(rs);
  CHECK(rs[0].state == "cancelled");
  CHECK(rs[1].state == "cancelled");
  CHECK(rs[2].state == "sent");
  todo::tasks::restore_cancelled(rs, now);
  CHECK(rs[0].state == "scheduled");
  CHECK(rs[1].state == "cancelled");
}

TEST_CASE("a successor's reminders shift with the series", "[reminder]") {
  auto due = at("2026-03-02T17:00:00Z");
  auto next = at("2026-03-09T17:00:00Z");
  auto rs = todo::tasks::resolve({before("PT15M"), at_input("2026-03-02T08:00:00Z")}, {}, due);
  rs[0].state = "sent";
  auto s = todo::tasks::shifted(rs, due, next, at("2026-03-02T18:00:00Z"));
  REQUIRE(s.size() == 2);
  CHECK(s[0].fire_at == at("2026-03-09T16:45:00Z"));
  CHECK(s[1].fire_at == at("2026-03-09T08:00:00Z"));
  CHECK(s[1].at == at("2026-03-09T08:00:00Z"));
  CHECK(s[0].state == "scheduled");
  CHECK(s[0].id != rs[0].id);
  // Completed long after: the successor's past reminders do not fire.
  auto late = todo::tasks::shifted(rs, due, next, at("2026-03-10T00:00:00Z"));
  CHECK(late[0].state == "cancelled");
}

TEST_CASE("reminders round-trip through their stored JSON", "[reminder]") {
  auto rs = todo::tasks::resolve({before("P1DT2H"), at_input("2026-03-02T08:00:00.250Z")}, {},
                                 at("2026-03-02T17:00:00Z"));
  rs[1].state = "failed";
  todo::json::writer w;
  todo::tasks::write_reminders(w, rs);
  auto back = todo::tasks::read_reminders(w.take());
  CHECK(back == rs);
}
