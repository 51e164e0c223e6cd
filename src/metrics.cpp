#include "todo/metrics.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace todo::metrics {

histogram::histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {}

void histogram::observe(double v) noexcept {
  std::size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) {
    ++i;
  }
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_nanos_.fetch_add(static_cast<std::int64_t>(std::llround(v * 1e9)), std::memory_order_relaxed);
}

std::vector<std::uint64_t> histogram::cumulative() const {
  std::vector<std::uint64_t> out(bounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    out[i] = running;
  }
  return out;
}

double histogram::sum() const noexcept {
  return static_cast<double>(sum_nanos_.load(std::memory_order_relaxed)) / 1e9;
}

const std::vector<double>& latency_buckets() {
  static const std::vector<double> b{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                     0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5, 5, 10};
  return b;
}

std::string label(std::string_view name, std::string_view value) {
  std::string out(name);
  out += "=\"";
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

registry::family& registry::family_for(std::string_view name, std::string_view help, std::string_view type) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), family{std::string(help), std::string(type), {}, {}, {}}).first;
  } else if (it->second.type != type) {
    throw std::logic_error("metric registered with two types: " + std::string(name));
  }
  return it->second;
}

counter& rejections(registry& m, std::string_view reason) {
  return m.get_counter("todo_http_rejections_total", "Requests and connections refused by a limit, by reason",
                       label("reason", reason));
}

counter& registry::get_counter(std::string_view name, std::string_view help, std::string labels) {
  std::lock_guard lock(mu_);
  auto& f = family_for(name, help, "counter");
  auto& slot = f.counters[labels];
  if (!slot) {
    slot = std::make_unique<counter>();
  }
  return *slot;
}

histogram& registry::get_histogram(std::string_view name, std::string_view help, std::string labels,
                                   const std::vector<double>& bounds) {
  std::lock_guard lock(mu_);
  auto& f = family_for(name, help, "histogram");
  auto& slot = f.histograms[labels];
  if (!slot) {
    slot = std::make_unique<histogram>(bounds);
  }
  return *slot;
}

void registry::add_gauge(std::string_view name, std::string_view help, std::string labels,
                         std::function<double()> read) {
  std::lock_guard lock(mu_);
  family_for(name, help, "gauge").gauges[labels] = std::move(read);
}

namespace {
std::string number(double v) {
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest exact form: 0.1, not 0.10000000000000001
  return std::string(buf, ec == std::errc{} ? end : buf);
}

std::string series(std::string_view name, std::string_view labels, std::string_view extra = {}) {
  std::string out(name);
  if (!labels.empty() || !extra.empty()) {
    out.push_back('{');
    out += labels;
    if (!labels.empty() && !extra.empty()) {
      out.push_back(',');
    }
    out += extra;
    out.push_back('}');
  }
  return out;
}
}  // namespace

std::string registry::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + f.type + "\n";
    for (const auto& [labels, c] : f.counters) {
      out += series(name, labels) + " " + std::to_string(c->value()) + "\n";
    }
    for (const auto& [labels, read] : f.gauges) {
      out += series(name, labels) + " " + number(read()) + "\n";
    }
    for (const auto& [labels, h] : f.histograms) {
      auto cum = h->cumulative();
      const auto& b = h->bounds();
      for (std::size_t i = 0; i < b.size(); ++i) {
        out += series(name + "_bucket", labels, label("le", number(b[i]))) + " " + std::to_string(cum[i]) + "\n";
      }
      out += series(name + "_bucket", labels, "le=\"+Inf\"") + " " + std::to_string(cum.back()) + "\n";
      out += series(name + "_sum", labels) + " " + number(h->sum()) + "\n";
      out += series(name + "_count", labels) + " " + std::to_string(h->count()) + "\n";
    }
  }
  return out;
}

}  // namespace todo::metrics
