#include "todo/webhook_target.hpp"

#include <catch2/catch.hpp>

using namespace todo::webhook;

namespace {

std::string refused(std::string_view literal) {
  auto a = parse_address(literal);
  REQUIRE(a);
  auto r = refusal(*a);
  return r ? std::string(*r) : std::string("allowed");
}

}  // namespace

TEST_CASE("webhook URL: the parts of an https URL", "[webhook]") {
  auto r = parse_url("HTTPS://Hooks.Example.COM:8443/in/abc?x=1", false);
  REQUIRE(std::holds_alternative<target>(r));
  auto t = std::get<target>(r);
  CHECK(t.scheme == "https");
  CHECK(t.host == "hooks.example.com");
  CHECK(t.port == 8443);
  CHECK(t.path == "/in/abc?x=1");

  auto d = std::get<target>(parse_url("https://example.com", false));
  CHECK(d.port == 443);
  CHECK(d.path == "/");
  auto q = std::get<target>(parse_url("https://example.com?a=b", false));
  CHECK(q.path == "/?a=b");
  auto v6 = std::get<target>(parse_url("https://[2606:4700::1111]:444/x", false));
  CHECK(v6.host == "2606:4700::1111");
  CHECK(v6.port == 444);
}

TEST_CASE("webhook URL: refusals name the problem", "[webhook]") {
  auto message = [](std::string_view url, bool http = false) {
    auto r = parse_url(url, http);
    REQUIRE(std::holds_alternative<std::string>(r));
    return std::get<std::string>(r);
  };
  CHECK(message("http://example.com/") == "must be an https:// URL");
  CHECK(message("ftp://example.com/", true) == "must be an https:// or http:// URL");
  CHECK(message("example.com/hook") == "must be an absolute https:// URL");
  CHECK(message("https://user:pw@example.com/").find("user info") != std::string::npos);
  CHECK(message("https://example.com/#frag") == "must not have a fragment");
  CHECK(message("https://example.com:0/").find("port") != std::string::npos);
  CHECK(message("https://example.com:99999/").find("port") != std::string::npos);
  CHECK(message("https://example.com:/").find("port") != std::string::npos);
  CHECK(message("https:///path") == "must name a host");
  CHECK(message("https://exa_mple.com/") == "must name a host");
  CHECK(message("https://[::1/") == "has an unclosed [ in its host");
  CHECK(message("https://[1.2.3.4]/") == "has a malformed IPv6 address");
  CHECK(message("https://ex ample.com/").find("spaces") != std::string::npos);
  CHECK(message("https://example.com/" + std::string(2100, 'a')) == "must be at most 2048 characters");
  CHECK(std::holds_alternative<target>(parse_url("http://127.0.0.1:9/", true)));
}

TEST_CASE("webhook address guard: private, loopback, link-local and reserved ranges", "[webhook]") {
  CHECK(refused("127.0.0.1") == "a loopback address");
  CHECK(refused("127.255.0.9") == "a loopback address");
  CHECK(refused("10.1.2.3") == "a private address");
  CHECK(refused("172.16.0.1") == "a private address");
  CHECK(refused("172.31.255.255") == "a private address");
  CHECK(refused("172.32.0.1") == "allowed");
  CHECK(refused("192.168.1.1") == "a private address");
  CHECK(refused("169.254.169.254") == "a link-local address");
  CHECK(refused("100.64.0.1") == "a shared (carrier-grade NAT) address");
  CHECK(refused("100.128.0.1") == "allowed");
  CHECK(refused("0.0.0.0") == "an unspecified address");
  CHECK(refused("224.0.0.1") == "a multicast address");
  CHECK(refused("255.255.255.255") == "a reserved address");
  CHECK(refused("93.184.216.34") == "allowed");
  CHECK(refused("::1") == "a loopback address");
  CHECK(refused("::") == "an unspecified address");
  CHECK(refused("::ffff:127.0.0.1") == "a loopback address");
  CHECK(refused("::ffff:10.0.0.1") == "a private address");
  CHECK(refused("::ffff:93.184.216.34") == "allowed");
  CHECK(refused("64:ff9b::a9fe:a9fe") == "a link-local address");
  CHECK(refused("fd00::1") == "a private (unique local) address");
  CHECK(refused("fe80::1") == "a link-local address");
  CHECK(refused("ff02::1") == "a multicast address");
  CHECK(refused("2001:db8::1") == "a documentation address");
  CHECK(refused("2606:4700::1111") == "allowed");
  CHECK_FALSE(parse_address("localhost"));
  CHECK_FALSE(parse_address("1.2.3"));
}
