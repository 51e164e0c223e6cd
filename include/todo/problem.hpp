#pragma once
// RFC 9457 problem details: every 4xx/5xx answer is built here.
#include "todo/errors.hpp"
#include "todo/http.hpp"

#include <boost/system/error_code.hpp>

namespace todo {

http::response problem(errc e, std::string_view detail, const field_errors& fields = {});
// 422 with "N fields are invalid" and every broken field listed.
http::response validation_problem(const field_errors& fields);
// 401 for a token the verifier refused, saying why, with the RFC 6750
// invalid_token challenge.
http::response token_refused(const boost::system::error_code& ec);
// For a failure from a dependency (database): 503 with Retry-After, or 500.
http::response problem_from(const boost::system::error_code& ec);

}  // namespace todo
