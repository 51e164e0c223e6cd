#pragma once
// The service's error codes and the one table that maps each to an HTTP
// status and an RFC 9457 problem type.
#include <boost/system/error_code.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace todo {

enum class errc {
  bad_request = 1,        // 400: not JSON, too deep, bad query parameter
  unauthorized,           // 401
  not_found,              // 404
  method_not_allowed,     // 405
  conflict,               // 409: idempotency key reused with another body
  precondition_failed,    // 412: If-Match mismatch
  payload_too_large,      // 413
  unsupported_media_type, // 415
  validation,             // 422
  rate_limited,           // 429
  unavailable,            // 503: a dependency is down or saturated
  internal,               // 500: a bug
};

const boost::system::error_category& category() noexcept;
boost::system::error_code make_error_code(errc e) noexcept;

struct problem_kind {
  unsigned status;
  std::string_view slug;  // the last segment of the problem type URI
  std::string_view title;
};

const problem_kind& describe(errc e) noexcept;

// One broken field of a request body (422) or query (400).
struct field_error {
  std::string field;
  std::string message;
};
using field_errors = std::vector<field_error>;

}  // namespace todo

template <>
struct boost::system::is_error_code_enum<todo::errc> : std::true_type {};
