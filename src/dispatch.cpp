#include "todo/dispatch.hpp"

#include "todo/jwt.hpp"
#include "todo/log.hpp"
#include "todo/metrics.hpp"
#include "todo/problem.hpp"
#include "todo/rate_limit.hpp"
#include "todo/uuid.hpp"

#include <chrono>
#include <exception>

namespace todo {
namespace {

bool acceptable_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) {
    return false;
  }
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.' || c == ':';
    if (!ok) {
      return false;
    }
  }
  return true;
}



std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

dispatcher::dispatcher(const router& r, const jwt::verifier& v, metrics::registry& m,
                       const std::atomic<bool>* api_ready, std::function<std::int64_t()> clock)
    : router_(r),
      verifier_(v),
      metrics_(m),
      api_ready_(api_ready),
      rate_user_rejections_(metrics::rejections(m, "rate_user")),
      rate_ip_rejections_(metrics::rejections(m, "rate_ip")),
      clock_(std::move(clock)) {
  if (!clock_) {
    clock_ = [] {
      return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
}

std::variant<std::string, http::response> dispatcher::authenticate(std::string_view token) const {
  auto claims = verifier_.verify(token, clock_());
  if (!claims) {
    return token_refused(claims.error());
  }
  return std::move(claims->sub);
}

std::optional<http::response> dispatcher::limit_address(const http::request& req) const {
  if (address_limiter_ == nullptr || !address_limiter_->enabled() ||
      (loopback_exempt_ && is_loopback(req.remote_address))) {
    return std::nullopt;
  }
  auto wait = address_limiter_->admit(address_key(req.remote_address), steady_ms());
  if (!wait) {
    return std::nullopt;
  }
  rate_ip_rejections_.inc();
  auto r = problem(errc::rate_limited, "Too many requests from this address; slow down");
  r.set("retry-after", std::to_string(*wait));
  return r;
}

std::optional<http::response> dispatcher::screen(const http::request& req, const router::match& m,
                                                 std::string& user) const {
  // Before authentication: a flood of bad tokens costs no signature checks.
  if (auto refused = limit_address(req)) {
    return refused;
  }
  // Everything under /api/ authenticates before routing answers, so that
  // unknown routes do not reveal which paths exist to anonymous callers; a
  // user route elsewhere authenticates too, so its access flag holds.
  bool needs_user = req.path.starts_with("/api/") || (m.r != nullptr && m.r->acc == access::user);
  if (needs_user) {
    auto token = http::bearer_token(req);
    if (!token) {
      return problem(errc::unauthorized, "Send Authorization: Bearer <token>");
    }
    auto who = authenticate(*token);
    if (auto* denied = std::get_if<http::response>(&who)) {
      return std::move(*denied);
    }
    user = std::move(std::get<std::string>(who));
    if (limiter_ != nullptr) {
      if (auto wait = limiter_->admit(user, steady_ms())) {
        rate_user_rejections_.inc();
        auto r = problem(errc::rate_limited, "Too many requests for this user; slow down");
        r.set("retry-after", std::to_string(*wait));
        return r;
      }
    }
    if (api_ready_ != nullptr && !api_ready_->load()) {
      return problem(errc::unavailable, "The server is starting; try again shortly");
    }
  }
  if (m.r == nullptr && m.allow.empty()) {
    return problem(errc::not_found, "No such route");
  }
  if (m.r == nullptr) {
    auto r = problem(errc::method_not_allowed, "This route does not accept " + std::string(to_string(req.verb)));
    r.set("allow", m.allow);
    return r;
  }
  return std::nullopt;
}

boost::asio::awaitable<http::response> dispatcher::handle(http::request req) {
  auto started = std::chrono::steady_clock::now();
  std::string request_id;
  if (auto id = req.header_value("x-request-id"); id && acceptable_request_id(*id)) {
    request_id = std::string(*id);
  } else {
    request_id = uuid::v7();
  }
  auto verb = req.verb;
  std::string route_name = "unmatched";
  std::string user;

  auto m = router_.find(verb, req.path);
  http::response res;
  if (auto refused = screen(req, m, user)) {
    res = std::move(*refused);
  } else {
    route_name = m.r->pattern;
    request_context ctx;
    ctx.request_id = request_id;
    ctx.user = user;
    ctx.params = std::move(m.params);
    ctx.req = std::move(req);
    try {
      res = co_await m.r->h(std::move(ctx));
    } catch (const std::exception& e) {
      log::error("http", "handler failed",
                 {{"request_id", std::string_view(request_id)}, {"route", route_name}, {"error", e.what()}});
      res = problem(errc::internal, "The server failed to handle the request");
    }
  }
  res.set("x-request-id", request_id);

  auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::string labels = metrics::label("route", route_name) + "," + metrics::label("method", to_string(verb));
  metrics_.get_counter("todo_http_requests_total", "HTTP requests by route, method and status",
                       labels + "," + metrics::label("status", std::to_string(res.status)))
      .inc();
  metrics_.get_histogram("todo_http_request_duration_seconds", "HTTP request latency by route and method", labels)
      .observe(elapsed);
  auto level = res.status >= 500 ? log::level::error : log::level::info;
  if (log::enabled(level)) {
    log::write(level, "http", "request",
               {{"request_id", std::string_view(request_id)},
                {"method", to_string(verb)},
                {"route", route_name},
                {"status", res.status},
                {"duration_ms", elapsed * 1000.0},
                {"user_id", std::string_view(user)}});
  }
  co_return res;
}

}  // namespace todo
