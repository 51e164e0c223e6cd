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

TEST_CASE("when every bucket is in use, newcomers share one until a sweep frees room", "[rate_limit]") {
  todo::rate_limiter l(1, 2, 2);
  CHECK_FALSE(l.admit("a", 0));
  CHECK_FALSE(l.admit("b", 0));
  // a and b are not full again yet: c, d and e share the overflow bucket
  // (burst 2), without a sweep each.
  CHECK_FALSE(l.admit("c", 100));
  CHECK_FALSE(l.admit("d", 100));
  CHECK(l.admit("e", 100));
  CHECK(l.tracked() == 3);
  // Much later everything has refilled: the sweep makes room again.
  CHECK_FALSE(l.admit("f", 60'000));
  CHECK(l.tracked() == 1);
}

TEST_CASE("address keys: IPv4 as is, IPv6 by /64, mapped IPv4 as IPv4", "[rate_limit]") {
  CHECK(todo::address_key("203.0.113.7") == "203.0.113.7");
  CHECK(todo::address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64");
  CHECK(todo::address_key("2001:db8:1:2::1") == todo::address_key("2001:db8:1:2:ffff::9"));
  CHECK(todo::address_key("2001:db8:1:3::1") != todo::address_key("2001:db8:1:2::1"));
  CHECK(todo::address_key("::ffff:198.51.100.4") == "198.51.100.4");
  CHECK(todo::address_key("fe80::1%eth0") == "fe80::/64");
  CHECK(todo::address_key("") == "");
  CHECK(todo::address_key("not an address") == "not an address");
}

TEST_CASE("loopback: 127.0.0.0/8, ::1 and mapped forms only", "[rate_limit]") {
  for (const char* yes : {"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"}) {
    INFO(yes);
    CHECK(todo::is_loopback(yes));
  }
  for (const char* no : {"10.0.0.1", "128.0.0.1", "::2", "::", "::ffff:10.0.0.1", "2001:db8::1", "", "localhost"}) {
    INFO(no);
    CHECK_FALSE(todo::is_loopback(no));
  }
}
