#include "todo/dispatch.hpp"
#include "todo/jwt.hpp"
#include "todo/log.hpp"
#include "todo/metrics.hpp"
#include "todo/rate_limit.hpp"
#include "todo/uuid.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace {

using todo::http::method;
namespace asio = boost::asio;

const std::string secret = "an HS256 secret of at least 32 bytes!";
constexpr std::int64_t t0 = 1'700'000'000;

// Handlers are free coroutine functions. They report what they saw in
// headers so that the tests can check what the dispatcher passed on.
asio::awaitable<todo::http::response> show_task(todo::request_context ctx) {
  auto r = todo::http::json(200, R"({"ok":true})");
  r.set("x-seen-user", ctx.user);
  r.set("x-seen-id", std::string(ctx.param("id")));
  r.set("x-seen-request-id", ctx.request_id);
  r.set("x-seen-path", ctx.req.path);
  co_return r;
}

asio::awaitable<todo::http::response> create_thing(todo::request_context ctx) {
  co_return todo::http::json(201, ctx.req.body);
}

asio::awaitable<todo::http::response> health(todo::request_context ctx) {
  auto r = todo::http::json(200, R"({"status":"ok"})");
  r.set("x-seen-user", ctx.user);
  co_return r;
}

asio::awaitable<todo::http::response> explode(todo::request_context) {
  throw std::runtime_error("boom");
  co_return todo::http::no_content();
}

struct fixture {
  todo::router routes;
  todo::jwt::verifier verifier{todo::jwt::keys{secret, ""}};
  todo::metrics::registry metrics;
  std::atomic<bool> ready{true};
  std::int64_t now = t0;
  todo::dispatcher dispatch{routes, verifier, metrics, &ready, [this] { return now; }};

  fixture() {
    todo::log::set_level(todo::log::level::warn);  // keep access logs out of the test output
    routes.add(method::get, "/health", health, todo::access::public_);
    routes.add(method::get, "/api/v1/things/{id}", show_task);
    routes.add(method::delete_, "/api/v1/things/{id}", show_task);
    routes.add(method::post, "/api/v1/things", create_thing);
    routes.add(method::get, "/api/v1/boom", explode);
  }
  ~fixture() { todo::log::set_level(todo::log::level::info); }

  std::string token(std::string_view sub = "alice", std::int64_t ttl = 3600) const {
    return todo::jwt::sign_hs256(secret, sub, ttl, now);
  }

  todo::http::response run(todo::http::request req) {
    asio::io_context io;
    auto fut = asio::co_spawn(io, dispatch.handle(std::move(req)), asio::use_future);
    io.run();
    return fut.get();
  }

  todo::http::response get(std::string path, std::string bearer = {}, method verb = method::get) {
    todo::http::request req;
    req.verb = verb;
    req.path = std::move(path);
    if (!bearer.empty()) {
      req.headers.push_back({"authorization", "Bearer " + bearer});
    }
    return run(std::move(req));
  }
};

bool is_problem(const todo::http::response& r) { return r.content_type == "application/problem+json"; }

}  // namespace

TEST_CASE_METHOD(fixture, "dispatch: an unknown route is a 404 problem", "[dispatch]") {
  auto anonymous = get("/nope");
  CHECK(anonymous.status == 404);
  CHECK(is_problem(anonymous));

  auto authenticated = get("/api/v1/nope", token());
  CHECK(authenticated.status == 404);
  CHECK(is_problem(authenticated));
  CHECK(authenticated.body.find("https://todo.dev/problems/not-found") != std::string::npos);
}

TEST_CASE_METHOD(fixture, "dispatch: a known path with a wrong method is a 405 with Allow", "[dispatch]") {
  auto r = get("/api/v1/things/abc", token(), method::put);
  CHECK(r.status == 405);
  CHECK(is_problem(r));
  REQUIRE(r.header_value("allow"));
  CHECK(*r.header_value("allow") == "DELETE, GET, HEAD");

  auto p = get("/health", {}, method::post);
  CHECK(p.status == 405);
  CHECK(p.header_value("allow") == std::optional<std::string_view>("GET, HEAD"));
}

TEST_CASE_METHOD(fixture, "dispatch: HEAD reaches the GET handler", "[dispatch]") {
  auto r = get("/api/v1/things/abc", token(), method::head);
  CHECK(r.status == 200);
  CHECK(r.header_value("x-seen-id") == std::optional<std::string_view>("abc"));
}

