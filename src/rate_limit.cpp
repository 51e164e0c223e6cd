#include "todo/rate_limit.hpp"

#include <algorithm>
#include <cmath>

namespace todo {

rate_limiter::rate_limiter(double rate, double burst, std::size_t max_keys)
    : rate_(rate), burst_(std::max(burst, 1.0)), max_keys_(max_keys) {}

std::optional<std::int64_t> rate_limiter::admit(std::string_view key, std::int64_t now_ms) {
  if (rate_ <= 0) {
    return std::nullopt;
  }
  std::lock_guard lock(mu_);
  auto it = buckets_.find(std::string(key));
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) {
      evict_full(now_ms);
    }
    it = buckets_.emplace(std::string(key), bucket{burst_, now_ms}).first;
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

void rate_limiter::evict_full(std::int64_t now_ms) {
  std::erase_if(buckets_, [&](const auto& kv) {
    double elapsed = static_cast<double>(now_ms - kv.second.last_ms) / 1000.0;
    return kv.second.tokens + elapsed * rate_ >= burst_;
  });
}

}  // namespace todo
