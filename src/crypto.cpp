#include "todo/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <climits>
#include <cstdint>

namespace todo::crypto {
namespace {

constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

}  // namespace

std::string b64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(alphabet[(acc >> bits) & 0x3F]);
    }
  }
  if (bits > 0) {
    out.push_back(alphabet[(acc << (6 - bits)) & 0x3F]);
  }
  return out;
}

std::string b64_encode(std::string_view in) {
  auto out = b64url_encode(in);
  for (auto& c : out) {
    c = c == '-' ? '+' : (c == '_' ? '/' : c);
  }
  out.append((4 - out.size() % 4) % 4, '=');
  return out;
}

std::optional<std::string> b64url_decode(std::string_view in) {
  if (in.size() % 4 == 1) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : in) {
    const auto value = alphabet.find(c);
    if (value == std::string_view::npos) {
      return std::nullopt;
    }
    acc = (acc << 6) | static_cast<std::uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if ((acc & ((1U << bits) - 1)) != 0) {
    return std::nullopt;
  }
  return out;
}

std::optional<digest> hmac_sha256(std::string_view key, std::string_view data) {
  digest mac{};
  unsigned int len = 0;
  if (key.size() > INT_MAX ||
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
           data.size(), mac.data(), &len) == nullptr ||
      len != mac.size()) {
    ERR_clear_error();
    return std::nullopt;
  }
  return mac;
}

digest sha256(std::string_view data) {
  digest d{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d.data());
  return d;
}

bool equal(std::string_view a, std::string_view b) {
  // Compared as digests, so CRYPTO_memcmp always sees 32 bytes: the time
  // depends on neither where the values differ nor how long the expected
  // one is. The size check settles the (theoretical) digest collision.
  const auto da = sha256(a);
  const auto db = sha256(b);
  const bool same = CRYPTO_memcmp(da.data(), db.data(), da.size()) == 0;
  return same && a.size() == b.size();
}

}  // namespace todo::crypto
