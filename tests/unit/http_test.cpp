#include "todo/http.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

namespace {
using pairs = std::vector<std::pair<std::string, std::string>>;
}

TEST_CASE("parse_query decodes form-encoded pairs in order", "[http]") {
  SECTION("simple pairs, repeated keys kept") {
    auto q = todo::http::parse_query("status=open&tag=a&tag=b");
    REQUIRE(q);
    CHECK(*q == pairs{{"status", "open"}, {"tag", "a"}, {"tag", "b"}});
  }
  SECTION("plus is a space, percent escapes are decoded in keys and values") {
    auto q = todo::http::parse_query("q=water+the%20plants&a%5Fb=%C3%A9%2B1");
    REQUIRE(q);
    CHECK(*q == pairs{{"q", "water the plants"}, {"a_b", "\xC3\xA9+1"}});
  }
  SECTION("an encoded '&' or '=' does not split") {
    auto q = todo::http::parse_query("q=a%26b%3Dc");
    REQUIRE(q);
    CHECK(*q == pairs{{"q", "a&b=c"}});
  }
  SECTION("empty pairs are skipped") {
    auto q = todo::http::parse_query("&&a=1&&b=2&");
    REQUIRE(q);
    CHECK(*q == pairs{{"a", "1"}, {"b", "2"}});
  }
  SECTION("a key without '=' has an empty value; an empty value stays empty") {
    auto q = todo::http::parse_query("overdue&limit=");
    REQUIRE(q);
    CHECK(*q == pairs{{"overdue", ""}, {"limit", ""}});
  }
  SECTION("only the first '=' separates") {
    auto q = todo::http::parse_query("cursor=abc==");
    REQUIRE(q);
    CHECK(*q == pairs{{"cursor", "abc=="}});
  }
  SECTION("empty query") {
    auto q = todo::http::parse_query("");
    REQUIRE(q);
    CHECK(q->empty());
  }
  SECTION("malformed escapes make the whole query invalid") {
    for (const char* bad : {"q=%zz", "q=%4", "q=%", "q=a%g1", "%zz=1", "a=1&b=%4"}) {
      INFO(bad);
      CHECK_FALSE(todo::http::parse_query(bad).has_value());
    }
  }
}

TEST_CASE("percent_decode", "[http]") {
  using todo::http::percent_decode;
  CHECK(percent_decode("a%20b", false) == std::optional<std::string>("a b"));
  CHECK(percent_decode("%41%6a%6A", false) == std::optional<std::string>("Ajj"));  // both hex cases
  CHECK(percent_decode("a+b", false) == std::optional<std::string>("a+b"));       // paths keep '+'
  CHECK(percent_decode("a+b", true) == std::optional<std::string>("a b"));        // forms do not
  CHECK(percent_decode("%2B", true) == std::optional<std::string>("+"));
  CHECK(percent_decode("%2F", false) == std::optional<std::string>("/"));
  CHECK(percent_decode("", false) == std::optional<std::string>(""));
  CHECK(percent_decode("x%41", false) == std::optional<std::string>("xA"));  // escape at the very end
  CHECK(percent_decode("%00", false) == std::optional<std::string>(std::string(1, '\0')));
  CHECK_FALSE(percent_decode("%", false));
  CHECK_FALSE(percent_decode("%4", false));
  CHECK_FALSE(percent_decode("abc%", false));
  CHECK_FALSE(percent_decode("%zz", false));
  CHECK_FALSE(percent_decode("%-1", false));
}

TEST_CASE("request::header_value returns the first value of a lower-case name", "[http]") {
  todo::http::request req;
  req.headers = {{"content-type", "application/json"}, {"x-tag", "one"}, {"x-tag", "two"}};
  CHECK(req.header_value("content-type") == std::optional<std::string_view>("application/json"));
  CHECK(req.header_value("x-tag") == std::optional<std::string_view>("one"));
  CHECK_FALSE(req.header_value("authorization").has_value());
  CHECK_FALSE(req.header_value("x-ta").has_value());
}

TEST_CASE("response helpers", "[http]") {
  auto r = todo::http::json(201, R"({"a":1})");
  CHECK(r.status == 201);
  CHECK(r.content_type == "application/json");
  CHECK(r.body == R"({"a":1})");
  r.set("etag", "\"1\"").set("location", "/x");
  CHECK(r.header_value("etag") == std::optional<std::string_view>("\"1\""));
  CHECK(r.header_value("location") == std::optional<std::string_view>("/x"));

  auto n = todo::http::no_content();
  CHECK(n.status == 204);
  CHECK(n.content_type.empty());
  CHECK(n.body.empty());
  CHECK(todo::http::no_content(304).status == 304);

  CHECK(todo::http::to_string(todo::http::method::get) == "GET");
  CHECK(todo::http::to_string(todo::http::method::delete_) == "DELETE");
  CHECK(todo::http::to_string(todo::http::method::patch) == "PATCH");
}
