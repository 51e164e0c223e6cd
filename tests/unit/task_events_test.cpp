#include "task_events.hpp"

#include "todo/json_parse.hpp"

#include <catch2/catch.hpp>

using namespace todo::tasks;

namespace {
task sample() {
  task t;
  t.id = "0192d5e4-7c1a-7b3e-9f55-3c1d2b4a5e6f";
  t.user_id = "alice";
  t.title = "Water the plants";
  t.tags = {"home"};
  t.created_at = t.updated_at = todo::time::from_unix_ms(1'700'000'000'000);
  return t;
}
}  // namespace

TEST_CASE("changes name exactly the fields that changed, old then new", "[task_events]") {
  auto before = sample();
  auto after = before;
  after.title = "Water the ficus";
  after.prio = priority::high;
  after.due_at = todo::time::from_unix_ms(1'772'470'800'000);
  after.version = 2;  // not a client field
  auto parsed = todo::json::parse_body(changes_json(&before, after));
  REQUIRE(parsed.error.empty());
  simdjson::dom::object o = parsed.root;
  CHECK(o.size() == 3);
  CHECK(std::string_view(o["title"].at(0)) == "Water the plants");
  CHECK(std::string_view(o["title"].at(1)) == "Water the ficus");
  CHECK(std::string_view(o["priority"].at(0)) == "none");
  CHECK(std::string_view(o["priority"].at(1)) == "high");
  CHECK(o["due_at"].at(0).is_null());
  CHECK(std::string_view(o["due_at"].at(1)) == "2026-03-02T17:00:00Z");
}

TEST_CASE("a creation lists every field from null", "[task_events]") {
  auto t = sample();
  auto parsed = todo::json::parse_body(changes_json(nullptr, t));
  REQUIRE(parsed.error.empty());
  simdjson::dom::object o = parsed.root;
  CHECK(o.size() == 11);  // the client-visible fields, recurrence, reminders and series_id included
  CHECK(o["title"].at(0).is_null());
  CHECK(o["recurrence"].at(1).is_null());
  CHECK(std::string_view(o["tags"].at(1).at(0)) == "home");
}

TEST_CASE("a rule change lists recurrence as objects", "[task_events]") {
  auto before = sample();
  auto after = before;
  after.rrule = "FREQ=WEEKLY;BYDAY=MO";
  after.series_id = after.id;
  auto parsed = todo::json::parse_body(changes_json(&before, after));
  REQUIRE(parsed.error.empty());
  simdjson::dom::object o = parsed.root;
  CHECK(o.size() == 2);
  CHECK(o["recurrence"].at(0).is_null());
  CHECK(std::string_view(o["recurrence"].at(1)["rrule"]) == "FREQ=WEEKLY;BYDAY=MO");
  CHECK(std::string_view(o["series_id"].at(1)) == after.id);
}

TEST_CASE("no change, no changes", "[task_events]") {
  auto t = sample();
  CHECK(changes_json(&t, t) == "{}");
}

TEST_CASE("summaries read as a sentence", "[task_events]") {
  auto before = sample();
  auto after = before;
  after.description = "twice a week";
  after.tags = {"home", "weekly"};
  CHECK(summary("created", nullptr, before) == "Created \"Water the plants\"");
  CHECK(summary("updated", &before, after) == "Updated \"Water the plants\" (description, tags)");
  CHECK(summary("completed", &before, after) == "Completed \"Water the plants\"");
  CHECK(summary("deleted", &before, before) == "Deleted \"Water the plants\"");
}

TEST_CASE("event parameters: user, fresh id, type, subject, time, summary, data", "[task_events]") {
  auto t = sample();
  auto p = event_params("created", nullptr, t);
  REQUIRE(p.size() == 7);
  CHECK(*p[0] == "alice");
  CHECK(p[1]->size() == 36);
  CHECK(*p[1] != *event_params("created", nullptr, t)[1]);
  CHECK(*p[2] == "com.todo.task.created");
  CHECK(*p[3] == t.id);
  auto data = todo::json::parse_body(*p[6]);
  REQUIRE(data.error.empty());
  CHECK(std::string_view(data.root["task"]["title"]) == "Water the plants");
}
