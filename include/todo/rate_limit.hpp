#pragma once
// Per-key token buckets (one per user, or per client address): `rate`
// requests a second sustained, bursts up to `burst`. Thread-safe; memory is
// bounded by evicting buckets that have refilled completely (they carry no
// state worth keeping). When `max_keys` buckets are all in use, new keys
// share one overflow bucket until a later sweep frees room, so that a flood
// of distinct keys costs neither memory nor a sweep per request.
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
  bool enabled() const { return rate_ > 0; }

 private:
  struct bucket {
    double tokens;
    std::int64_t last_ms;
  };
  void evict_full(std::int64_t now_ms);

  double rate_;
  double burst_;
  std::size_t max_keys_;
  std::int64_t next_sweep_ms_ = 0;  // while full, sweep at most this often
  mutable std::mutex mu_;
  std::unordered_map<std::string, bucket> buckets_;
};

// What per-address limits count under: the IPv4 address, or the /64 prefix
// of an IPv6 one (a single host is commonly given a whole /64). IPv4-mapped
// IPv6 addresses count as their IPv4 address. Unparsable input is returned
// unchanged.
std::string address_key(std::string_view address);
// 127.0.0.0/8, ::1 and their IPv4-mapped forms.
bool is_loopback(std::string_view address);

}  // namespace todo
