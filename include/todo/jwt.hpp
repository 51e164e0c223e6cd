#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

namespace todo::jwt {

enum class errc {
  malformed = 1,
  unsupported_algorithm,
  no_key_for_algorithm,
  bad_signature,
  missing_exp,
  expired,
  not_yet_valid,
  bad_subject,
};

const boost::system::error_category& category() noexcept;
boost::system::error_code make_error_code(errc e) noexcept;

struct claims {
  std::string sub;
  std::int64_t exp = 0;
};

// An empty member means that algorithm is not accepted.
struct keys {
  std::string hs256_secret;
  std::string rs256_public_key_pem;
};

class verifier {
 public:
  // Throws std::runtime_error if the PEM is non-empty but not an RSA public key. Startup only.
  explicit verifier(keys k);
  ~verifier();
  verifier(verifier&&) noexcept;
  verifier& operator=(verifier&&) noexcept;

  // Thread-safe. now_unix is seconds since the epoch; exp and nbf get 60 s leeway.
  boost::system::result<claims> verify(std::string_view token, std::int64_t now_unix) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// HS256 token with sub, iat=now, exp=now+ttl_seconds. Used by `todo-server token`.
// Throws std::invalid_argument if secret is empty or sub is not 1..128 bytes,
// since verify() would reject such a token anyway.
std::string sign_hs256(std::string_view secret, std::string_view sub, std::int64_t ttl_seconds,
                       std::int64_t now_unix);

}  // namespace todo::jwt

template <>
struct boost::system::is_error_code_enum<todo::jwt::errc> : std::true_type {};
