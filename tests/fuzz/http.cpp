// Raw bytes through the server's request path without a socket or a
// database: Beast's parser with the session's limits, the conversion to the
// plain request, then the dispatcher (request ids, authentication, routing,
// problem answers) over the server's route table, whose handlers here only
// report what reached them. Pipelined requests are taken one after another.
//
// Every answer carries a request id; anything under /api/ without a valid
// token is a 401; a handler runs only for a route that matches, with its
// decoded parameters, and only with a valid token unless the route is
// public; a 405 lists what is allowed; every error is a problem document
// naming its own status.
#include "check.hpp"
#include "http_beast.hpp"
#include "todo/config.hpp"
#include "todo/dispatch.hpp"
#include "todo/http_server.hpp"
#include "todo/json_parse.hpp"
#include "todo/jwt.hpp"
#include "todo/log.hpp"
#include "todo/metrics.hpp"
#include "todo/rate_limit.hpp"
#include "todo/router.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/parser.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

namespace {

using namespace todo;
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

// The secret and clock the seed corpus's tokens were made with.
constexpr std::string_view secret = "fuzz-http-secret";
constexpr std::int64_t now = 1'772'470'800;

// Every handler: what reached it must be a matched route's parameters.
asio::awaitable<http::response> reached(request_context c) {
  for (const auto& [name, value] : c.params) {
    FUZZ_CHECK(!name.empty() && !value.empty());
  }
  co_return http::json(200, "{}");
}

struct world {
  router routes;
  jwt::verifier verifier{jwt::keys{std::string(secret), {}}};
  metrics::registry metrics;
  std::atomic<bool> ready{true};
  rate_limiter limiter{1e9, 1e9};
  std::unique_ptr<dispatcher> dispatch;

  world() {
    log::set_level(log::level::error);
    struct entry {
      http::method m;
      std::string_view pattern;
      todo::access a;
    };
    using http::method;
    // The server's routes (ops_routes.cpp and each module's routes.cpp).
    for (auto e : {entry{method::get, "/health", todo::access::public_}, entry{method::get, "/ready", todo::access::public_},
                   entry{method::get, "/metrics", todo::access::public_}, entry{method::get, "/api/v1/activity", todo::access::user},
                   entry{method::get, "/api/v1/events", todo::access::user}, entry{method::post, "/api/v1/tasks", todo::access::user},
                   entry{method::get, "/api/v1/tasks", todo::access::user}, entry{method::get, "/api/v1/tasks/{id}", todo::access::user},
                   entry{method::patch, "/api/v1/tasks/{id}", todo::access::user},
                   entry{method::delete_, "/api/v1/tasks/{id}", todo::access::user},
                   entry{method::post, "/api/v1/tasks/{id}/complete", todo::access::user},
                   entry{method::post, "/api/v1/tasks/{id}/reopen", todo::access::user},
                   entry{method::get, "/api/v1/tags", todo::access::user}, entry{method::get, "/api/v1/settings", todo::access::user},
                   entry{method::patch, "/api/v1/settings", todo::access::user},
                   entry{method::get, "/api/v1/ws", todo::access::user}}) {
      routes.add(e.m, e.pattern, reached, e.a);
    }
    dispatch = std::make_unique<dispatcher>(routes, verifier, metrics, &ready, [] { return now; });
    dispatch->limit_users(&limiter);
  }
};

void check_answer(const world& w, const http::request& req, const http::response& res) {
  FUZZ_CHECK(res.status >= 200 && res.status <= 599);
  FUZZ_CHECK(res.header_value("x-request-id").has_value());
  auto token = http::bearer_token(req);
  bool valid = token && w.verifier.verify(*token, now);
  auto m = w.routes.find(req.verb, req.path);
  if (req.path.starts_with("/api/") && !valid) {
    FUZZ_CHECK(res.status == 401);
  }
  if (res.status == 200) {
    FUZZ_CHECK(m.r != nullptr && (valid || m.r->acc == todo::access::public_));
  }
  if (res.status == 405) {
    FUZZ_CHECK(m.r == nullptr && !m.allow.empty() && res.header_value("allow") == m.allow);
  }
  if (res.status >= 400) {
    FUZZ_CHECK(res.content_type == "application/problem+json");
    auto parsed = json::parse_body(res.body);
    std::int64_t status = 0;
    FUZZ_CHECK(parsed.error.empty() && parsed.root["status"].get(status) == simdjson::SUCCESS);
    FUZZ_CHECK(status == static_cast<std::int64_t>(res.status));
  }
}

// One request from the front of `rest`, as the session reads it; nullopt
// when the bytes are not one whole request.
std::optional<bhttp::request<bhttp::string_body>> read_one(std::string_view& rest) {
  // The session's limits, at their defaults.
  const todo::http_config limits;
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
  parser.body_limit(limits.max_body_bytes);
  parser.eager(true);
  boost::system::error_code ec;
  while (!parser.is_done()) {
    auto n = rest.empty() ? 0 : parser.put(asio::buffer(rest.data(), rest.size()), ec);
    rest.remove_prefix(n);
    if (ec && ec != bhttp::error::need_more) {
      return std::nullopt;
    }
    // Beast wants more bytes than it was offered, and everything was: as in
    // the session's read, the client closed here. (Offering the same bytes
    // again breaks the parser's preconditions.)
    if (ec == bhttp::error::need_more || n == 0) {
      ec = {};
      parser.put_eof(ec);
      if (ec || !parser.is_done()) {
        return std::nullopt;
      }
    }
  }
  return parser.release();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static world w;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  for (int i = 0; i < 8 && !rest.empty(); ++i) {
    auto msg = read_one(rest);
    if (!msg) {
      break;
    }
    auto req = to_plain(std::move(*msg), "127.0.0.1");
    FUZZ_CHECK(req.path.find('?') == std::string::npos);
    for (const auto& h : req.headers) {
      for (char c : h.name) {
        FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
      }
    }
    asio::io_context io;
    std::optional<http::response> res;
    asio::co_spawn(io, w.dispatch->handle(req), [&res](std::exception_ptr e, http::response r) {
      FUZZ_CHECK(!e);
      res = std::move(r);
    });
    io.run();
    FUZZ_CHECK(res.has_value());
    check_answer(w, req, *res);
  }
  return 0;
}
