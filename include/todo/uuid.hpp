#pragma once
// UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then randomness, so ids sort
// by creation time and index inserts stay at the right edge of the B-tree.
#include <optional>
#include <string>
#include <string_view>

namespace todo::uuid {

std::string v7();
// True for the canonical 8-4-4-4-12 hex form (any version); lower-cases.
std::optional<std::string> normalize(std::string_view s);

}  // namespace todo::uuid