TEST_CASE_METHOD(fixture, "dispatch: /api/ without a bearer token is a 401 with WWW-Authenticate", "[dispatch]") {
  SECTION("no header") {
    auto r = get("/api/v1/things/abc");
    CHECK(r.status == 401);
    CHECK(is_problem(r));
    REQUIRE(r.header_value("www-authenticate"));
    CHECK(r.header_value("www-authenticate")->find("Bearer") != std::string_view::npos);
    CHECK_FALSE(r.header_value("x-seen-user"));  // the handler never ran
  }
  SECTION("another scheme") {
    todo::http::request req;
    req.path = "/api/v1/things/abc";
    req.headers.push_back({"authorization", "Basic YWxpY2U6c2VjcmV0"});
    auto r = run(std::move(req));
    CHECK(r.status == 401);
    REQUIRE(r.header_value("www-authenticate"));
    CHECK(r.header_value("www-authenticate")->find("Bearer") != std::string_view::npos);
  }
  SECTION("unknown /api/ routes do not reveal themselves to anonymous callers") {
    CHECK(get("/api/v1/nope").status == 401);
  }
  SECTION("a garbage token") {
    auto r = get("/api/v1/things/abc", "not.a.jwt");
    CHECK(r.status == 401);
    CHECK(is_problem(r));
    REQUIRE(r.header_value("www-authenticate"));
    CHECK(r.header_value("www-authenticate")->find("Bearer") != std::string_view::npos);
  }
  SECTION("a token signed with another secret") {
    auto forged = todo::jwt::sign_hs256("another secret of at least 32 bytes!!", "alice", 3600, now);
    auto r = get("/api/v1/things/abc", forged);
    CHECK(r.status == 401);
    CHECK_FALSE(r.header_value("x-seen-user"));
  }
}

TEST_CASE_METHOD(fixture, "dispatch: an expired token is a 401, within 60 s of leeway it is not", "[dispatch]") {
  auto tok = token("alice", 60);  // exp = t0 + 60
  now = t0 + 60 + 59;
  CHECK(get("/api/v1/things/abc", tok).status == 200);
  now = t0 + 60 + 61;
  auto r = get("/api/v1/things/abc", tok);
  CHECK(r.status == 401);
  CHECK(is_problem(r));
  REQUIRE(r.header_value("www-authenticate"));
  CHECK(r.header_value("www-authenticate")->find("Bearer") != std::string_view::npos);
  CHECK(r.body.find("expired") != std::string::npos);
}

TEST_CASE_METHOD(fixture, "dispatch: a valid token reaches the handler with the user and decoded params", "[dispatch]") {
  auto r = get("/api/v1/things/hello%20world", token("bob@example.com"));
  CHECK(r.status == 200);
  CHECK(r.content_type == "application/json");
  CHECK(r.header_value("x-seen-user") == std::optional<std::string_view>("bob@example.com"));
  CHECK(r.header_value("x-seen-id") == std::optional<std::string_view>("hello world"));
  CHECK(r.header_value("x-seen-path") == std::optional<std::string_view>("/api/v1/things/hello%20world"));

  todo::http::request post;
  post.verb = method::post;
  post.path = "/api/v1/things";
  post.body = R"({"title":"x"})";
  post.headers.push_back({"authorization", "bearer " + token()});  // the scheme is case-insensitive
  auto created = run(std::move(post));
  CHECK(created.status == 201);
  CHECK(created.body == R"({"title":"x"})");
}

