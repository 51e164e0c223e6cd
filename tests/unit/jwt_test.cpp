#include "todo/jwt.hpp"

#include <catch2/catch.hpp>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <array>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using todo::jwt::errc;

constexpr std::int64_t now = 1'700'000'000;
const std::string secret = "correct horse battery staple";

struct pkey_deleter {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
struct bio_deleter {
  void operator()(BIO* p) const noexcept { BIO_free(p); }
};
struct md_ctx_deleter {
  void operator()(EVP_MD_CTX* p) const noexcept { EVP_MD_CTX_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;

std::string b64url(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  REQUIRE(n >= 0);
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') {
    out.pop_back();
  }
  for (char& c : out) {
    if (c == '+') {
      c = '-';
    } else if (c == '/') {
      c = '_';
    }
  }
  return out;
}

std::string hmac(std::string_view key, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int len = 0;
  REQUIRE(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
               reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(),
               &len) != nullptr);
  return {reinterpret_cast<const char*>(mac.data()), len};
}

std::string rsa_sign(EVP_PKEY* key, std::string_view data) {
  std::unique_ptr<EVP_MD_CTX, md_ctx_deleter> ctx(EVP_MD_CTX_new());
  REQUIRE(ctx);
  REQUIRE(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1);
  std::size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  REQUIRE(EVP_DigestSign(ctx.get(), nullptr, &len, in, data.size()) == 1);
  std::string sig(len, '\0');
  REQUIRE(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                         data.size()) == 1);
  sig.resize(len);
  return sig;
}

std::string public_pem(EVP_PKEY* key) {
  std::unique_ptr<BIO, bio_deleter> bio(BIO_new(BIO_s_mem()));
  REQUIRE(bio);
  REQUIRE(PEM_write_bio_PUBKEY(bio.get(), key) == 1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  REQUIRE(len > 0);
  return {data, static_cast<std::size_t>(len)};
}

// Key generation is slow, so each test binary makes just two RSA keys.
EVP_PKEY* rsa_key() {
  static const pkey_ptr key(EVP_RSA_gen(2048));
  REQUIRE(key);
  return key.get();
}
EVP_PKEY* other_rsa_key() {
  static const pkey_ptr key(EVP_RSA_gen(2048));
  REQUIRE(key);
  return key.get();
}

std::string payload_with(std::string_view sub_json, std::int64_t exp) {
  return R"({"sub":)" + std::string(sub_json) + R"(,"exp":)" + std::to_string(exp) + "}";
}

std::string make_hs256(std::string_view payload, std::string_view key = secret,
                       std::string_view header = R"({"alg":"HS256","typ":"JWT"})") {
  const std::string input = b64url(header) + '.' + b64url(payload);
  return input + '.' + b64url(hmac(key, input));
}

std::string make_rs256(std::string_view payload, EVP_PKEY* key) {
  const std::string input = b64url(R"({"alg":"RS256","typ":"JWT"})") + '.' + b64url(payload);
  return input + '.' + b64url(rsa_sign(key, input));
}

std::string make_rs256_with(std::string_view header, std::string_view payload, EVP_PKEY* key) {
  const std::string input = b64url(header) + '.' + b64url(payload);
  return input + '.' + b64url(rsa_sign(key, input));
}

std::string public_der(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  REQUIRE(len > 0);
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

std::string make_unsigned(std::string_view header, std::string_view payload,
                          std::string_view sig = "") {
  return b64url(header) + '.' + b64url(payload) + '.' + std::string(sig);
}

const std::string good_payload = payload_with(R"("alice")", now + 3600);

todo::jwt::verifier hs_verifier() { return todo::jwt::verifier({secret, ""}); }
todo::jwt::verifier rs_verifier(std::string pem) {
  return todo::jwt::verifier({"", std::move(pem)});
}

void require_error(const boost::system::result<todo::jwt::claims>& r, errc expected) {
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == todo::jwt::make_error_code(expected));
  CHECK(r.error() == expected);
}

}  // namespace

TEST_CASE("jwt: valid HS256 token is accepted", "[jwt]") {
  const auto v = hs_verifier();
  const auto r = v.verify(make_hs256(good_payload), now);
  REQUIRE(r.has_value());
  CHECK(r->sub == "alice");
  CHECK(r->exp == now + 3600);
}

