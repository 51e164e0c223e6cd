#pragma once
// Everything between the wire and a handler that does not depend on the
// wire: request ids, routing, authentication, errors, metrics, access logs.
#include "todo/http.hpp"
#include "todo/router.hpp"

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <functional>
#include <optional>
#include <variant>

namespace todo::jwt {
class verifier;
}
namespace todo::metrics {
class registry;
class counter;
}

namespace todo {

class rate_limiter;

class dispatcher {
 public:
  // `clock` gives Unix seconds; tests inject one.
  // `api_ready` (may be null) gates /api/ routes: 503 while it is false.
  dispatcher(const router& r, const jwt::verifier& v, metrics::registry& m, const std::atomic<bool>* api_ready = nullptr,
             std::function<std::int64_t()> clock = {});

  // Authenticated requests beyond the user's rate answer 429 (optional).
  void limit_users(rate_limiter* l) { limiter_ = l; }
  // Every request beyond its client address's rate answers 429, before
  // authentication (optional). Loopback clients pass when `loopback_exempt`.
  void limit_addresses(rate_limiter* l, bool loopback_exempt) {
    address_limiter_ = l;
    loopback_exempt_ = loopback_exempt;
  }
  // The 429 to answer when `req`'s address is over its rate; the server asks
  // this for WebSocket upgrades too, which do not pass through handle().
  std::optional<http::response> limit_address(const http::request& req) const;

  // Never throws: a handler's exception becomes a logged 500.
  boost::asio::awaitable<http::response> handle(http::request req);

  // The JWT subject of a bearer token, or the 401 problem to answer.
  std::variant<std::string, http::response> authenticate(std::string_view token) const;

 private:
  // The answer when the handler must not run (401, 429, 503, 404, 405).
  std::optional<http::response> screen(const http::request& req, const router::match& m, std::string& user) const;

  const router& router_;
  const jwt::verifier& verifier_;
  metrics::registry& metrics_;
  const std::atomic<bool>* api_ready_;
  metrics::counter& rate_user_rejections_;
  metrics::counter& rate_ip_rejections_;
  rate_limiter* limiter_ = nullptr;
  rate_limiter* address_limiter_ = nullptr;
  bool loopback_exempt_ = true;
  std::function<std::int64_t()> clock_;
};

}  // namespace todo