TEST_CASE_METHOD(fixture, "dispatch: x-request-id is echoed when acceptable, generated otherwise", "[dispatch]") {
  SECTION("acceptable") {
    todo::http::request req;
    req.path = "/health";
    req.headers.push_back({"x-request-id", "req-42_a.b:c"});
    auto r = run(std::move(req));
    CHECK(r.header_value("x-request-id") == std::optional<std::string_view>("req-42_a.b:c"));
  }
  SECTION("the handler sees the same id") {
    todo::http::request req;
    req.path = "/api/v1/things/x";
    req.headers.push_back({"authorization", "Bearer " + token()});
    req.headers.push_back({"x-request-id", "abc123"});
    auto r = run(std::move(req));
    CHECK(r.header_value("x-seen-request-id") == std::optional<std::string_view>("abc123"));
    CHECK(r.header_value("x-request-id") == std::optional<std::string_view>("abc123"));
  }
  SECTION("absent: a fresh UUID, also seen by the handler") {
    todo::http::request req;
    req.path = "/api/v1/things/x";
    req.headers.push_back({"authorization", "Bearer " + token()});
    auto r = run(std::move(req));
    REQUIRE(r.header_value("x-request-id"));
    std::string id(*r.header_value("x-request-id"));
    CHECK(todo::uuid::normalize(id) == std::optional<std::string>(id));
    CHECK(r.header_value("x-seen-request-id") == std::optional<std::string_view>(id));
    auto again = get("/health");
    CHECK(again.header_value("x-request-id") != std::optional<std::string_view>(id));
  }
  SECTION("malicious or oversized ids are replaced") {
    for (std::string bad : {std::string("abc def"), std::string("abc\r\nset-cookie: x=1"), std::string(""),
                            std::string(129, 'a'), std::string("id\"<script>")}) {
      todo::http::request req;
      req.path = "/health";
      req.headers.push_back({"x-request-id", bad});
      auto r = run(std::move(req));
      REQUIRE(r.header_value("x-request-id"));
      std::string id(*r.header_value("x-request-id"));
      INFO(bad << " -> " << id);
      CHECK(id != bad);
      CHECK(id.find_first_of(" \r\n\"<") == std::string::npos);
      CHECK(todo::uuid::normalize(id).has_value());
    }
  }
  SECTION("128 characters are still acceptable") {
    todo::http::request req;
    req.path = "/health";
    req.headers.push_back({"x-request-id", std::string(128, 'a')});
    auto r = run(std::move(req));
    CHECK(r.header_value("x-request-id") == std::optional<std::string_view>(std::string(128, 'a')));
  }
  SECTION("errors carry the id too") {
    todo::http::request req;
    req.path = "/api/v1/things/x";
    req.headers.push_back({"x-request-id", "trace-401"});
    auto r = run(std::move(req));
    CHECK(r.status == 401);
    CHECK(r.header_value("x-request-id") == std::optional<std::string_view>("trace-401"));
  }
}

TEST_CASE_METHOD(fixture, "dispatch: a handler that throws is a 500 problem", "[dispatch]") {
  todo::log::set_level(todo::log::level::error);
  auto r = get("/api/v1/boom", token());
  CHECK(r.status == 500);
  CHECK(is_problem(r));
  CHECK(r.body.find("boom") == std::string::npos);  // internals stay in the log
  CHECK(r.header_value("x-request-id"));
}

TEST_CASE_METHOD(fixture, "dispatch: api_ready gates /api/ with a 503, public routes still answer", "[dispatch]") {
  ready = false;
  auto r = get("/api/v1/things/abc", token());
  CHECK(r.status == 503);
  CHECK(is_problem(r));
  REQUIRE(r.header_value("retry-after"));
  CHECK_FALSE(r.header_value("retry-after")->empty());
  CHECK_FALSE(r.header_value("x-seen-user"));

  auto h = get("/health");
  CHECK(h.status == 200);
  CHECK(h.body == R"({"status":"ok"})");

  ready = true;
  CHECK(get("/api/v1/things/abc", token()).status == 200);
}

TEST_CASE("dispatch: without an api_ready flag /api/ is always open", "[dispatch]") {
  todo::router routes;
  routes.add(method::get, "/api/v1/things/{id}", show_task);
  todo::jwt::verifier v{todo::jwt::keys{secret, ""}};
  todo::metrics::registry m;
  todo::dispatcher d{routes, v, m, nullptr, [] { return t0; }};
  todo::http::request req;
  req.path = "/api/v1/things/1";
  req.headers.push_back({"authorization", "Bearer " + todo::jwt::sign_hs256(secret, "carol", 60, t0)});
  asio::io_context io;
  auto fut = asio::co_spawn(io, d.handle(std::move(req)), asio::use_future);
  io.run();
  auto r = fut.get();
  CHECK(r.status == 200);
  CHECK(r.header_value("x-seen-user") == std::optional<std::string_view>("carol"));
}

