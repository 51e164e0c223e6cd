#include "todo/crypto.hpp"

#include <catch2/catch.hpp>

#include <string>

using todo::crypto::equal;

TEST_CASE("crypto::equal: equal only for the same bytes", "[crypto][security]") {
  const std::string token = "app-api-token-0123456789abcdef";
  CHECK(equal(token, token));
  CHECK(equal(token, std::string(token)));
  CHECK(equal("", ""));

  SECTION("a difference anywhere counts") {
    for (std::size_t at = 0; at < token.size(); ++at) {
      auto forged = token;
      forged[at] ^= 0x01;
      INFO(at);
      CHECK_FALSE(equal(forged, token));
      CHECK_FALSE(equal(token, forged));
    }
  }
  SECTION("a prefix, an extension or nothing is not the token") {
    CHECK_FALSE(equal(token.substr(0, token.size() - 1), token));
    CHECK_FALSE(equal(token + "x", token));
    CHECK_FALSE(equal("", token));
    CHECK_FALSE(equal(token, ""));
    // An empty presented value against an empty expected one is equal; the
    // callers guard that case (an unset APP_API_TOKEN means no check at all).
  }
  SECTION("bytes past a NUL still count") {
    const std::string a("abc\0def", 7);
    const std::string b("abc\0xyz", 7);
    CHECK_FALSE(equal(a, b));
    CHECK_FALSE(equal(a, "abc"));
    CHECK(equal(a, std::string("abc\0def", 7)));
  }
  SECTION("MACs as bytes, high bits included") {
    auto mac = todo::crypto::hmac_sha256("key", "payload");
    REQUIRE(mac);
    auto again = todo::crypto::hmac_sha256("key", "payload");
    auto other = todo::crypto::hmac_sha256("key", "payload!");
    CHECK(equal(todo::crypto::as_chars(*mac), todo::crypto::as_chars(*again)));
    CHECK_FALSE(equal(todo::crypto::as_chars(*mac), todo::crypto::as_chars(*other)));
    CHECK_FALSE(equal(todo::crypto::as_chars(*mac).substr(0, 16), todo::crypto::as_chars(*mac)));
  }
}

TEST_CASE("crypto: HMAC-SHA256 and base64url match the RFC 4231 and RFC 4648 vectors", "[crypto]") {
  // RFC 4231 test case 2.
  auto mac = todo::crypto::hmac_sha256("Jefe", "what do ya want for nothing?");
  REQUIRE(mac);
  CHECK(todo::crypto::b64url_encode(todo::crypto::as_chars(*mac)) ==
        "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM");
  CHECK(todo::crypto::b64_encode("fo") == "Zm8=");
  CHECK(todo::crypto::b64url_decode("Zm8") == std::string("fo"));
  CHECK_FALSE(todo::crypto::b64url_decode("Zm9"));  // non-zero unused bits
}
