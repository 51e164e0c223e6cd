#pragma once
// Timestamps: RFC 3339 in (explicit offset required), UTC with Z out.
// Stored and compared at millisecond precision.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace todo::time {

using ms = std::chrono::sys_time<std::chrono::milliseconds>;

ms now();
// Fractions beyond milliseconds are truncated.
std::optional<ms> parse_rfc3339(std::string_view s);
// "2026-03-02T17:00:00Z", or with ".123" when the milliseconds are not zero.
std::string format(ms t);
std::int64_t to_unix_ms(ms t);
ms from_unix_ms(std::int64_t v);

}  // namespace todo::time