TEST_CASE_METHOD(fixture, "dispatch: requests are counted by route, method and status", "[dispatch]") {
  get("/api/v1/things/a", token());
  get("/api/v1/things/b", token());
  get("/api/v1/things/c", token(), method::delete_);
  get("/api/v1/things/a");
  get("/nope");
  auto text = metrics.render();
  INFO(text);
  CHECK(text.find("# TYPE todo_http_requests_total counter") != std::string::npos);
  CHECK(text.find("todo_http_requests_total{route=\"/api/v1/things/{id}\",method=\"GET\",status=\"200\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("todo_http_requests_total{route=\"/api/v1/things/{id}\",method=\"DELETE\",status=\"200\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("method=\"GET\",status=\"401\"} 1\n") != std::string::npos);
  CHECK(text.find("method=\"GET\",status=\"404\"} 1\n") != std::string::npos);
  // Unmatched paths do not become label values.
  CHECK(text.find("/nope") == std::string::npos);
  CHECK(text.find("things/a") == std::string::npos);
  CHECK(text.find("# TYPE todo_http_request_duration_seconds histogram") != std::string::npos);
  CHECK(text.find("todo_http_request_duration_seconds_count{route=\"/api/v1/things/{id}\",method=\"GET\"} 2\n") !=
        std::string::npos);
}

TEST_CASE_METHOD(fixture, "dispatcher::authenticate", "[dispatch]") {
  auto ok = dispatch.authenticate(token("dave"));
  REQUIRE(std::holds_alternative<std::string>(ok));
  CHECK(std::get<std::string>(ok) == "dave");

  auto denied = dispatch.authenticate("x.y.z");
  REQUIRE(std::holds_alternative<todo::http::response>(denied));
  const auto& r = std::get<todo::http::response>(denied);
  CHECK(r.status == 401);
  CHECK(is_problem(r));
  REQUIRE(r.header_value("www-authenticate"));
  CHECK(r.header_value("www-authenticate")->starts_with("Bearer"));
}

TEST_CASE_METHOD(fixture, "dispatch: a client address over its rate gets 429 before authentication", "[dispatch]") {
  // A rate this slow does not refill during the test.
  todo::rate_limiter per_address(0.001, 2);
  auto from = [&](std::string address, std::string path, std::string bearer = {}) {
    todo::http::request req;
    req.path = std::move(path);
    req.remote_address = std::move(address);
    if (!bearer.empty()) {
      req.headers.push_back({"authorization", "Bearer " + bearer});
    }
    return run(std::move(req));
  };
  SECTION("public and authenticated routes alike, per address, IPv6 per /64") {
    dispatch.limit_addresses(&per_address, true);
    CHECK(from("203.0.113.5", "/health").status == 200);
    CHECK(from("203.0.113.5", "/api/v1/things/a", token()).status == 200);
    auto r = from("203.0.113.5", "/health");
    CHECK(r.status == 429);
    CHECK(is_problem(r));
    CHECK(r.header_value("retry-after"));
    // No token at all: still 429, the limit comes first.
    CHECK(from("203.0.113.5", "/api/v1/things/a").status == 429);
    CHECK(from("203.0.113.6", "/health").status == 200);
    CHECK(from("2001:db8::1", "/health").status == 200);
    CHECK(from("2001:db8::2", "/health").status == 200);
    CHECK(from("2001:db8::3", "/health").status == 429);
    CHECK(metrics.render().find(R"(todo_http_rejections_total{reason="rate_ip"} 3)") != std::string::npos);
  }
  SECTION("loopback is exempt unless configured otherwise") {
    dispatch.limit_addresses(&per_address, true);
    for (int i = 0; i < 5; ++i) {
      CHECK(from("127.0.0.1", "/health").status == 200);
    }
    dispatch.limit_addresses(&per_address, false);
    CHECK(from("::1", "/health").status == 200);
    CHECK(from("::1", "/health").status == 200);
    CHECK(from("::1", "/health").status == 429);
  }
}

// Only `user` routes authenticate, wherever they are; ops and sidecar routes
// carry no user data and answer without a token (the sidecar's token is the
// handler's business).
TEST_CASE_METHOD(fixture, "dispatch: access decides authentication outside /api/", "[dispatch][security]") {
  routes.add(method::get, "/ops-thing", health, todo::access::ops);
  routes.add(method::post, "/job/{name}", health, todo::access::sidecar);
  routes.add(method::get, "/elsewhere/{id}", show_task, todo::access::user);
  CHECK(get("/ops-thing").status == 200);
  CHECK(get("/job/x", {}, method::post).status == 200);
  auto anonymous = get("/elsewhere/1");
  CHECK(anonymous.status == 401);
  CHECK_FALSE(anonymous.header_value("x-seen-user"));
  auto r = get("/elsewhere/1", token("bob"));
  CHECK(r.status == 200);
  CHECK(r.header_value("x-seen-user") == std::string_view("bob"));
  // Under /api/ every route authenticates, whatever it was registered as.
  routes.add(method::get, "/api/v1/mislabelled", health, todo::access::ops);
  CHECK(get("/api/v1/mislabelled").status == 401);
}
