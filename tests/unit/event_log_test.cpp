#include "todo/event_log.hpp"
#include "todo/events.hpp"
#include "todo/json_parse.hpp"

#include <catch2/catch.hpp>

#include <vector>

using todo::gap_tracker;

TEST_CASE("a reader consumes contiguous positions", "[events][gaps]") {
  gap_tracker g;
  std::vector<std::int64_t> p{1, 2, 3};
  auto s = g.advance(0, p, 100);
  CHECK(s.usable == 3);
  CHECK(s.position == 3);
  CHECK_FALSE(s.needs_bound);
  CHECK(g.open_gaps() == 0);
}

TEST_CASE("a reader stops at a gap while its writer may still commit", "[events][gaps]") {
  gap_tracker g;
  std::vector<std::int64_t> p{1, 3, 4};
  auto s = g.advance(0, p, 100);
  CHECK(s.usable == 1);
  CHECK(s.position == 1);
  CHECK(s.needs_bound);
  CHECK(g.open_gaps() == 1);
  g.bound(110);

  // Not every transaction below the bound has ended: still cannot pass.
  std::vector<std::int64_t> later{3, 4};
  s = g.advance(1, later, 105);
  CHECK(s.usable == 0);
  CHECK(s.position == 1);
  CHECK_FALSE(s.needs_bound);

  // The late commit shows up: everything flows, in order.
  std::vector<std::int64_t> filled{2, 3, 4};
  s = g.advance(1, filled, 105);
  CHECK(s.usable == 3);
  CHECK(s.position == 4);
  CHECK(g.open_gaps() == 0);
}

TEST_CASE("a gap is skipped once every transaction below its bound has ended", "[events][gaps]") {
  gap_tracker g;
  std::vector<std::int64_t> p{5, 7};
  auto s = g.advance(4, p, 100);  // 6 missing
  CHECK(s.position == 5);
  g.bound(110);
  s = g.advance(5, std::vector<std::int64_t>{7}, 109);  // a transaction below 110 still runs
  CHECK(s.usable == 0);
  s = g.advance(5, std::vector<std::int64_t>{7}, 110);  // all below 110 ended: rolled back
  CHECK(s.usable == 1);
  CHECK(s.position == 7);
  CHECK(g.open_gaps() == 0);
}

TEST_CASE("a gap without a bound never settles, whatever the snapshot", "[events][gaps]") {
  // The regression: the bound was the snapshot's xmax, the newest finished id
  // plus one. A writer that took its id after a transaction still running
  // (id 112 here, with 111 as that xmax) held the gap while every id below
  // 111 ended, and its event was passed over, then committed unread.
  gap_tracker g;
  auto s = g.advance(0, std::vector<std::int64_t>{1, 3}, 100);
  CHECK(s.needs_bound);
  s = g.advance(1, std::vector<std::int64_t>{3}, 112);  // no bound yet: the reader must ask again
  CHECK(s.usable == 0);
  CHECK(s.needs_bound);
  g.bound(115);  // a fresh id, above the writer's 112
  s = g.advance(1, std::vector<std::int64_t>{3}, 112);  // only the writer still runs
  CHECK(s.usable == 0);
  s = g.advance(1, std::vector<std::int64_t>{2, 3}, 113);  // it committed
  CHECK(s.usable == 2);
  CHECK(s.position == 3);
}

TEST_CASE("a hole of several positions settles at once", "[events][gaps]") {
  gap_tracker g;
  std::vector<std::int64_t> p{1, 400};
  auto s = g.advance(0, p, 50);
  CHECK(s.position == 1);  // 2..399 recorded under one bound
  CHECK(g.open_gaps() == 398);
  g.bound(60);
  s = g.advance(1, std::vector<std::int64_t>{400}, 59);  // a writer below 60 may still run
  CHECK(s.usable == 0);
  CHECK(s.position == 1);
  s = g.advance(1, std::vector<std::int64_t>{400}, 60);  // all ended: the hole is rolled back
  CHECK(s.position == 400);
  CHECK(s.usable == 1);
  CHECK(g.open_gaps() == 0);
}

TEST_CASE("a late commit inside a recorded hole is consumed, the rest still waits", "[events][gaps]") {
  gap_tracker g;
  auto s = g.advance(0, std::vector<std::int64_t>{1, 5}, 50);  // 2, 3, 4 missing
  CHECK(s.position == 1);
  g.bound(60);
  s = g.advance(1, std::vector<std::int64_t>{3, 5}, 55);  // 3 committed late; 2 may still come
  CHECK(s.usable == 0);
  s = g.advance(1, std::vector<std::int64_t>{3, 5}, 60);  // 2 rolled back: 3, then 4 rolled back too
  CHECK(s.usable == 2);
  CHECK(s.position == 5);
  CHECK(g.open_gaps() == 0);
}

TEST_CASE("a CloudEvent carries every required attribute", "[events]") {
  todo::event e;
  e.user = "alice";
  e.seq = 42;
  e.id = "0192d5e4-7c1a-7b3e-9f55-3c1d2b4a5e6f";
  e.type = "com.todo.task.created";
  e.subject = "0192d5e4-7c1a-7b3e-9f55-3c1d2b4a5e60";
  e.time = todo::time::from_unix_ms(1772470991123);
  e.data = R"({"task":{"title":"x \"quoted\""},"changes":{}})";
  auto text = todo::to_cloudevent(e);
  auto parsed = todo::json::parse_body(text);
  REQUIRE(parsed.error.empty());
  auto root = parsed.root;
  CHECK(std::string_view(root["specversion"]) == "1.0");
  CHECK(std::string_view(root["id"]) == e.id);
  CHECK(std::string_view(root["source"]) == "/todo-server");
  CHECK(std::string_view(root["type"]) == e.type);
  CHECK(std::string_view(root["subject"]) == e.subject);
  CHECK(std::string_view(root["time"]) == "2026-03-02T17:03:11.123Z");
  CHECK(std::string_view(root["datacontenttype"]) == "application/json");
  CHECK(int64_t(root["sequence"]) == 42);
  CHECK(std::string_view(root["userid"]) == "alice");
  CHECK(std::string_view(root["data"]["task"]["title"]) == "x \"quoted\"");
}
