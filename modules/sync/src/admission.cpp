#include "admission.hpp"

namespace todo::sync {
namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}
}  // namespace

std::optional<presented_token> find_token(const http::request& req) {
  if (auto h = req.header_value("authorization"); h && h->size() > 7) {
    std::string scheme(h->substr(0, 7));
    for (auto& c : scheme) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (scheme == "bearer ") {
      return presented_token{std::string(trim(h->substr(7))), {}};
    }
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
      auto item = trim(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      if (item.starts_with("bearer.") && item.size() > 7) {
        return presented_token{std::string(item.substr(7)), std::string(item)};
      }
    }
  }
  return std::nullopt;
}

}  // namespace todo::sync
