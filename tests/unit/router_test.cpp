#include "todo/router.hpp"

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

namespace {

using todo::http::method;

boost::asio::awaitable<todo::http::response> noop(todo::request_context) { co_return todo::http::no_content(); }

todo::router make_router() {
  todo::router r;
  r.add(method::get, "/health", noop, todo::access::public_);
  r.add(method::get, "/api/v1/tasks", noop);
  r.add(method::post, "/api/v1/tasks", noop);
  r.add(method::get, "/api/v1/tasks/{id}", noop);
  r.add(method::patch, "/api/v1/tasks/{id}", noop);
  r.add(method::delete_, "/api/v1/tasks/{id}", noop);
  r.add(method::post, "/api/v1/tasks/{id}/complete", noop);
  r.add(method::get, "/api/v1/lists/{list}/tasks/{id}", noop);
  return r;
}

std::string pattern_of(const todo::router::match& m) { return m.r == nullptr ? std::string("<none>") : m.r->pattern; }

}  // namespace

TEST_CASE("router: literal segments match exactly", "[router]") {
  auto r = make_router();
  auto m = r.find(method::get, "/api/v1/tasks");
  CHECK(pattern_of(m) == "/api/v1/tasks");
  CHECK(m.params.empty());
  CHECK(m.allow.empty());
  CHECK(m.r->acc == todo::access::user);  // the default

  auto h = r.find(method::get, "/health");
  CHECK(pattern_of(h) == "/health");
  CHECK(h.r->acc == todo::access::public_);

  CHECK(r.find(method::post, "/api/v1/tasks").r->verb == method::post);

  for (const char* miss : {"/api/v1/task", "/api/v1/tasksx", "/API/v1/tasks", "/api/v1", "/", "", "api/v1/tasks",
                           "/health/extra"}) {
    INFO(miss);
    auto n = r.find(method::get, miss);
    CHECK(n.r == nullptr);
    CHECK(n.allow.empty());
  }
}

TEST_CASE("router: {param} segments capture one decoded segment", "[router]") {
  auto r = make_router();
  SECTION("one parameter") {
    auto m = r.find(method::get, "/api/v1/tasks/0192d5e4-7c1a-7b3e-9f55-3c1d2b4a5e6f");
    REQUIRE(pattern_of(m) == "/api/v1/tasks/{id}");
    REQUIRE(m.params.size() == 1);
    CHECK(m.params[0].first == "id");
    CHECK(m.params[0].second == "0192d5e4-7c1a-7b3e-9f55-3c1d2b4a5e6f");
  }
  SECTION("a literal segment after a parameter") {
    auto m = r.find(method::post, "/api/v1/tasks/abc/complete");
    REQUIRE(pattern_of(m) == "/api/v1/tasks/{id}/complete");
    CHECK(m.params == std::vector<std::pair<std::string, std::string>>{{"id", "abc"}});
  }
  SECTION("two parameters, in order") {
    auto m = r.find(method::get, "/api/v1/lists/home/tasks/42");
    REQUIRE(pattern_of(m) == "/api/v1/lists/{list}/tasks/{id}");
    CHECK(m.params == std::vector<std::pair<std::string, std::string>>{{"list", "home"}, {"id", "42"}});
  }
  SECTION("parameters are percent-decoded, '+' is not a space in a path") {
    auto m = r.find(method::get, "/api/v1/tasks/a%20b%2Fc+d");
    REQUIRE(pattern_of(m) == "/api/v1/tasks/{id}");
    CHECK(m.params[0].second == "a b/c+d");
  }
  SECTION("a parameter never spans segments") {
    CHECK(r.find(method::get, "/api/v1/tasks/a/b").r == nullptr);
  }
  SECTION("an empty parameter segment does not match") {
    auto m = r.find(method::get, "/api/v1/tasks//complete");
    CHECK(m.r == nullptr);
    auto e = r.find(method::post, "/api/v1/tasks//complete");
    CHECK(e.r == nullptr);
    CHECK(e.allow.empty());
  }
  SECTION("a malformed escape does not match") {
    auto m = r.find(method::get, "/api/v1/tasks/%zz");
    CHECK(m.r == nullptr);
    CHECK(m.allow.empty());
    CHECK(r.find(method::get, "/api/v1/tasks/abc%4").r == nullptr);
  }
  SECTION("request_context::param") {
    todo::request_context ctx;
    ctx.params = {{"list", "home"}, {"id", "42"}};
    CHECK(ctx.param("id") == "42");
    CHECK(ctx.param("list") == "home");
    CHECK(ctx.param("nope").empty());
  }
}

TEST_CASE("router: a trailing slash is another path", "[router]") {
  auto r = make_router();
  auto a = r.find(method::get, "/api/v1/tasks/");
  CHECK(a.r == nullptr);  // would be an empty {id}
  CHECK(a.allow.empty());
  auto b = r.find(method::get, "/health/");
  CHECK(b.r == nullptr);
  CHECK(b.allow.empty());
  auto c = r.find(method::post, "/api/v1/tasks/abc/complete/");
  CHECK(c.r == nullptr);
}

TEST_CASE("router: HEAD is answered by a GET route", "[router]") {
  auto r = make_router();
  auto m = r.find(method::head, "/api/v1/tasks/abc");
  REQUIRE(m.r != nullptr);
  CHECK(m.r->verb == method::get);
  CHECK(m.params[0].second == "abc");
  // but not by a route of any other method
  auto n = r.find(method::head, "/api/v1/tasks/abc/complete");
  CHECK(n.r == nullptr);
  CHECK(n.allow == "POST");
}

TEST_CASE("router: a known path with another method is a 405 with a sorted, distinct Allow", "[router]") {
  auto r = make_router();
  SECTION("GET implies HEAD") {
    auto m = r.find(method::put, "/api/v1/tasks/abc");
    CHECK(m.r == nullptr);
    CHECK(m.allow == "DELETE, GET, HEAD, PATCH");
  }
  SECTION("collection") {
    auto m = r.find(method::delete_, "/api/v1/tasks");
    CHECK(m.r == nullptr);
    CHECK(m.allow == "GET, HEAD, POST");
  }
  SECTION("duplicates from overlapping patterns are removed") {
    todo::router o;
    o.add(method::post, "/things/{id}", noop);
    o.add(method::get, "/things/special", noop);
    o.add(method::get, "/things/{id}", noop);
    o.add(method::head, "/things/{id}", noop);
    auto m = o.find(method::put, "/things/special");
    CHECK(m.r == nullptr);
    CHECK(m.allow == "GET, HEAD, POST");
    // the literal route wins for its own method
    CHECK(pattern_of(o.find(method::get, "/things/special")) == "/things/special");
    CHECK(pattern_of(o.find(method::get, "/things/other")) == "/things/{id}");
  }
  SECTION("a method the server does not know") {
    auto m = r.find(method::other, "/health");
    CHECK(m.r == nullptr);
    CHECK(m.allow == "GET, HEAD");
  }
}

TEST_CASE("router: a pattern must start with '/'", "[router]") {
  todo::router r;
  CHECK_THROWS_AS(r.add(method::get, "health", noop), std::logic_error);
  CHECK_THROWS_AS(r.add(method::get, "", noop), std::logic_error);
  r.add(method::get, "/ok", noop);
  CHECK(r.routes().size() == 1);
}

TEST_CASE("router: access names, as --print-routes prints them", "[router]") {
  CHECK(to_string(todo::access::public_) == "public");
  CHECK(to_string(todo::access::user) == "user");
  CHECK(to_string(todo::access::ops) == "ops");
  CHECK(to_string(todo::access::sidecar) == "sidecar");
}
