#include "todo/uuid.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <thread>

namespace {

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

}  // namespace

TEST_CASE("uuid::v7 is canonical: 36 lower-case hex characters with dashes", "[uuid]") {
  for (int i = 0; i < 100; ++i) {
    auto id = todo::uuid::v7();
    INFO(id);
    REQUIRE(id.size() == 36);
    for (std::size_t j = 0; j < id.size(); ++j) {
      if (j == 8 || j == 13 || j == 18 || j == 23) {
        CHECK(id[j] == '-');
      } else {
        CHECK(is_lower_hex(id[j]));
      }
    }
    CHECK(todo::uuid::normalize(id) == std::optional<std::string>(id));
  }
}

TEST_CASE("uuid::v7 has version 7 and the RFC 9562 variant", "[uuid]") {
  for (int i = 0; i < 200; ++i) {
    auto id = todo::uuid::v7();
    INFO(id);
    CHECK(id[14] == '7');  // version nibble
    CHECK((id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b'));  // variant bits 10xx
  }
}

TEST_CASE("uuid::v7 carries the Unix time in milliseconds", "[uuid]") {
  auto before = unix_ms();
  auto id = todo::uuid::v7();
  auto after = unix_ms();
  std::string hex = id.substr(0, 8) + id.substr(9, 4);
  auto stamp = static_cast<std::int64_t>(std::stoull(hex, nullptr, 16));
  CHECK(stamp >= before);
  CHECK(stamp <= after);
}

TEST_CASE("uuid::v7 ids sort by creation time", "[uuid]") {
  std::string prev = todo::uuid::v7();
  for (int i = 0; i < 5; ++i) {
    // The next id in a later millisecond: wait for the clock to move on.
    auto start = unix_ms();
    while (unix_ms() <= start) {
    }
    auto next = todo::uuid::v7();
    INFO(prev << " < " << next);
    CHECK(prev < next);
    prev = next;
  }
}

TEST_CASE("uuid::v7 ids are unique", "[uuid]") {
  std::set<std::string> seen;
  for (int i = 0; i < 10'000; ++i) {
    seen.insert(todo::uuid::v7());
  }
  CHECK(seen.size() == 10'000);
}

TEST_CASE("uuid::normalize accepts the canonical form of any version and lower-cases it", "[uuid]") {
  using todo::uuid::normalize;
  CHECK(normalize("0192d5e4-7c1a-7b3e-9f55-3c1d2b4a5e6f") == std::optional<std::string>("0192d5e4-7c1a-7b3e-9f55-3c1d2b4a5e6f"));
  CHECK(normalize("0192D5E4-7C1A-7B3E-9F55-3C1D2B4A5E6F") == std::optional<std::string>("0192d5e4-7c1a-7b3e-9f55-3c1d2b4a5e6f"));
  CHECK(normalize("550e8400-e29b-41d4-a716-446655440000") == std::optional<std::string>("550e8400-e29b-41d4-a716-446655440000"));  // v4
  CHECK(normalize("00000000-0000-0000-0000-000000000000").has_value());
}

TEST_CASE("uuid::normalize rejects anything else", "[uuid]") {
  using todo::uuid::normalize;
  for (const char* bad : {
           "",
           "0192d5e4-7c1a-7b3e-9f55-3c1d2b4a5e6",     // 35 characters
           "0192d5e4-7c1a-7b3e-9f55-3c1d2b4a5e6f0",   // 37 characters
           "0192d5e47c1a7b3e9f553c1d2b4a5e6f",        // no dashes
           "0192d5e-47c1a-7b3e-9f55-3c1d2b4a5e6f",    // dash one place early
           "0192d5e4-7c1a-7b3e-9f553-c1d2b4a5e6f",    // dash one place late
           "0192d5e4+7c1a-7b3e-9f55-3c1d2b4a5e6f",    // wrong separator
           "0192d5e4-7c1a-7b3e-9f55-3c1d2b4a5e6g",    // not hex
           "g192d5e4-7c1a-7b3e-9f55-3c1d2b4a5e6f",
           "0192d5e4-7c1a-7b3e-9f55-3c1d2b4a5e-f",    // dash where a digit belongs
           "{0192d5e4-7c1a-7b3e-9f55-3c1d2b4a5e6}",   // braces
           "0192d5e4-7c1a-7b3e-9f55-3c1d2b4a5e6 ",    // space
       }) {
    INFO("'" << bad << "'");
    CHECK_FALSE(normalize(bad).has_value());
  }
}
