#include "todo/problem.hpp"

#include "todo/db.hpp"
#include "todo/json.hpp"
#include "todo/jwt.hpp"

namespace todo {
namespace {

std::string_view jwt_reason(const boost::system::error_code& ec) {
  switch (static_cast<jwt::errc>(ec.value())) {
    case jwt::errc::expired: return "The token has expired";
    case jwt::errc::not_yet_valid: return "The token is not valid yet";
    case jwt::errc::missing_exp: return "The token has no exp claim";
    case jwt::errc::bad_subject: return "The token's sub claim must be a string of 1 to 128 bytes";
    case jwt::errc::unsupported_algorithm: return "The token's algorithm is not accepted (HS256 or RS256)";
    case jwt::errc::no_key_for_algorithm: return "The token's algorithm is not configured on this server";
    default: return "The token is malformed or its signature is invalid";
  }
}

}  // namespace

http::response problem(errc e, std::string_view detail, const field_errors& fields) {
  const auto& k = describe(e);
  json::writer w;
  w.begin_object();
  w.key("type").value("https://todo.dev/problems/" + std::string(k.slug));
  w.key("title").value(k.title);
  w.key("status").value(static_cast<std::int64_t>(k.status));
  w.key("detail").value(detail);
  if (!fields.empty()) {
    w.key("errors").begin_array();
    for (const auto& f : fields) {
      w.begin_object().key("field").value(f.field).key("message").value(f.message).end_object();
    }
    w.end_array();
  }
  w.end_object();
  http::response r;
  r.status = k.status;
  r.content_type = "application/problem+json";
  r.body = w.take();
  if (e == errc::unavailable) {
    r.set("retry-after", "1");
  }
  if (e == errc::unauthorized) {
    r.set("www-authenticate", "Bearer");
  }
  return r;
}

http::response validation_problem(const field_errors& fields) {
  std::string detail = fields.size() == 1 ? "1 field is invalid" : std::to_string(fields.size()) + " fields are invalid";
  return problem(errc::validation, detail, fields);
}

http::response problem_from(const boost::system::error_code& ec) {
  if (ec.category() == db::category()) {
    switch (static_cast<db::errc>(ec.value())) {
      case db::errc::unavailable: return problem(errc::unavailable, "The database is unavailable; try again shortly");
      case db::errc::timeout: return problem(errc::unavailable, "The database is busy; try again shortly");
      case db::errc::serialization: return problem(errc::unavailable, "A concurrent change interfered; try again");
      default: break;
    }
  }
  if (ec.category() == category()) {
    return problem(static_cast<errc>(ec.value()), describe(static_cast<errc>(ec.value())).title);
  }
  return problem(errc::internal, "The server failed to handle the request");
}

http::response token_refused(const boost::system::error_code& ec) {
  auto r = problem(errc::unauthorized, jwt_reason(ec));
  r.headers.clear();
  r.set("www-authenticate", "Bearer error=\"invalid_token\"");
  return r;
}

}  // namespace todo
