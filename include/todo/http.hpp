#pragma once
// Plain request and response types. The Beast session converts to and from
// these, so handlers and their tests never see Beast.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace todo::http {

enum class method { get, head, post, put, patch, delete_, options, other };

std::string_view to_string(method m) noexcept;

struct header {
  std::string name;  // lower-case
  std::string value;
};

struct request {
  method verb = method::get;
  std::string path;   // percent-decoding is left to whoever reads a segment
  std::string query;  // raw, without '?'
  std::vector<header> headers;
  std::string body;
  std::string remote_address;

  // First value of a header; the name must be lower-case.
  std::optional<std::string_view> header_value(std::string_view name) const;
};

struct response {
  unsigned status = 200;
  std::string content_type;  // empty for no body
  std::vector<header> headers;
  std::string body;

  response& set(std::string name, std::string value);
  std::optional<std::string_view> header_value(std::string_view name) const;
};

response json(unsigned status, std::string body);
response no_content(unsigned status = 204);

// Without leading and trailing spaces and tabs (RFC 9110 "OWS").
std::string_view trim_ows(std::string_view s);
// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
std::optional<std::string_view> bearer_token(const request& req);

// Query string handling: application/x-www-form-urlencoded pairs, decoded.
// Returns nullopt when a percent escape is malformed.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view q);
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);

}  // namespace todo::http
