#pragma once
// Per-key token buckets (one per user): `rate` requests a second sustained,
// bursts up to `burst`. Thread-safe; memory is bounded by evicting buckets
// that have refilled completely (they carry no state worth keeping).
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace todo {

class rate_limiter {
 public:
  // rate == 0 disables the limit.
  rate_limiter(double rate, double burst, std::size_t max_keys = 100'000);

  // nullopt when admitted, else the whole seconds to wait (>= 1).
  std::optional<std::int64_t> admit(std::string_view key, std::int64_t now_ms);
  std::size_t tracked() const;

 private:
  struct bucket {
    double tokens;
    std::int64_t last_ms;
  };
  void evict_full(std::int64_t now_ms);

  double rate_;
  double burst_;
  std::size_t max_keys_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, bucket> buckets_;
};

}  // namespace todo
