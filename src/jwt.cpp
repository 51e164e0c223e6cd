#include "todo/jwt.hpp"

#include "todo/crypto.hpp"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <simdjson.h>

#include <array>
#include <climits>
#include <cmath>
#include <cstdio>
#include <optional>
#include <stdexcept>

namespace todo::jwt {
namespace {

constexpr std::int64_t leeway_seconds = 60;
constexpr std::size_t max_subject_bytes = 128;

template <auto free_fn>
struct ossl_deleter {
  template <typename T>
  void operator()(T* p) const noexcept { free_fn(p); }
};
using bio_ptr = std::unique_ptr<BIO, ossl_deleter<BIO_free>>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, ossl_deleter<EVP_PKEY_free>>;
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, ossl_deleter<EVP_MD_CTX_free>>;

class jwt_category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "todo.jwt"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::malformed: return "malformed token";
      case errc::unsupported_algorithm: return "unsupported algorithm";
      case errc::no_key_for_algorithm: return "no key configured for algorithm";
      case errc::bad_signature: return "bad signature";
      case errc::missing_exp: return "missing exp claim";
      case errc::expired: return "token expired";
      case errc::not_yet_valid: return "token not yet valid";
      case errc::bad_subject: return "missing or invalid sub claim";
    }
    return "unknown jwt error";
  }
};

using crypto::b64url_decode;
using crypto::b64url_encode;
using crypto::hmac_sha256;

bool rs256_verify(EVP_PKEY* key, std::string_view data, std::string_view sig) {
  md_ctx_ptr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  const bool ok =
      ctx && EVP_DigestVerifyInit(ctx.get(), &pctx, EVP_sha256(), nullptr, key) == 1 &&
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0 &&
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  // A failed verify leaves entries on this thread's error queue; don't let them leak into
  // unrelated TLS code running on the same thread.
  ERR_clear_error();
  return ok;
}

// JSON numbers only. Rounding floats (floor for exp, ceil for nbf) keeps comparisons against
// an integer `now` exactly as they would be with the fractional value.
std::optional<std::int64_t> numeric_seconds(simdjson::dom::element e, bool round_up) {
  using simdjson::dom::element_type;
  if (e.type() == element_type::INT64) {
    return e.get_int64().value_unsafe();
  }
  if (e.type() == element_type::UINT64) {
    return INT64_MAX;  // simdjson only uses uint64 above INT64_MAX
  }
  if (e.type() != element_type::DOUBLE) {
    return std::nullopt;
  }
  const double raw = e.get_double().value_unsafe();
  const double d = round_up ? std::ceil(raw) : std::floor(raw);
  return d >= 0x1p63 ? INT64_MAX : d < -0x1p63 ? INT64_MIN : static_cast<std::int64_t>(d);
}

simdjson::dom::parser& json_parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

}  // namespace

const boost::system::error_category& category() noexcept {
  static const jwt_category instance;
  return instance;
}

boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), category()};
}

struct verifier::impl {
  std::string hs256_secret_;
  pkey_ptr rs256_key_;
};

verifier::verifier(keys k) : impl_(std::make_unique<impl>()) {
  impl_->hs256_secret_ = std::move(k.hs256_secret);
  const std::string& pem = k.rs256_public_key_pem;
  if (pem.empty()) {
    return;
  }
  bio_ptr bio(pem.size() <= INT_MAX ? BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))
                                     : nullptr);
  if (!bio) {
    throw std::runtime_error("jwt: cannot read RS256 public key PEM");
  }
  pkey_ptr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!key) {
    throw std::runtime_error(
        "jwt: RS256 key is not a PEM public key (expected '-----BEGIN PUBLIC KEY-----')");
  }
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) {
    throw std::runtime_error("jwt: RS256 public key is not an RSA key");
  }
  impl_->rs256_key_ = std::move(key);
}

verifier::~verifier() = default;
verifier::verifier(verifier&&) noexcept = default;
verifier& verifier::operator=(verifier&&) noexcept = default;

