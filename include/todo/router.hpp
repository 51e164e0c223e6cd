#pragma once
// The route table: (method, path pattern) → handler. Patterns use `{name}`
// for one path segment. A path that matches with another method is a 405
// with Allow; one that matches nothing is a 404.
#include "todo/http.hpp"

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace todo {

struct request_context {
  http::request req;
  std::vector<std::pair<std::string, std::string>> params;  // decoded path segments
  std::string user;                                         // JWT subject on authenticated routes
  std::string request_id;

  std::string_view param(std::string_view name) const;
};

using handler = std::function<boost::asio::awaitable<http::response>(request_context)>;

// Who may call a route. Only `user` routes authenticate (a JWT, whose subject
// scopes every read and write); the others never see user data by design.
enum class access {
  public_,  // anyone
  user,     // a bearer token; the handler sees only its subject's data
  ops,      // probes and scrapers (/health, /ready, /metrics): no user data
  sidecar,  // the Dapr sidecar (/job/*): APP_API_TOKEN, checked by the handler
};
std::string_view to_string(access a);

class router {
 public:
  struct route {
    http::method verb;
    std::string pattern;
    std::vector<std::string> segments;
    handler h;
    access acc;
  };
  struct match {
    const route* r = nullptr;
    std::vector<std::pair<std::string, std::string>> params;
    std::string allow;  // set when the path exists with other methods
  };

  void add(http::method m, std::string_view pattern, handler h, access a = access::user);
  match find(http::method m, std::string_view path) const;
  const std::vector<route>& routes() const { return routes_; }

 private:
  std::vector<route> routes_;
};

}  // namespace todo
