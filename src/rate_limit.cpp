#include "todo/rate_limit.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

namespace todo {
namespace {
// Not a user id (JWT subjects are not empty) nor an address key.
constexpr std::string_view overflow_key{"\0overflow", 9};

bool parse_v6(std::string_view address, std::array<unsigned char, 16>& out) {
  std::string s(address);
  if (auto pct = s.find('%'); pct != std::string::npos) {
    s.resize(pct);  // zone index: fe80::1%eth0
  }
  return ::inet_pton(AF_INET6, s.c_str(), out.data()) == 1;
}

bool v4_mapped(const std::array<unsigned char, 16>& a) {
  for (int i = 0; i < 10; ++i) {
    if (a[i] != 0) {
      return false;
    }
  }
  return a[10] == 0xff && a[11] == 0xff;
}
}  // namespace

rate_limiter::rate_limiter(double rate, double burst, std::size_t max_keys)
    : rate_(rate), burst_(std::max(burst, 1.0)), max_keys_(max_keys) {}

std::optional<std::int64_t> rate_limiter::admit(std::string_view key, std::int64_t now_ms) {
  if (rate_ <= 0) {
    return std::nullopt;
  }
  std::lock_guard lock(mu_);
  auto it = buckets_.find(std::string(key));
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_ && now_ms >= next_sweep_ms_) {
      evict_full(now_ms);
      next_sweep_ms_ = now_ms + 1000;
    }
    // Full even after a sweep: the newcomers share one bucket for now.
    std::string k = buckets_.size() >= max_keys_ ? std::string(overflow_key) : std::string(key);
    it = buckets_.try_emplace(std::move(k), bucket{burst_, now_ms}).first;
  }
  auto& b = it->second;
  double elapsed = static_cast<double>(std::max<std::int64_t>(0, now_ms - b.last_ms)) / 1000.0;
  b.tokens = std::min(burst_, b.tokens + elapsed * rate_);
  b.last_ms = now_ms;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return std::nullopt;
  }
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil((1.0 - b.tokens) / rate_)));
}

std::size_t rate_limiter::tracked() const {
  std::lock_guard lock(mu_);
  return buckets_.size();
}

std::string address_key(std::string_view address) {
  std::array<unsigned char, 16> a{};
  if (!parse_v6(address, a)) {
    return std::string(address);  // IPv4 as it is, or whatever it was
  }
  if (v4_mapped(a)) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
    return buf;
  }
  for (std::size_t i = 8; i < 16; ++i) {
    a[i] = 0;
  }
  char buf[INET6_ADDRSTRLEN];
  if (::inet_ntop(AF_INET6, a.data(), buf, sizeof buf) == nullptr) {
    return std::string(address);
  }
  return std::string(buf) + "/64";
}

bool is_loopback(std::string_view address) {
  std::array<unsigned char, 16> a{};
  if (parse_v6(address, a)) {
    if (v4_mapped(a)) {
      return a[12] == 127;
    }
    for (int i = 0; i < 15; ++i) {
      if (a[i] != 0) {
        return false;
      }
    }
    return a[15] == 1;
  }
  std::string s(address);
  unsigned char v4[4];
  return ::inet_pton(AF_INET, s.c_str(), v4) == 1 && v4[0] == 127;
}

void rate_limiter::evict_full(std::int64_t now_ms) {
  std::erase_if(buckets_, [&](const auto& kv) {
    double elapsed = static_cast<double>(now_ms - kv.second.last_ms) / 1000.0;
    return kv.second.tokens + elapsed * rate_ >= burst_;
  });
}

}  // namespace todo
