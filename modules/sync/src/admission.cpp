#include "admission.hpp"

namespace todo::sync {

std::optional<presented_token> find_token(const http::request& req) {
  if (auto t = http::bearer_token(req)) {
    return presented_token{std::string(*t), {}};
  }
  if (auto q = http::parse_query(req.query)) {
    for (const auto& [k, v] : *q) {
      if (k == "access_token" && !v.empty()) {
        return presented_token{v, {}};
      }
    }
  }
  if (auto h = req.header_value("sec-websocket-protocol")) {
    std::string_view rest = *h;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      auto item = http::trim_ows(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      if (item.starts_with("bearer.") && item.size() > 7) {
        return presented_token{std::string(item.substr(7)), std::string(item)};
      }
    }
  }
  return std::nullopt;
}

}  // namespace todo::sync