TEST_CASE("jwt: exp honours 60 s leeway", "[jwt]") {
  const auto v = hs_verifier();
  const auto token = make_hs256(payload_with(R"("alice")", now - 60));
  CHECK(v.verify(token, now).has_value());
  require_error(v.verify(token, now + 1), errc::expired);
  require_error(v.verify(make_hs256(payload_with(R"("alice")", now - 3600)), now), errc::expired);
}

TEST_CASE("jwt: exp as a float is accepted", "[jwt]") {
  const auto v = hs_verifier();
  const auto token = make_hs256(R"({"sub":"alice","exp":1700000000.5})");
  const auto r = v.verify(token, now + 60);
  REQUIRE(r.has_value());
  CHECK(r->exp == now);
  require_error(v.verify(token, now + 61), errc::expired);
}

TEST_CASE("jwt: nbf honours 60 s leeway", "[jwt]") {
  const auto v = hs_verifier();
  const auto at = [](std::int64_t nbf) {
    return R"({"sub":"alice","exp":)" + std::to_string(now + 3600) +
           R"(,"nbf":)" + std::to_string(nbf) + "}";
  };
  CHECK(v.verify(make_hs256(at(now + 60)), now).has_value());
  CHECK(v.verify(make_hs256(at(now - 10)), now).has_value());
  require_error(v.verify(make_hs256(at(now + 61)), now), errc::not_yet_valid);
  require_error(v.verify(make_hs256(at(now + 3600)), now), errc::not_yet_valid);
  require_error(v.verify(make_hs256(R"({"sub":"alice","exp":1800000000,"nbf":1700000060.5})"), now),
                errc::not_yet_valid);
  CHECK(v.verify(make_hs256(R"({"sub":"alice","exp":1800000000,"nbf":1700000060.5})"), now + 1)
            .has_value());
  require_error(v.verify(make_hs256(R"({"sub":"alice","exp":1800000000,"nbf":"x"})"), now),
                errc::malformed);
}

TEST_CASE("jwt: wrong secret is rejected", "[jwt]") {
  const auto v = hs_verifier();
  require_error(v.verify(make_hs256(good_payload, "some other secret"), now), errc::bad_signature);
}

TEST_CASE("jwt: tampered payload or signature is rejected", "[jwt]") {
  const auto v = hs_verifier();
  const auto token = make_hs256(good_payload);
  const auto dot1 = token.find('.');
  const auto dot2 = token.rfind('.');
  const auto forged = token.substr(0, dot1 + 1) + b64url(payload_with(R"("mallory")", now + 3600)) +
                      token.substr(dot2);
  require_error(v.verify(forged, now), errc::bad_signature);

  // 40 characters decode cleanly to 30 bytes, so this is a short signature, not bad base64.
  auto truncated = token;
  truncated.resize(truncated.size() - 3);
  require_error(v.verify(truncated, now), errc::bad_signature);
  require_error(v.verify(token.substr(0, dot2 + 1), now), errc::bad_signature);

  // The right MAC followed by extra bytes must not match on a prefix.
  const auto input = token.substr(0, dot2);
  require_error(v.verify(input + '.' + b64url(hmac(secret, input) + "xyz"), now),
                errc::bad_signature);
}

TEST_CASE("jwt: alg none is rejected", "[jwt]") {
  const todo::jwt::verifier v({secret, public_pem(rsa_key())});
  require_error(v.verify(make_unsigned(R"({"alg":"none"})", good_payload), now),
                errc::unsupported_algorithm);
  require_error(v.verify(make_unsigned(R"({"alg":"None","typ":"JWT"})", good_payload), now),
                errc::unsupported_algorithm);
}

TEST_CASE("jwt: other or missing algorithms are rejected", "[jwt]") {
  const todo::jwt::verifier v({secret, public_pem(rsa_key())});
  for (const char* header :
       {R"({"alg":"HS384"})", R"({"alg":"HS512"})", R"({"alg":"RS512"})", R"({"alg":"PS256"})",
        R"({"alg":"ES256"})", R"({"alg":"hs256"})", R"({"alg":"HS256 "})", R"({"typ":"JWT"})",
        R"({"alg":null})", R"({"alg":256})", R"({})"}) {
    INFO(header);
    // Properly HMAC'd with the configured secret, so only the alg check can reject it.
    require_error(v.verify(make_hs256(good_payload, secret, header), now),
                  errc::unsupported_algorithm);
  }
}

TEST_CASE("jwt: crit header is rejected", "[jwt]") {
  const auto v = hs_verifier();
  require_error(
      v.verify(make_hs256(good_payload, secret, R"({"alg":"HS256","crit":["exp"]})"), now),
      errc::malformed);
}

