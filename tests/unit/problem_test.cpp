#include "todo/db.hpp"
#include "todo/errors.hpp"
#include "todo/problem.hpp"

#include <boost/asio/error.hpp>
#include <catch2/catch.hpp>
#include <simdjson.h>

#include <string>

namespace {

struct expected {
  todo::errc e;
  unsigned status;
  std::string_view slug;
  std::string_view title;
};

const expected table[] = {
    {todo::errc::bad_request, 400, "bad-request", "Bad request"},
    {todo::errc::unauthorized, 401, "unauthorized", "Authentication required"},
    {todo::errc::not_found, 404, "not-found", "Not found"},
    {todo::errc::method_not_allowed, 405, "method-not-allowed", "Method not allowed"},
    {todo::errc::conflict, 409, "conflict", "Conflict"},
    {todo::errc::precondition_failed, 412, "precondition-failed", "Precondition failed"},
    {todo::errc::payload_too_large, 413, "payload-too-large", "Payload too large"},
    {todo::errc::unsupported_media_type, 415, "unsupported-media-type", "Unsupported media type"},
    {todo::errc::validation, 422, "validation", "Invalid request body"},
    {todo::errc::rate_limited, 429, "rate-limited", "Too many requests"},
    {todo::errc::unavailable, 503, "unavailable", "Service unavailable"},
    {todo::errc::internal, 500, "internal", "Internal server error"},
};

struct body_view {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  explicit body_view(const std::string& body) { REQUIRE(parser.parse(body).get(root) == simdjson::SUCCESS); }
  std::string str(const char* key) {
    std::string_view v;
    REQUIRE(root[key].get(v) == simdjson::SUCCESS);
    return std::string(v);
  }
  std::int64_t num(const char* key) {
    std::int64_t v = 0;
    REQUIRE(root[key].get(v) == simdjson::SUCCESS);
    return v;
  }
};

}  // namespace

TEST_CASE("problem: status, type, title and detail for every error code", "[problem]") {
  for (const auto& x : table) {
    INFO(x.slug);
    auto r = todo::problem(x.e, "something specific");
    CHECK(r.status == x.status);
    CHECK(r.content_type == "application/problem+json");
    body_view b(r.body);
    CHECK(b.str("type") == "https://todo.dev/problems/" + std::string(x.slug));
    CHECK(b.str("title") == x.title);
    CHECK(b.num("status") == static_cast<std::int64_t>(x.status));
    CHECK(b.str("detail") == "something specific");
    CHECK(b.root["errors"].error() == simdjson::NO_SUCH_FIELD);  // only when fields are given

    const auto& k = todo::describe(x.e);
    CHECK(k.status == x.status);
    CHECK(k.slug == x.slug);
    CHECK(k.title == x.title);
    CHECK(todo::make_error_code(x.e).message() == std::string(x.title));
  }
}

TEST_CASE("problem: detail is JSON-escaped", "[problem]") {
  auto r = todo::problem(todo::errc::bad_request, "bad \"sort\" key\n\\");
  body_view b(r.body);
  CHECK(b.str("detail") == "bad \"sort\" key\n\\");
}

TEST_CASE("problem: 503 carries Retry-After, 401 carries WWW-Authenticate: Bearer", "[problem]") {
  auto unavailable = todo::problem(todo::errc::unavailable, "down");
  REQUIRE(unavailable.header_value("retry-after"));
  CHECK(std::stoi(std::string(*unavailable.header_value("retry-after"))) > 0);

  auto unauthorized = todo::problem(todo::errc::unauthorized, "no token");
  REQUIRE(unauthorized.header_value("www-authenticate"));
  CHECK(unauthorized.header_value("www-authenticate")->starts_with("Bearer"));

  auto not_found = todo::problem(todo::errc::not_found, "no");
  CHECK_FALSE(not_found.header_value("retry-after"));
  CHECK_FALSE(not_found.header_value("www-authenticate"));
}

TEST_CASE("validation_problem lists every field and pluralises the detail", "[problem]") {
  SECTION("the API.md example, byte for byte") {
    auto r = todo::validation_problem({{"title", "must not be empty"},
                                       {"priority", "must be one of none, low, medium, high, urgent"}});
    CHECK(r.status == 422);
    CHECK(r.content_type == "application/problem+json");
    CHECK(r.body ==
          R"({"type":"https://todo.dev/problems/validation","title":"Invalid request body","status":422,)"
          R"("detail":"2 fields are invalid","errors":[{"field":"title","message":"must not be empty"},)"
          R"({"field":"priority","message":"must be one of none, low, medium, high, urgent"}]})");
  }
  SECTION("one field") {
    auto r = todo::validation_problem({{"tags", "must have at most 20 tags"}});
    body_view b(r.body);
    CHECK(b.str("detail") == "1 field is invalid");
    simdjson::dom::array errors;
    REQUIRE(b.root["errors"].get(errors) == simdjson::SUCCESS);
    REQUIRE(errors.size() == 1);
    std::string_view field;
    REQUIRE(errors.at(0)["field"].get(field) == simdjson::SUCCESS);
    CHECK(field == "tags");
  }
  SECTION("many fields, all listed in order") {
    todo::field_errors fields;
    for (int i = 0; i < 5; ++i) {
      fields.push_back({"f" + std::to_string(i), "bad"});
    }
    auto r = todo::validation_problem(fields);
    body_view b(r.body);
    CHECK(b.str("detail") == "5 fields are invalid");
    simdjson::dom::array errors;
    REQUIRE(b.root["errors"].get(errors) == simdjson::SUCCESS);
    REQUIRE(errors.size() == 5);
    for (std::size_t i = 0; i < 5; ++i) {
      std::string_view field;
      REQUIRE(errors.at(i)["field"].get(field) == simdjson::SUCCESS);
      CHECK(field == "f" + std::to_string(i));
    }
  }
}

TEST_CASE("problem_from maps dependency errors", "[problem]") {
  SECTION("database unavailable, timeout or serialization failure: 503 with Retry-After") {
    for (auto e : {todo::db::errc::unavailable, todo::db::errc::timeout, todo::db::errc::serialization}) {
      auto r = todo::problem_from(todo::db::make_error_code(e));
      CHECK(r.status == 503);
      CHECK(r.content_type == "application/problem+json");
      CHECK(r.header_value("retry-after"));
    }
  }
  SECTION("any other database failure is a 500") {
    for (auto e : {todo::db::errc::failed, todo::db::errc::unique_violation}) {
      auto r = todo::problem_from(todo::db::make_error_code(e));
      CHECK(r.status == 500);
      CHECK(r.content_type == "application/problem+json");
      CHECK_FALSE(r.header_value("retry-after"));
    }
  }
  SECTION("the service's own codes keep their status") {
    CHECK(todo::problem_from(todo::make_error_code(todo::errc::not_found)).status == 404);
    CHECK(todo::problem_from(todo::make_error_code(todo::errc::precondition_failed)).status == 412);
  }
  SECTION("anything else is a 500") {
    auto r = todo::problem_from(boost::asio::error::operation_aborted);
    CHECK(r.status == 500);
    body_view b(r.body);
    CHECK(b.str("type") == "https://todo.dev/problems/internal");
  }
}
