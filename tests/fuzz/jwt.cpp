// JWT verification (HS256 and RS256). The first byte picks the mode:
//   0: the rest is a token, verified as it came;
//   1: the rest is "HEADER\nPAYLOAD" JSON, signed with the HS256 secret, so
//      the claims checks behind the signature are reached;
//   2: the rest is a subject: a token from sign_hs256 verifies to it, and
//      the same token with any one byte changed does not verify.
// Any accepted token has a subject of 1..128 bytes and has not expired.
#include "check.hpp"
#include "todo/crypto.hpp"
#include "todo/jwt.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

using namespace todo;

constexpr std::string_view secret = "fuzz-secret-0123456789abcdef";
constexpr std::int64_t now = 1'772'470'800;

std::string rsa_public_pem() {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  FUZZ_CHECK(key != nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  FUZZ_CHECK(PEM_write_bio_PUBKEY(bio, key) == 1);
  char* p = nullptr;
  long n = BIO_get_mem_data(bio, &p);
  std::string pem(p, static_cast<std::size_t>(n));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pem;
}

void check_claims(const boost::system::result<jwt::claims>& c) {
  if (c) {
    FUZZ_CHECK(!c->sub.empty() && c->sub.size() <= 128);
    FUZZ_CHECK(now - 60 <= c->exp);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const jwt::verifier v(jwt::keys{std::string(secret), rsa_public_pem()});
  if (size == 0) {
    return 0;
  }
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      check_claims(v.verify(in, now));
      break;
    }
    case 1: {
      auto nl = in.find('\n');
      if (nl == std::string_view::npos) {
        return 0;
      }
      std::string token = crypto::b64url_encode(in.substr(0, nl)) + "." + crypto::b64url_encode(in.substr(nl + 1));
      auto mac = crypto::hmac_sha256(secret, token);
      FUZZ_CHECK(mac.has_value());
      token += "." + crypto::b64url_encode(crypto::as_chars(*mac));
      check_claims(v.verify(token, now));
      break;
    }
    default: {
      if (in.empty()) {
        return 0;
      }
      auto flip_at = static_cast<unsigned char>(in[0]);
      auto sub = in.substr(1);
      std::string token;
      try {
        token = jwt::sign_hs256(secret, sub, 3600, now);
      } catch (const std::invalid_argument&) {
        FUZZ_CHECK(sub.empty() || sub.size() > 128 || !simdjson::validate_utf8(sub.data(), sub.size()));
        return 0;
      }
      auto ok = v.verify(token, now);
      FUZZ_CHECK(ok && ok->sub == sub && ok->exp == now + 3600);
      std::string forged = token;
      auto& c = forged[flip_at % forged.size()];
      c = static_cast<char>(c ^ (1 + flip_at / 64));
      FUZZ_CHECK(!v.verify(forged, now));
      break;
    }
  }
  return 0;
}
