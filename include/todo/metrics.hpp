#pragma once
// Prometheus metrics: counters, gauges read at scrape time, and histograms.
// Lookups take a mutex; updates are lock-free atomics, so callers on a hot
// path keep the reference they were given.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace todo::metrics {

class counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

class histogram {
 public:
  explicit histogram(std::vector<double> upper_bounds);
  void observe(double v) noexcept;
  // Cumulative counts per bound, then +Inf.
  std::vector<std::uint64_t> cumulative() const;
  const std::vector<double>& bounds() const { return bounds_; }
  double sum() const noexcept;
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::int64_t> sum_nanos_{0};
};

// Latency buckets in seconds, from 100 µs to 10 s.
const std::vector<double>& latency_buckets();

// `name="value"` with the value escaped for the text format.
std::string label(std::string_view name, std::string_view value);

class registry;
// todo_http_rejections_total{reason}: one family for every limit that
// refuses a request, a connection or a WebSocket upgrade.
counter& rejections(registry& m, std::string_view reason);

class registry {
 public:
  counter& get_counter(std::string_view name, std::string_view help, std::string labels = {});
  histogram& get_histogram(std::string_view name, std::string_view help, std::string labels = {},
                           const std::vector<double>& bounds = latency_buckets());
  void add_gauge(std::string_view name, std::string_view help, std::string labels, std::function<double()> read);
  // The Prometheus text exposition format, version 0.0.4.
  std::string render() const;

 private:
  struct family {
    std::string help;
    std::string type;
    std::map<std::string, std::unique_ptr<counter>> counters;
    std::map<std::string, std::unique_ptr<histogram>> histograms;
    std::map<std::string, std::function<double()>> gauges;
  };
  family& family_for(std::string_view name, std::string_view help, std::string_view type);
  mutable std::mutex mu_;
  std::map<std::string, family, std::less<>> families_;
};

}  // namespace todo::metrics
