#include "http_beast.hpp"

#include <cctype>

namespace todo {

namespace bhttp = boost::beast::http;

http::method to_method(bhttp::verb v) {
  switch (v) {
    case bhttp::verb::get: return http::method::get;
    case bhttp::verb::head: return http::method::head;
    case bhttp::verb::post: return http::method::post;
    case bhttp::verb::put: return http::method::put;
    case bhttp::verb::patch: return http::method::patch;
    case bhttp::verb::delete_: return http::method::delete_;
    case bhttp::verb::options: return http::method::options;
    default: return http::method::other;
  }
}

http::request to_plain(bhttp::request<bhttp::string_body>&& in, const std::string& remote) {
  http::request out;
  out.verb = to_method(in.method());
  std::string_view target = in.target();
  auto q = target.find('?');
  out.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) {
    out.query = std::string(target.substr(q + 1));
  }
  out.headers.reserve(8);
  for (const auto& f : in) {
    std::string name(f.name_string());
    for (auto& c : name) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    out.headers.push_back({std::move(name), std::string(f.value())});
  }
  out.body = std::move(in.body());
  out.remote_address = remote;
  return out;
}

}  // namespace todo