boost::system::result<claims> verifier::verify(std::string_view token,
                                               std::int64_t now_unix) const {
  const auto dot1 = token.find('.');
  const auto dot2 = token.rfind('.');
  if (dot1 == std::string_view::npos || token.find('.', dot1 + 1) != dot2) {
    return errc::malformed;
  }
  const auto header_json = b64url_decode(token.substr(0, dot1));
  const auto payload_json = b64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  const auto signature = b64url_decode(token.substr(dot2 + 1));
  if (!header_json || !payload_json || !signature) {
    return errc::malformed;
  }

  auto& parser = json_parser();
  simdjson::dom::object header;
  if (parser.parse(*header_json).get(header) != simdjson::SUCCESS) {
    return errc::malformed;
  }
  std::string_view alg;
  if (header["alg"].get(alg) != simdjson::SUCCESS || (alg != "HS256" && alg != "RS256")) {
    return errc::unsupported_algorithm;
  }
  // RFC 7515 4.1.11: we implement no extensions, so any "crit" must be rejected.
  if (header["crit"].error() != simdjson::NO_SUCH_FIELD) {
    return errc::malformed;
  }

  // The key comes only from the slot matching alg, so an RSA public key can never be used
  // as an HMAC secret.
  const std::string_view signing_input = token.substr(0, dot2);
  if (alg == "HS256") {
    if (!impl_ || impl_->hs256_secret_.empty()) {
      return errc::no_key_for_algorithm;
    }
    const auto mac = hmac_sha256(impl_->hs256_secret_, signing_input);
    if (!mac || signature->size() != mac->size() ||
        CRYPTO_memcmp(mac->data(), signature->data(), mac->size()) != 0) {
      return errc::bad_signature;
    }
  } else {
    if (!impl_ || !impl_->rs256_key_) {
      return errc::no_key_for_algorithm;
    }
    if (!rs256_verify(impl_->rs256_key_.get(), signing_input, *signature)) {
      return errc::bad_signature;
    }
  }

  // Reparsing invalidates `header` and `alg`; neither is used past this point.
  simdjson::dom::object payload;
  if (parser.parse(*payload_json).get(payload) != simdjson::SUCCESS) {
    return errc::malformed;
  }
  simdjson::dom::element exp_el;
  if (payload["exp"].get(exp_el) != simdjson::SUCCESS) {
    return errc::missing_exp;
  }
  const auto exp = numeric_seconds(exp_el, false);
  if (!exp) {
    return errc::malformed;
  }
  if (now_unix - leeway_seconds > *exp) {
    return errc::expired;
  }
  simdjson::dom::element nbf_el;
  if (payload["nbf"].get(nbf_el) == simdjson::SUCCESS) {
    const auto nbf = numeric_seconds(nbf_el, true);
    if (!nbf) {
      return errc::malformed;
    }
    if (now_unix + leeway_seconds < *nbf) {
      return errc::not_yet_valid;
    }
  }
  std::string_view sub;
  if (payload["sub"].get(sub) != simdjson::SUCCESS || sub.empty() ||
      sub.size() > max_subject_bytes) {
    return errc::bad_subject;
  }
  return claims{std::string(sub), *exp};
}

std::string sign_hs256(std::string_view secret, std::string_view sub, std::int64_t ttl_seconds,
                       std::int64_t now_unix) {
  if (secret.empty()) {
    throw std::invalid_argument("jwt: HS256 secret must not be empty");
  }
  if (sub.empty() || sub.size() > max_subject_bytes ||
      !simdjson::validate_utf8(sub.data(), sub.size())) {
    throw std::invalid_argument("jwt: sub must be 1..128 bytes of UTF-8");
  }
  std::int64_t exp = 0;
  if (__builtin_add_overflow(now_unix, ttl_seconds, &exp)) {
    throw std::invalid_argument("jwt: exp overflows");
  }
  std::string payload = R"({"sub":")";
  for (const unsigned char c : sub) {
    if (c < 0x20 || c == '"' || c == '\\') {
      std::array<char, 7> escaped{};
      std::snprintf(escaped.data(), escaped.size(), "\\u%04x", c);
      payload += escaped.data();
    } else {
      payload += static_cast<char>(c);
    }
  }
  payload += R"(","iat":)" + std::to_string(now_unix) +
             R"(,"exp":)" + std::to_string(exp) + "}";
  std::string token =
      b64url_encode(R"({"alg":"HS256","typ":"JWT"})") + '.' + b64url_encode(payload);
  const auto mac = hmac_sha256(secret, token);
  if (!mac) {
    throw std::runtime_error("jwt: HMAC-SHA256 failed");
  }
  token += '.';
  token += b64url_encode(std::string_view(reinterpret_cast<const char*>(mac->data()), mac->size()));
  return token;
}

}  // namespace todo::jwt