TEST_CASE("jwt: valid RS256 token is accepted", "[jwt]") {
  const todo::jwt::verifier v({"", public_pem(rsa_key())});
  const auto r = v.verify(make_rs256(good_payload, rsa_key()), now);
  REQUIRE(r.has_value());
  CHECK(r->sub == "alice");
}

TEST_CASE("jwt: RS256 signed by another key is rejected", "[jwt]") {
  const todo::jwt::verifier v({secret, public_pem(rsa_key())});
  require_error(v.verify(make_rs256(good_payload, other_rsa_key()), now), errc::bad_signature);
}

TEST_CASE("jwt: algorithm confusion is impossible", "[jwt]") {
  const auto pem = public_pem(rsa_key());
  const auto forged = make_hs256(good_payload, pem);

  SECTION("only the RS256 key is configured") {
    const todo::jwt::verifier v({"", pem});
    require_error(v.verify(forged, now), errc::no_key_for_algorithm);
  }
  SECTION("both keys are configured") {
    const todo::jwt::verifier v({secret, pem});
    require_error(v.verify(forged, now), errc::bad_signature);
  }
  SECTION("an HMAC signature under an RS256 header") {
    const todo::jwt::verifier v({secret, pem});
    const auto header = R"({"alg":"RS256"})";
    require_error(v.verify(make_hs256(good_payload, pem, header), now), errc::bad_signature);
    require_error(v.verify(make_hs256(good_payload, secret, header), now), errc::bad_signature);
  }
  SECTION("RS256 token when only HS256 is configured") {
    const auto v = hs_verifier();
    require_error(v.verify(make_rs256(good_payload, rsa_key()), now), errc::no_key_for_algorithm);
  }
}

TEST_CASE("jwt: exp is required and numeric", "[jwt]") {
  const auto v = hs_verifier();
  require_error(v.verify(make_hs256(R"({"sub":"alice"})"), now), errc::missing_exp);
  require_error(v.verify(make_hs256(R"({"sub":"alice","exp":"1800000000"})"), now),
                errc::malformed);
  require_error(v.verify(make_hs256(R"({"sub":"alice","exp":true})"), now), errc::malformed);
}

TEST_CASE("jwt: sub must be a string of 1..128 bytes", "[jwt]") {
  const auto v = hs_verifier();
  const auto exp = std::to_string(now + 3600);
  require_error(v.verify(make_hs256(R"({"exp":)" + exp + "}"), now), errc::bad_subject);
  require_error(v.verify(make_hs256(payload_with(R"("")", now + 3600)), now), errc::bad_subject);
  require_error(v.verify(make_hs256(payload_with("42", now + 3600)), now), errc::bad_subject);
  require_error(v.verify(make_hs256(payload_with('"' + std::string(129, 'a') + '"', now + 3600)),
                         now),
                errc::bad_subject);
  const auto r =
      v.verify(make_hs256(payload_with('"' + std::string(128, 'a') + '"', now + 3600)), now);
  REQUIRE(r.has_value());
  CHECK(r->sub == std::string(128, 'a'));
}

TEST_CASE("jwt: malformed tokens are rejected", "[jwt]") {
  const auto v = hs_verifier();
  const auto token = make_hs256(good_payload);
  const auto header = token.substr(0, token.find('.'));

  require_error(v.verify("", now), errc::malformed);
  require_error(v.verify("..", now), errc::malformed);
  require_error(v.verify(token.substr(0, token.rfind('.')), now), errc::malformed);
  require_error(v.verify(token + ".", now), errc::malformed);
  require_error(v.verify(token + "." + header, now), errc::malformed);
  require_error(v.verify("*" + token, now), errc::malformed);
  require_error(v.verify(" " + token, now), errc::malformed);
  require_error(v.verify(token + "=", now), errc::malformed);
  require_error(v.verify(token + "==", now), errc::malformed);
  // Standard-alphabet characters are not base64url.
  require_error(v.verify(make_hs256(good_payload) + "+", now), errc::malformed);

  // A lone trailing character carries no whole byte, so it must not be silently dropped.
  REQUIRE(header.size() % 4 == 0);
  require_error(v.verify(std::string(token).insert(header.size(), "A"), now), errc::malformed);

  // Padded segments, even ones that would otherwise decode correctly.
  const std::string padded_header = b64url("{}") + "==";  // "e30" + padding
  require_error(v.verify(padded_header + "." + b64url(good_payload) + ".", now), errc::malformed);

  // "e31" decodes to "{}" only if nonzero trailing bits are ignored.
  require_error(v.verify(make_hs256(good_payload, secret, "{}").replace(0, 3, "e31"), now),
                errc::malformed);

  require_error(v.verify(make_hs256(good_payload, secret, "not json"), now), errc::malformed);
  require_error(v.verify(make_hs256(good_payload, secret, R"(["alg","HS256"])"), now),
                errc::malformed);
  require_error(v.verify(make_hs256(good_payload, secret, R"("HS256")"), now), errc::malformed);
  require_error(v.verify(make_hs256(good_payload, secret, R"({"alg":"HS256"} {})"), now),
                errc::malformed);

  // Correctly signed, but the payload is not a JSON object.
  require_error(v.verify(make_hs256(R"(["alice"])"), now), errc::malformed);
  require_error(v.verify(make_hs256("garbage"), now), errc::malformed);
}

