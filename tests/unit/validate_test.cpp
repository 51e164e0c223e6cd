#include "handlers.hpp"
#include "validate.hpp"

#include "todo/json.hpp"

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace {

using todo::tasks::body_mode;
using todo::tasks::parse_task_body;
using todo::tasks::parsed_body;
using todo::tasks::priority;

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (std::size_t i = 0; i < n; ++i) {
    out += s;
  }
  return out;
}

// {"<key>": <encoded value>, "title": "t"} for create; {"<key>": value} for patch.
std::string with(std::string_view key, std::string_view encoded) {
  return "{" + todo::json::quote(key) + ":" + std::string(encoded) + "}";
}
std::string with_title(std::string_view key, std::string_view encoded) {
  return R"({"title":"t",)" + todo::json::quote(key) + ":" + std::string(encoded) + "}";
}

std::string describe(const parsed_body& b) {
  std::string out = "bad_request='" + b.bad_request + "' errors:";
  for (const auto& e : b.errors) {
    out += " [" + e.field + ": " + e.message + "]";
  }
  return out;
}

std::optional<std::string> error_for(const parsed_body& b, std::string_view field) {
  for (const auto& e : b.errors) {
    if (e.field == field) {
      return e.message;
    }
  }
  return std::nullopt;
}

bool ok(const parsed_body& b) { return b.errors.empty() && b.bad_request.empty(); }

parsed_body create(const std::string& body) { return parse_task_body(body, body_mode::create); }
parsed_body patch(const std::string& body) { return parse_task_body(body, body_mode::patch); }

todo::tasks::task sample_task() {
  todo::tasks::task t;
  t.id = "0192d5e4-7c1a-7b3e-9f55-3c1d2b4a5e6f";
  t.user_id = "alice";
  t.title = "Water the plants";
  t.description = "all of them";
  t.prio = priority::high;
  t.tags = {"home", "weekly"};
  t.due_at = todo::time::parse_rfc3339("2026-03-02T17:00:00Z");
  t.timezone = "Europe/Berlin";
  t.version = 3;
  return t;
}

todo::http::request with_header(std::string name, std::string value) {
  todo::http::request r;
  r.verb = todo::http::method::patch;
  r.headers.push_back({std::move(name), std::move(value)});
  return r;
}

}  // namespace

// ---------------------------------------------------------------- title

TEST_CASE("title is required on create, optional on patch", "[validate]") {
  auto c = create("{}");
  INFO(describe(c));
  REQUIRE(c.errors.size() == 1);
  CHECK(c.errors[0].field == "title");
  CHECK(c.bad_request.empty());

  auto p = patch("{}");
  CHECK(ok(p));
  CHECK_FALSE(p.patch.title);
}

TEST_CASE("title is trimmed of ASCII and Unicode spaces", "[validate]") {
  auto b = create(R"({"title":" \t\n Water the plants \r\n"})");
  REQUIRE(ok(b));
  CHECK(b.patch.title == std::optional<std::string>("Water the plants"));

  auto u = create(R"({"title":"\u00a0\u3000\u2003Water\u00a0the plants\ufeff\u3000\u00a0"})");
  INFO(describe(u));
  REQUIRE(ok(u));
  CHECK(u.patch.title == std::optional<std::string>("Water\xC2\xA0the plants"));  // inner spaces stay

  // Raw UTF-8 as well as JSON escapes.
  auto raw = create("{\"title\":\"\xE3\x80\x80plants\xC2\xA0\"}");
  REQUIRE(ok(raw));
  CHECK(raw.patch.title == std::optional<std::string>("plants"));
}

TEST_CASE("title made only of spaces is empty", "[validate]") {
  for (const char* body : {R"({"title":""})", R"({"title":"   "})", R"({"title":"\u00a0\u3000 \t"})"}) {
    auto b = create(body);
    INFO(body << " -> " << describe(b));
    CHECK(error_for(b, "title") == std::optional<std::string>("must not be empty"));
    CHECK(b.errors.size() == 1);
    auto p = patch(body);
    CHECK(error_for(p, "title"));
  }
}

