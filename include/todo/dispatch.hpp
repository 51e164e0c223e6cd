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
  rate_limiter* limiter_ = nullptr;
  std::function<std::int64_t()> clock_;
};

}  // namespace todo