TEST_CASE("jwt: sign_hs256 round-trips through verify", "[jwt]") {
  const auto v = hs_verifier();
  const auto token = todo::jwt::sign_hs256(secret, "user-\"1\"\\\n", 900, now);
  const auto r = v.verify(token, now);
  REQUIRE(r.has_value());
  CHECK(r->sub == "user-\"1\"\\\n");
  CHECK(r->exp == now + 900);
  require_error(v.verify(token, now + 900 + 61), errc::expired);
  require_error(todo::jwt::verifier({"other", ""}).verify(token, now), errc::bad_signature);

  CHECK_THROWS_AS(todo::jwt::sign_hs256("", "alice", 900, now), std::invalid_argument);
  CHECK_THROWS_AS(todo::jwt::sign_hs256(secret, "", 900, now), std::invalid_argument);
  CHECK_THROWS_AS(todo::jwt::sign_hs256(secret, std::string(129, 'a'), 900, now),
                  std::invalid_argument);
  CHECK_THROWS_AS(todo::jwt::sign_hs256(secret, "\xff", 900, now), std::invalid_argument);
}

TEST_CASE("jwt: constructor rejects keys that are not RSA public keys", "[jwt]") {
  CHECK_THROWS_AS(rs_verifier("not a pem"), std::runtime_error);
  CHECK_THROWS_AS(rs_verifier("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
                  std::runtime_error);

  const pkey_ptr ec(EVP_EC_gen("P-256"));
  REQUIRE(ec);
  CHECK_THROWS_AS(rs_verifier(public_pem(ec.get())), std::runtime_error);

  CHECK_NOTHROW(rs_verifier(public_pem(rsa_key())));
  CHECK_NOTHROW(rs_verifier(""));
}

TEST_CASE("jwt: a verifier with no keys accepts nothing", "[jwt]") {
  const todo::jwt::verifier v({"", ""});
  require_error(v.verify(make_hs256(good_payload), now), errc::no_key_for_algorithm);
  require_error(v.verify(make_rs256(good_payload, rsa_key()), now), errc::no_key_for_algorithm);
}

TEST_CASE("jwt: verifier is movable", "[jwt]") {
  auto a = hs_verifier();
  todo::jwt::verifier b(std::move(a));
  CHECK(b.verify(make_hs256(good_payload), now).has_value());
  todo::jwt::verifier c({"", ""});
  c = std::move(b);
  CHECK(c.verify(make_hs256(good_payload), now).has_value());
}

TEST_CASE("jwt: error codes convert and describe themselves", "[jwt]") {
  const boost::system::error_code ec = errc::expired;
  CHECK(ec.category() == todo::jwt::category());
  CHECK(std::string(ec.category().name()) == "todo.jwt");
  CHECK(ec.message() == "token expired");
  CHECK(ec == errc::expired);
  CHECK(ec != errc::malformed);
}

// The classic confusion: an attacker who knows the RS256 public key signs
// HS256 with it as the HMAC secret. Whatever bytes of the key are used, the
// key is never looked for in the HMAC slot.
TEST_CASE("jwt: the RS256 public key in any encoding is no HMAC secret", "[jwt][security]") {
  const auto pem = public_pem(rsa_key());
  REQUIRE(pem.back() == '\n');
  std::string crlf;
  for (char c : pem) {
    crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  }
  std::string body;  // the base64 between the armour lines
  for (std::size_t at = pem.find('\n') + 1; pem.compare(at, 5, "-----") != 0;) {
    auto nl = pem.find('\n', at);
    body += pem.substr(at, nl - at);
    at = nl + 1;
  }
  const std::vector<std::string> secrets{pem, pem.substr(0, pem.size() - 1), crlf, public_der(rsa_key()), body};
  const todo::jwt::verifier rs_only({"", pem});
  const todo::jwt::verifier both({secret, pem});
  for (const auto& key : secrets) {
    INFO(key.size());
    require_error(rs_only.verify(make_hs256(good_payload, key), now), errc::no_key_for_algorithm);
    require_error(both.verify(make_hs256(good_payload, key), now), errc::bad_signature);
    // The same HMAC under an RS256 header is checked as an RSA signature.
    require_error(rs_only.verify(make_hs256(good_payload, key, R"({"alg":"RS256"})"), now), errc::bad_signature);
  }
  CHECK(rs_only.verify(make_rs256(good_payload, rsa_key()), now).has_value());
}

TEST_CASE("jwt: alg none in any spelling, with or without a signature", "[jwt][security]") {
  const todo::jwt::verifier v({secret, public_pem(rsa_key())});
  for (const char* header : {R"({"alg":"none"})", R"({"alg":"NONE"})", R"({"alg":"nOnE"})", R"({"alg":""})",
                             R"({"alg":"none","typ":"JWT"})"}) {
    INFO(header);
    require_error(v.verify(make_unsigned(header, good_payload), now), errc::unsupported_algorithm);
    require_error(v.verify(make_hs256(good_payload, secret, header), now), errc::unsupported_algorithm);
    require_error(v.verify(make_hs256(good_payload, "", header), now), errc::unsupported_algorithm);
  }
}

TEST_CASE("jwt: an empty signature is rejected for either algorithm", "[jwt][security]") {
  const todo::jwt::verifier v({secret, public_pem(rsa_key())});
  require_error(v.verify(make_unsigned(R"({"alg":"HS256"})", good_payload), now), errc::bad_signature);
  require_error(v.verify(make_unsigned(R"({"alg":"RS256"})", good_payload), now), errc::bad_signature);
}

// One key per algorithm, from the configuration: a token cannot name or
// carry its own key (kid, jku, jwk, x5u, x5c are read by nothing).
TEST_CASE("jwt: headers that would select a key select nothing", "[jwt][security]") {
  const auto pem = public_pem(rsa_key());
  const todo::jwt::verifier v({secret, pem});
  const auto attacker_jwk = R"({"kty":"RSA","kid":"attacker","n":"AQAB","e":"AQAB"})";
  const std::vector<std::string> extras{R"("kid":"attacker")",
                                        R"("kid":"../../../dev/null")",
                                        R"("kid":"' OR 1=1 --")",
                                        R"("jku":"https://attacker.example/jwks.json")",
                                        std::string(R"("jwk":)") + attacker_jwk,
                                        R"("x5u":"https://attacker.example/cert.pem")",
                                        R"("x5c":["MIIB"])"};
  for (const auto& extra : extras) {
    INFO(extra);
    const auto rs_header = R"({"alg":"RS256",)" + extra + "}";
    const auto hs_header = R"({"alg":"HS256",)" + extra + "}";
    require_error(v.verify(make_rs256_with(rs_header, good_payload, other_rsa_key()), now), errc::bad_signature);
    require_error(v.verify(make_hs256(good_payload, "attacker-secret", hs_header), now), errc::bad_signature);
    require_error(v.verify(make_hs256(good_payload, "", hs_header), now), errc::bad_signature);
    // Signed with the configured keys, the header's extra member changes nothing.
    CHECK(v.verify(make_rs256_with(rs_header, good_payload, rsa_key()), now).has_value());
    CHECK(v.verify(make_hs256(good_payload, secret, hs_header), now).has_value());
  }
}

// iss and aud are not part of the contract: a token is trusted for the key
// that signed it alone, so that key (or secret) must serve this service only
// (docs/SECURITY.md). Pinned here so that a change is a decision.
TEST_CASE("jwt: iss and aud are not checked", "[jwt][security]") {
  const auto v = hs_verifier();
  const std::string claims = R"({"sub":"alice","exp":)" + std::to_string(now + 60) +
                             R"(,"iss":"https://elsewhere.example","aud":["another-service"]})";
  const auto r = v.verify(make_hs256(claims), now);
  REQUIRE(r.has_value());
  CHECK(r->sub == "alice");
}
