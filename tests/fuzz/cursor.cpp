// Keyset cursors of GET /api/v1/tasks. Input: "QUERY\nREST". QUERY is the
// list's query string (its filter and sort decide how many keys a cursor
// holds); REST is read two ways:
//   as a cursor: one that decodes, encoded again, decodes to the same place;
//   as a position (keys separated by 0x1f): encoded, it decodes to exactly
//   that position, is refused for another user, and with one byte changed
//   it is refused or (never in practice) still decodes to the same place.
#include "check.hpp"
#include "listing.hpp"
#include "todo/crypto.hpp"
#include "todo/http.hpp"

#include <algorithm>
#include <cstddef>
#include <simdjson.h>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

using namespace todo;
using namespace todo::tasks;

const std::string key = "fuzz cursor key";
const std::string user = "alice";

bool same(const listing::position& a, const listing::position& b) { return a.keys == b.keys && a.id == b.id; }

// A canonical lower-case UUID derived from the input.
std::string uuid_of(std::string_view s) {
  auto d = crypto::sha256(s);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      out += '-';
    }
    out += hex[d[i] >> 4];
    out += hex[d[i] & 15];
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto nl = in.find('\n');
  std::string_view query = nl == std::string_view::npos ? std::string_view{} : in.substr(0, nl);
  std::string_view rest = nl == std::string_view::npos ? in : in.substr(nl + 1);

  listing::filter f;
  if (auto pairs = http::parse_query(query)) {
    auto parsed = listing::parse(*pairs);
    if (auto* ok = std::get_if<listing::filter>(&parsed)) {
      f = std::move(*ok);
    }
  }

  if (auto decoded = listing::decode_cursor(f, user, rest, key)) {
    FUZZ_CHECK(decoded->keys.size() == listing::key_count(f));
    auto again = listing::decode_cursor(f, user, listing::encode_cursor(f, user, *decoded, key), key);
    FUZZ_CHECK(again && same(*again, *decoded));
  }

  // Keys are text as PostgreSQL printed it: UTF-8 without NUL.
  if (!simdjson::validate_utf8(rest.data(), rest.size()) || rest.find('\0') != std::string_view::npos) {
    return 0;
  }
  listing::position p;
  p.id = uuid_of(rest);
  std::size_t start = 0;
  while (p.keys.size() < listing::key_count(f)) {
    auto sep = rest.find('\x1f', start);
    p.keys.emplace_back(rest.substr(std::min(start, rest.size()), sep == std::string_view::npos ? sep : sep - start));
    start = sep == std::string_view::npos ? rest.size() : sep + 1;
  }
  auto cursor = listing::encode_cursor(f, user, p, key);
  auto back = listing::decode_cursor(f, user, cursor, key);
  if (cursor.size() > 4096) {
    // Longer cursors are refused unread; the page would have no more keys.
    FUZZ_CHECK(!back);
    return 0;
  }
  FUZZ_CHECK(back && same(*back, p));
  FUZZ_CHECK(!listing::decode_cursor(f, "bob", cursor, key));
  FUZZ_CHECK(!listing::decode_cursor(f, user, cursor, "another key"));
  if (!rest.empty()) {
    auto at = static_cast<unsigned char>(rest[0]);
    std::string forged = cursor;
    auto& c = forged[(at * 131u + rest.size()) % forged.size()];
    c = static_cast<char>(c ^ (1 + at % 7));
    auto tampered = listing::decode_cursor(f, user, forged, key);
    FUZZ_CHECK(!tampered || same(*tampered, p));
  }
  return 0;
}
