#include "todo/rate_limit.hpp"

#include <catch2/catch.hpp>

TEST_CASE("a user may burst, then is held to the sustained rate", "[rate_limit]") {
  todo::rate_limiter l(10, 5);
  for (int i = 0; i < 5; ++i) {
    CHECK_FALSE(l.admit("alice", 1000));
  }
  auto wait = l.admit("alice", 1000);
  REQUIRE(wait);
  CHECK(*wait == 1);
  CHECK_FALSE(l.admit("bob", 1000));  // buckets are per user
  CHECK_FALSE(l.admit("alice", 1100));  // 100 ms at 10/s refills one token
  CHECK(l.admit("alice", 1100));
}

TEST_CASE("Retry-After grows with a slow rate", "[rate_limit]") {
  todo::rate_limiter l(0.25, 1);
  CHECK_FALSE(l.admit("u", 0));
  auto wait = l.admit("u", 0);
  REQUIRE(wait);
  CHECK(*wait == 4);
}

TEST_CASE("a zero rate means unlimited", "[rate_limit]") {
  todo::rate_limiter l(0, 1);
  for (int i = 0; i < 1000; ++i) {
    REQUIRE_FALSE(l.admit("u", 0));
  }
}

TEST_CASE("idle, refilled buckets are evicted to bound memory", "[rate_limit]") {
  todo::rate_limiter l(10, 2, 3);
  CHECK_FALSE(l.admit("a", 0));
  CHECK_FALSE(l.admit("b", 0));
  CHECK_FALSE(l.admit("c", 0));
  CHECK(l.tracked() == 3);
  CHECK_FALSE(l.admit("d", 10'000));  // a, b, c are full again by now
  CHECK(l.tracked() == 1);
}