TEST_CASE("title is at most 500 code points, not bytes", "[validate]") {
  SECTION("500 two-byte characters") {
    auto b = create(with("title", todo::json::quote(repeat("\xC3\xA9", 500))));
    INFO(describe(b));
    REQUIRE(ok(b));
    CHECK(b.patch.title->size() == 1000);
  }
  SECTION("500 four-byte characters, with spaces around that do not count") {
    auto b = create(with("title", todo::json::quote("  " + repeat("\xF0\x9F\x8C\xB1", 500) + "  ")));
    INFO(describe(b));
    CHECK(ok(b));
  }
  SECTION("501 characters") {
    for (std::string_view ch : {"a", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x8C\xB1"}) {
      auto b = create(with("title", todo::json::quote(repeat(ch, 501))));
      INFO(describe(b));
      CHECK(error_for(b, "title") == std::optional<std::string>("must be at most 500 characters"));
    }
  }
}

TEST_CASE("title must not contain control characters", "[validate]") {
  for (const char* body : {R"({"title":"a\u0001b"})", R"({"title":"a\nb"})", R"({"title":"a\tb"})",
                           R"({"title":"a\u0000b"})", R"({"title":"a\u007fb"})", R"({"title":"\u001b[31mred"})"}) {
    auto b = create(body);
    INFO(body << " -> " << describe(b));
    CHECK(error_for(b, "title"));
    CHECK_FALSE(b.patch.title);
  }
}

TEST_CASE("title must be a string and never null", "[validate]") {
  auto n = patch(R"({"title":null})");
  CHECK(error_for(n, "title") == std::optional<std::string>("must not be null"));
  auto c = create(R"({"title":null})");
  CHECK(c.errors.size() == 1);  // not also "is required"
  CHECK(error_for(c, "title"));
  auto num = create(R"({"title":42})");
  CHECK(error_for(num, "title") == std::optional<std::string>("must be a string, not a number"));
}

// ---------------------------------------------------------------- description

TEST_CASE("description is 0..20000 code points", "[validate]") {
  SECTION("empty") {
    auto b = create(with_title("description", R"("")"));
    REQUIRE(ok(b));
    CHECK(b.patch.description == std::optional<std::string>(""));
  }
  SECTION("20000 two-byte characters") {
    auto b = create(with_title("description", todo::json::quote(repeat("\xC3\xA9", 20000))));
    INFO(describe(b).substr(0, 200));
    REQUIRE(ok(b));
    CHECK(b.patch.description->size() == 40000);
  }
  SECTION("20001 characters") {
    for (std::string_view ch : {"a", "\xC3\xA9", "\xF0\x9F\x8C\xB1"}) {
      auto b = create(with_title("description", todo::json::quote(repeat(ch, 20001))));
      CHECK(error_for(b, "description") == std::optional<std::string>("must be at most 20000 characters"));
    }
  }
  SECTION("newlines and tabs are fine, spaces are kept") {
    auto b = create(with_title("description", R"(" line 1\n\tline 2 ")"));
    REQUIRE(ok(b));
    CHECK(b.patch.description == std::optional<std::string>(" line 1\n\tline 2 "));
  }
  SECTION("NUL is rejected") {
    auto b = create(with_title("description", R"("before\u0000after")"));
    CHECK(error_for(b, "description"));
    CHECK_FALSE(b.patch.description);
  }
  SECTION("not a string") {
    auto b = create(with_title("description", "[]"));
    CHECK(error_for(b, "description") == std::optional<std::string>("must be a string, not an array"));
  }
}

// ---------------------------------------------------------------- priority

TEST_CASE("priority is one of none, low, medium, high, urgent", "[validate]") {
  const std::pair<const char*, priority> all[] = {{"none", priority::none},
                                                  {"low", priority::low},
                                                  {"medium", priority::medium},
                                                  {"high", priority::high},
                                                  {"urgent", priority::urgent}};
  for (const auto& [name, value] : all) {
    auto b = create(with_title("priority", todo::json::quote(name)));
    INFO(name);
    REQUIRE(ok(b));
    CHECK(b.patch.prio == value);
    CHECK(todo::tasks::to_string(value) == name);
  }
  // The order the API sorts them in.
  CHECK(priority::none < priority::low);
  CHECK(priority::low < priority::medium);
  CHECK(priority::medium < priority::high);
  CHECK(priority::high < priority::urgent);

  for (const char* bad : {R"("HIGH")", R"("critical")", R"("")", "3", "true", "[]"}) {
    auto b = create(with_title("priority", bad));
    INFO(bad);
    CHECK(error_for(b, "priority") == std::optional<std::string>("must be one of none, low, medium, high, urgent"));
  }
}

// ---------------------------------------------------------------- tags

TEST_CASE("tags are stored lower-case", "[validate]") {
  auto b = create(with_title("tags", R"(["Home","Work:Q1/Plan_B-2","x"])"));
  INFO(describe(b));
  REQUIRE(ok(b));
  CHECK(b.patch.tags == std::optional<std::vector<std::string>>({"home", "work:q1/plan_b-2", "x"}));
  auto none = create(with_title("tags", "[]"));
  REQUIRE(ok(none));
  CHECK(none.patch.tags == std::optional<std::vector<std::string>>(std::vector<std::string>{}));
}

TEST_CASE("tags: at most 20, each 1..50 characters", "[validate]") {
  auto list = [](std::size_t n) {
    std::string out = "[";
    for (std::size_t i = 0; i < n; ++i) {
      out += (i ? "," : "") + todo::json::quote("t" + std::to_string(i));
    }
    return out + "]";
  };
  auto twenty = create(with_title("tags", list(20)));
  INFO(describe(twenty));
  CHECK(ok(twenty));
  CHECK(twenty.patch.tags->size() == 20);
  CHECK(error_for(create(with_title("tags", list(21))), "tags"));

  CHECK(ok(create(with_title("tags", "[" + todo::json::quote(std::string(50, 'a')) + "]"))));
  CHECK(error_for(create(with_title("tags", "[" + todo::json::quote(std::string(51, 'a')) + "]")), "tags"));
  CHECK(error_for(create(with_title("tags", R"([""])")), "tags"));
}

TEST_CASE("tags: only letters, digits, '-', '_', ':' and '/'", "[validate]") {
  for (const char* bad : {R"(["a b"])", R"(["a.b"])", R"(["#home"])", R"(["a,b"])", R"(["tag\n"])",
                          R"(["ok","no!"])"}) {
    auto b = create(with_title("tags", bad));
    INFO(bad);
    CHECK(error_for(b, "tags"));
    CHECK_FALSE(b.patch.tags);
  }
}

TEST_CASE("tags: distinct after lower-casing", "[validate]") {
  auto b = create(with_title("tags", R"(["Home","work","HOME"])"));
  REQUIRE(error_for(b, "tags"));
  CHECK(error_for(b, "tags")->find("home") != std::string::npos);
  CHECK(error_for(create(with_title("tags", R"(["a","a"])")), "tags"));
}

TEST_CASE("tags: must be an array of strings", "[validate]") {
  CHECK(error_for(create(with_title("tags", R"(["a",1])")), "tags") ==
        std::optional<std::string>("each tag must be a string"));
  CHECK(error_for(create(with_title("tags", R"([null])")), "tags"));
  CHECK(error_for(create(with_title("tags", R"("home")")), "tags") ==
        std::optional<std::string>("must be an array of strings, not a string"));
  CHECK(error_for(create(with_title("tags", R"({"a":1})")), "tags"));
}

// ---------------------------------------------------------------- due_at

TEST_CASE("due_at is an RFC 3339 timestamp with an offset, or null", "[validate]") {
  auto b = create(with_title("due_at", R"("2026-03-02T18:00:00+01:00")"));
  REQUIRE(ok(b));
  REQUIRE(b.patch.due_at);
  CHECK(*b.patch.due_at == todo::time::parse_rfc3339("2026-03-02T17:00:00Z"));

  auto n = patch(R"({"due_at":null})");
  REQUIRE(ok(n));
  CHECK(n.patch.due_at.has_value());         // present ...
  CHECK_FALSE(n.patch.due_at->has_value());  // ... and cleared

  for (const char* bad : {R"("2026-03-02T17:00:00")", R"("2026-03-02")", R"("tomorrow")", R"("2026-02-30T00:00:00Z")",
                          "1772470800", "{}"}) {
    INFO(bad);
    CHECK(error_for(create(with_title("due_at", bad)), "due_at"));
  }
}

// ---------------------------------------------------------------- timezone

TEST_CASE("timezone is an IANA zone name", "[validate]") {
  for (const char* zone : {"Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata", "America/Argentina/Buenos_Aires"}) {
    auto b = create(with_title("timezone", todo::json::quote(zone)));
    INFO(zone << " -> " << describe(b));
    REQUIRE(ok(b));
    CHECK(b.patch.timezone == std::optional<std::string>(zone));
    CHECK(todo::tasks::valid_timezone(zone));
  }
  for (const char* zone : {"Mars/Phobos", "../../etc/passwd", "", "Europe/../UTC", "Europe/Berlin/", "Nowhere",
                           "+01:00"}) {
    auto b = create(with_title("timezone", todo::json::quote(zone)));
    INFO("'" << zone << "'");
    CHECK(error_for(b, "timezone"));
    CHECK_FALSE(todo::tasks::valid_timezone(zone));
  }
  CHECK(error_for(create(with_title("timezone", "1")), "timezone"));
}

// ---------------------------------------------------------------- not yet supported

TEST_CASE("recurrence: null is accepted, a rule is refused as not available", "[validate]") {
  CHECK(ok(create(with_title("recurrence", "null"))));
  auto b = create(with_title("recurrence", R"({"rrule":"FREQ=DAILY"})"));
  REQUIRE(error_for(b, "recurrence"));
  CHECK(error_for(b, "recurrence")->find("not available") != std::string::npos);
}

TEST_CASE("reminders: the body's shape, item by item", "[validate]") {
  CHECK(ok(create(with_title("reminders", "[]"))));
  CHECK(ok(create(with_title("reminders", "null"))));
  CHECK(ok(create(with_title("reminders", R"([{"before":"PT15M"},{"at":"2030-01-01T08:00:00Z"}])"))));
  CHECK(error_for(create(with_title("reminders", R"({})")), "reminders"));
  CHECK(error_for(create(with_title("reminders", R"([{"before":"PT15M","at":"2030-01-01T08:00:00Z"}])")),
                  "reminders[0]"));
  CHECK(error_for(create(with_title("reminders", R"([{"at":"2030-01-01T08:00:00Z"},{"before":"P1M"}])")),
                  "reminders[1].before"));
  CHECK(error_for(create(with_title("reminders", R"([{"at":"tomorrow"}])")), "reminders[0].at"));
  CHECK(error_for(create(with_title("reminders", R"([{"at":"2030-01-01T08:00:00Z","colour":1}])")),
                  "reminders[0].colour"));
  CHECK(error_for(create(with_title("reminders", R"([{"before":"PT1M","id":"nope"}])")), "reminders[0].id"));
  std::string eleven = "[";
  for (int i = 0; i < 11; ++i) {
    eleven += i == 0 ? R"({"before":"PT1M"})" : R"(,{"before":"PT1M"})";
  }
  eleven += "]";
  CHECK(error_for(create(with_title("reminders", eleven)), "reminders"));
}

// ---------------------------------------------------------------- fields the client may not send

TEST_CASE("server-owned fields are refused", "[validate]") {
  for (const char* field : {"id", "user_id", "created_at", "updated_at", "version", "completed_at", "series_id"}) {
    for (auto mode : {body_mode::create, body_mode::patch}) {
      auto b = parse_task_body(with_title(field, R"("x")"), mode);
      INFO(field);
      CHECK(error_for(b, field) == std::optional<std::string>("is set by the server"));
    }
  }
}

TEST_CASE("completed is refused with a pointer to /complete", "[validate]") {
  auto b = patch(R"({"completed":true})");
  REQUIRE(error_for(b, "completed"));
  CHECK(error_for(b, "completed")->find("/complete") != std::string::npos);
}

TEST_CASE("unknown fields are refused by name", "[validate]") {
  auto b = create(with_title("colour", R"("green")"));
  REQUIRE(b.errors.size() == 1);
  CHECK(b.errors[0].field == "colour");
  CHECK(b.errors[0].message == "is not a known field");
  CHECK(error_for(create(with_title("Title", R"("x")")), "Title"));  // names are case-sensitive
}

TEST_CASE("duplicate keys are refused", "[validate]") {
  auto b = create(R"({"title":"a","title":"b"})");
  INFO(describe(b));
  REQUIRE(error_for(b, "title"));
  CHECK(error_for(b, "title") == std::optional<std::string>("appears more than once"));
}

TEST_CASE("every broken field is listed at once", "[validate]") {
  auto b = create(R"({"title":"","priority":"extreme","tags":"x","due_at":"soon","timezone":"Mars/Phobos","id":"1","colour":1})");
  INFO(describe(b));
  CHECK(b.bad_request.empty());
  CHECK(b.errors.size() == 7);
  for (const char* f : {"title", "priority", "tags", "due_at", "timezone", "id", "colour"}) {
    CHECK(error_for(b, f));
  }
}

TEST_CASE("the body must be a JSON object", "[validate]") {
  for (const char* body : {"[]", R"("title")", "null", "42", "true"}) {
    auto b = create(body);
    INFO(body);
    CHECK(b.bad_request.empty());
    CHECK(b.errors.size() == 1);
  }
}

TEST_CASE("a body that is not JSON is a bad request, not a validation error", "[validate]") {
  for (const char* body : {"", "{", R"({"title":"x",})", "title=x", "{\"title\":\"\xFF\"}"}) {
    auto b = create(body);
    INFO("'" << body << "'");
    CHECK_FALSE(b.bad_request.empty());
    CHECK(b.errors.empty());
  }
  auto deep = patch(R"({"tags":)" + std::string(100, '[') + std::string(100, ']') + "}");
  CHECK_FALSE(deep.bad_request.empty());
}

// ---------------------------------------------------------------- patch semantics (RFC 7396)

TEST_CASE("patch: absent fields are left alone", "[validate][patch]") {
  auto b = patch(R"({"priority":"low"})");
  REQUIRE(ok(b));
  auto t = sample_task();
  auto before = t;
  CHECK(todo::tasks::apply(b.patch, t));
  CHECK(t.prio == priority::low);
  CHECK(t.title == before.title);
  CHECK(t.description == before.description);
  CHECK(t.tags == before.tags);
  CHECK(t.due_at == before.due_at);
  CHECK(t.timezone == before.timezone);
}

TEST_CASE("patch: null clears a field to its default", "[validate][patch]") {
  auto b = patch(R"({"description":null,"priority":null,"tags":null,"due_at":null,"timezone":null})");
  INFO(describe(b));
  REQUIRE(ok(b));
  auto t = sample_task();
  CHECK(todo::tasks::apply(b.patch, t));
  CHECK(t.description.empty());
  CHECK(t.prio == priority::none);
  CHECK(t.tags.empty());
  CHECK_FALSE(t.due_at.has_value());
  CHECK(t.timezone == "UTC");
  CHECK(t.title == "Water the plants");
  // Applying it again changes nothing.
  CHECK_FALSE(todo::tasks::apply(b.patch, t));
}

TEST_CASE("patch: title cannot be cleared", "[validate][patch]") {
  auto b = patch(R"({"title":null})");
  CHECK(error_for(b, "title"));
  CHECK_FALSE(b.patch.title);
}

TEST_CASE("patch: apply reports whether anything changed", "[validate][patch]") {
  auto t = sample_task();
  SECTION("empty patch") {
    auto b = patch("{}");
    REQUIRE(ok(b));
    CHECK_FALSE(todo::tasks::apply(b.patch, t));
  }
  SECTION("same values") {
    auto b = patch(R"({"title":"  Water the plants ","priority":"high","tags":["HOME","weekly"],)"
                   R"("due_at":"2026-03-02T18:00:00+01:00","timezone":"Europe/Berlin","description":"all of them"})");
    INFO(describe(b));
    REQUIRE(ok(b));
    auto before = t;
    CHECK_FALSE(todo::tasks::apply(b.patch, t));
    CHECK(t.title == before.title);
  }
  SECTION("one new value") {
    auto b = patch(R"({"title":"Water the garden"})");
    REQUIRE(ok(b));
    CHECK(todo::tasks::apply(b.patch, t));
    CHECK(t.title == "Water the garden");
  }
  SECTION("tag order is a change") {
    auto b = patch(R"({"tags":["weekly","home"]})");
    REQUIRE(ok(b));
    CHECK(todo::tasks::apply(b.patch, t));
    CHECK(t.tags == std::vector<std::string>{"weekly", "home"});
  }
}

// ---------------------------------------------------------------- field rules exposed directly

TEST_CASE("check_title, check_description and check_tags", "[validate]") {
  std::string title = "\xE3\x80\x80 x \xC2\xA0";
  CHECK(todo::tasks::check_title(title).empty());
  CHECK(title == "x");
  std::string blank = " ";
  CHECK_FALSE(todo::tasks::check_title(blank).empty());

  CHECK(todo::tasks::check_description("").empty());
  CHECK_FALSE(todo::tasks::check_description(std::string("a\0b", 3)).empty());

  std::vector<std::string> tags{"A", "b/C"};
  CHECK(todo::tasks::check_tags(tags).empty());
  CHECK(tags == std::vector<std::string>{"a", "b/c"});
}

// ---------------------------------------------------------------- If-Match

TEST_CASE("read_if_match", "[handlers]") {
  using todo::tasks::precondition;
  SECTION("absent") {
    todo::http::request r;
    CHECK(std::holds_alternative<std::monostate>(todo::tasks::read_if_match(r)));
  }
  SECTION("one strong tag") {
    auto v = todo::tasks::read_if_match(with_header("if-match", "\"3\""));
    REQUIRE(std::holds_alternative<precondition>(v));
    const auto& p = std::get<precondition>(v);
    CHECK_FALSE(p.any);
    CHECK(p.versions == std::vector<std::int64_t>{3});
    CHECK(p.matches(3));
    CHECK_FALSE(p.matches(4));
  }
  SECTION("a weak tag is well-formed, not a 400") {
    auto v = todo::tasks::read_if_match(with_header("if-match", "W/\"3\""));
    REQUIRE(std::holds_alternative<precondition>(v));
    CHECK_FALSE(std::get<precondition>(v).any);
    CHECK_FALSE(std::get<precondition>(v).matches(2));
  }
  SECTION("a list") {
    auto v = todo::tasks::read_if_match(with_header("if-match", "\"1\", \"2\""));
    REQUIRE(std::holds_alternative<precondition>(v));
    const auto& p = std::get<precondition>(v);
    CHECK(p.versions == std::vector<std::int64_t>{1, 2});
    CHECK(p.matches(1));
    CHECK(p.matches(2));
    CHECK_FALSE(p.matches(3));
  }
  SECTION("a star matches any version") {
    auto v = todo::tasks::read_if_match(with_header("if-match", "*"));
    REQUIRE(std::holds_alternative<precondition>(v));
    CHECK(std::get<precondition>(v).any);
    CHECK(std::get<precondition>(v).matches(1));
    CHECK(std::get<precondition>(v).matches(999));
  }
  SECTION("a well-formed tag that is not a version never matches") {
    auto v = todo::tasks::read_if_match(with_header("if-match", "\"abc\""));
    REQUIRE(std::holds_alternative<precondition>(v));
    CHECK_FALSE(std::get<precondition>(v).matches(1));
  }
  SECTION("malformed values are a 400 problem") {
    for (const char* bad : {"3", "\"3", "3\"", "W/3", "\"", "'3'"}) {
      auto v = todo::tasks::read_if_match(with_header("if-match", bad));
      INFO(bad);
      REQUIRE(std::holds_alternative<todo::http::response>(v));
      const auto& r = std::get<todo::http::response>(v);
      CHECK(r.status == 400);
      CHECK(r.content_type == "application/problem+json");
    }
  }
  SECTION("etag is the quoted version") {
    auto t = sample_task();
    CHECK(todo::tasks::etag(t) == "\"3\"");
    auto v = todo::tasks::read_if_match(with_header("if-match", todo::tasks::etag(t)));
    REQUIRE(std::holds_alternative<precondition>(v));
    CHECK(std::get<precondition>(v).matches(t.version));
  }
}

// ---------------------------------------------------------------- Content-Type

TEST_CASE("require_json", "[handlers]") {
  using todo::tasks::require_json;
  SECTION("JSON is accepted in any case and with parameters") {
    for (const char* ct : {"application/json", "application/json; charset=utf-8", "Application/JSON",
                           "APPLICATION/JSON;charset=UTF-8", " application/json "}) {
      INFO(ct);
      CHECK_FALSE(require_json(with_header("content-type", ct), false));
      CHECK_FALSE(require_json(with_header("content-type", ct), true));
    }
  }
  SECTION("merge-patch only where it is allowed") {
    CHECK_FALSE(require_json(with_header("content-type", "application/merge-patch+json"), true));
    CHECK_FALSE(require_json(with_header("content-type", "application/merge-patch+json; charset=utf-8"), true));
    auto r = require_json(with_header("content-type", "application/merge-patch+json"), false);
    REQUIRE(r);
    CHECK(r->status == 415);
  }
  SECTION("anything else, or nothing, is a 415 problem") {
    todo::http::request none;
    for (const auto& req : {none, with_header("content-type", "text/plain"),
                            with_header("content-type", "application/jsonx"),
                            with_header("content-type", "application/x-www-form-urlencoded"),
                            with_header("content-type", "")}) {
      auto r = require_json(req, true);
      REQUIRE(r);
      CHECK(r->status == 415);
      CHECK(r->content_type == "application/problem+json");
    }
  }
}
