#pragma once
// Where a webhook may be sent: URL syntax and the address guard against
// server-side request forgery. Pure; resolving the host is the caller's.
// Checked when a user sets webhook_url, and again at every delivery, since
// a name may resolve elsewhere by then (DNS rebinding).
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace todo::webhook {

struct target {
  std::string scheme;  // "https", or "http" when insecure targets are allowed
  std::string host;    // lower-case name, or an address without brackets
  std::uint16_t port = 0;
  std::string path;    // path and query, "/" at least
};

// A URL of at most 2048 characters with scheme, host, optional port, path
// and query; no user info, no fragment. The string is the client's message.
std::variant<target, std::string> parse_url(std::string_view url, bool allow_http);

// An IPv4 (4 bytes) or IPv6 (16 bytes) address in network order.
struct address {
  std::array<unsigned char, 16> bytes{};
  bool v6 = false;
};

// The address in `text` when it is a literal (IPv4 dotted or IPv6).
std::optional<address> parse_address(std::string_view text);

// Why no webhook may go to this address ("a loopback address", "a private
// address", ...), or nullopt for a public unicast address. IPv4-mapped and
// NAT64 IPv6 addresses are judged by the IPv4 address they carry.
std::optional<std::string_view> refusal(const address& a);

}  // namespace todo::webhook
