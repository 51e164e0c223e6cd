#include "todo/webhook_target.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace todo::webhook {
namespace {

constexpr std::size_t max_url = 2048;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.';
}

std::optional<std::string_view> refusal_v4(const unsigned char* b) {
  const unsigned a0 = b[0], a1 = b[1];
  if (a0 == 0) return "an unspecified address";
  if (a0 == 127) return "a loopback address";
  if (a0 == 10 || (a0 == 172 && (a1 & 0xF0) == 16) || (a0 == 192 && a1 == 168)) return "a private address";
  if (a0 == 100 && (a1 & 0xC0) == 64) return "a shared (carrier-grade NAT) address";
  if (a0 == 169 && a1 == 254) return "a link-local address";
  if (a0 == 192 && a1 == 0 && b[2] == 0) return "a reserved address";
  if (a0 == 198 && (a1 & 0xFE) == 18) return "a reserved address";
  if (a0 >= 224) return a0 < 240 ? "a multicast address" : "a reserved address";
  return std::nullopt;
}

}  // namespace

std::variant<target, std::string> parse_url(std::string_view url, bool allow_http) {
  if (url.size() > max_url) {
    return "must be at most 2048 characters";
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return "must not contain spaces, control or non-ASCII characters (percent-encode them)";
    }
  }
  target t;
  auto colon = url.find("://");
  if (colon == std::string_view::npos) {
    return "must be an absolute https:// URL";
  }
  t.scheme = lower(url.substr(0, colon));
  if (t.scheme != "https" && !(allow_http && t.scheme == "http")) {
    return allow_http ? "must be an https:// or http:// URL" : "must be an https:// URL";
  }
  auto rest = url.substr(colon + 3);
  if (rest.find('#') != std::string_view::npos) {
    return "must not have a fragment";
  }
  auto path_at = rest.find_first_of("/?");
  auto authority = rest.substr(0, path_at);
  t.path = path_at == std::string_view::npos ? "/" : std::string(rest.substr(path_at));
  if (t.path.front() == '?') {
    t.path.insert(0, "/");
  }
  if (authority.find('@') != std::string_view::npos) {
    return "must not carry user info (put credentials in webhook_secret)";
  }
  std::string_view host = authority, port;
  if (authority.starts_with('[')) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      return "has an unclosed [ in its host";
    }
    host = authority.substr(1, close - 1);
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return "has characters after the IPv6 address";
      }
      port = after.substr(1);
    }
    auto a = parse_address(host);
    if (!a || !a->v6) {
      return "has a malformed IPv6 address";
    }
  } else {
    auto c = authority.rfind(':');
    if (c != std::string_view::npos) {
      host = authority.substr(0, c);
      port = authority.substr(c + 1);
    }
    if (host.empty() || host.size() > 253 || !std::all_of(host.begin(), host.end(), host_char) ||
        host.front() == '.' || host.front() == '-' || host.find("..") != std::string_view::npos) {
      return "must name a host";
    }
  }
  t.host = lower(host);
  t.port = t.scheme == "https" ? 443 : 80;
  if (!port.empty() || authority.ends_with(':')) {
    unsigned n = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (port.empty() || ec != std::errc{} || p != port.data() + port.size() || n == 0 || n > 65535) {
      return "has a port that is not a number from 1 to 65535";
    }
    t.port = static_cast<std::uint16_t>(n);
  }
  return t;
}

std::optional<address> parse_address(std::string_view text) {
  if (text.size() > 63) {
    return std::nullopt;
  }
  std::string s(text);
  address a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    a.v6 = true;
    return a;
  }
  return std::nullopt;
}

std::optional<std::string_view> refusal(const address& a) {
  const auto& b = a.bytes;
  if (!a.v6) {
    return refusal_v4(b.data());
  }
  auto zeros = [&b](std::size_t from, std::size_t to) {
    return std::all_of(b.begin() + static_cast<std::ptrdiff_t>(from), b.begin() + static_cast<std::ptrdiff_t>(to),
                       [](unsigned char c) { return c == 0; });
  };
  if (zeros(0, 15)) {
    return b[15] == 1 ? "a loopback address" : "an unspecified address";
  }
  // ::ffff:a.b.c.d (mapped) and 64:ff9b::a.b.c.d (NAT64) reach an IPv4 host.
  if (zeros(0, 10) && b[10] == 0xFF && b[11] == 0xFF) {
    return refusal_v4(&b[12]);
  }
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xFF && b[3] == 0x9B && zeros(4, 12)) {
    return refusal_v4(&b[12]);
  }
  if ((b[0] & 0xFE) == 0xFC) return "a private (unique local) address";
  if (b[0] == 0xFE && (b[1] & 0xC0) == 0x80) return "a link-local address";
  if (b[0] == 0xFE && (b[1] & 0xC0) == 0xC0) return "a site-local address";
  if (b[0] == 0xFF) return "a multicast address";
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0D && b[3] == 0xB8) return "a documentation address";
  if (b[0] == 0x01 && b[1] == 0x00 && zeros(2, 8)) return "a discard address";
  return std::nullopt;
}

}  // namespace todo::webhook
