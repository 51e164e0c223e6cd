#pragma once
// Small cryptographic helpers over OpenSSL: base64url, HMAC-SHA256, SHA-256
// and a constant-time comparison. Pure.
#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace todo::crypto {

using digest = std::array<unsigned char, 32>;

std::string b64url_encode(std::string_view in);
// RFC 4648 section 4 base64, padded (webhook signatures).
std::string b64_encode(std::string_view in);
// Strict RFC 7515 base64url: no padding, no whitespace, and unused trailing
// bits must be zero, so every byte string has exactly one accepted encoding.
std::optional<std::string> b64url_decode(std::string_view in);

// nullopt only if OpenSSL fails (a key over INT_MAX bytes).
std::optional<digest> hmac_sha256(std::string_view key, std::string_view data);
digest sha256(std::string_view data);

// The comparison for every secret or MAC a caller presents (API tokens,
// cursor MACs): no early exit, so timing reveals neither where a forged value
// first differs nor the length of the expected one.
bool equal(std::string_view a, std::string_view b);

inline std::string_view as_chars(const digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

}  // namespace todo::crypto
