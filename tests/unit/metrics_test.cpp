#include "todo/metrics.hpp"

#include <catch2/catch.hpp>

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    out.push_back(l);
  }
  return out;
}

bool has_line(const std::string& text, std::string_view line) {
  for (const auto& l : lines(text)) {
    if (l == line) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("counter increments", "[metrics]") {
  todo::metrics::counter c;
  CHECK(c.value() == 0);
  c.inc();
  c.inc(4);
  CHECK(c.value() == 5);
}

TEST_CASE("registry returns the same counter for the same name and labels", "[metrics]") {
  todo::metrics::registry reg;
  auto& a = reg.get_counter("x_total", "help", todo::metrics::label("k", "1"));
  auto& b = reg.get_counter("x_total", "help", todo::metrics::label("k", "1"));
  auto& c = reg.get_counter("x_total", "help", todo::metrics::label("k", "2"));
  CHECK(&a == &b);
  CHECK(&a != &c);
  a.inc();
  b.inc();
  c.inc();
  CHECK(a.value() == 2);
  CHECK(c.value() == 1);
}

TEST_CASE("histogram buckets are cumulative, with sum and count", "[metrics]") {
  todo::metrics::histogram h({1.0, 2.0, 5.0});
  for (double v : {0.5, 1.0, 1.5, 3.0, 10.0}) {
    h.observe(v);
  }
  // A value equal to a bound lands in that bucket (le is "less or equal").
  CHECK(h.cumulative() == std::vector<std::uint64_t>{2, 3, 4, 5});
  CHECK(h.count() == 5);
  CHECK(h.sum() == Approx(16.0));

  todo::metrics::histogram empty({0.1});
  CHECK(empty.cumulative() == std::vector<std::uint64_t>{0, 0});
  CHECK(empty.count() == 0);
  CHECK(empty.sum() == 0.0);
}

TEST_CASE("latency buckets span 100 microseconds to 10 seconds in order", "[metrics]") {
  const auto& b = todo::metrics::latency_buckets();
  REQUIRE_FALSE(b.empty());
  CHECK(b.front() == Approx(0.0001));
  CHECK(b.back() == Approx(10.0));
  for (std::size_t i = 1; i < b.size(); ++i) {
    CHECK(b[i - 1] < b[i]);
  }
}

TEST_CASE("label escapes quotes, backslashes and newlines", "[metrics]") {
  using todo::metrics::label;
  CHECK(label("route", "/api/v1/tasks/{id}") == R"(route="/api/v1/tasks/{id}")");
  CHECK(label("v", "say \"hi\"") == R"(v="say \"hi\"")");
  CHECK(label("v", "a\\b") == R"(v="a\\b")");
  CHECK(label("v", "a\nb") == R"(v="a\nb")");
  CHECK(label("v", "") == R"(v="")");
}

TEST_CASE("render produces the Prometheus text format", "[metrics]") {
  todo::metrics::registry reg;
  reg.get_counter("app_requests_total", "Requests served", todo::metrics::label("route", "/a") + "," +
                                                               todo::metrics::label("status", "200"))
      .inc(3);
  reg.get_counter("app_plain_total", "No labels").inc();
  auto& h = reg.get_histogram("app_latency_seconds", "Latency", todo::metrics::label("route", "/a"), {0.5, 1.0});
  h.observe(0.25);
  h.observe(0.75);
  h.observe(2.0);
  auto& bare = reg.get_histogram("app_size_bytes", "Sizes", {}, {10.0});
  bare.observe(4.0);

  auto text = reg.render();
  INFO(text);
  CHECK(text.ends_with("\n"));

  CHECK(has_line(text, "# HELP app_requests_total Requests served"));
  CHECK(has_line(text, "# TYPE app_requests_total counter"));
  CHECK(has_line(text, R"(app_requests_total{route="/a",status="200"} 3)"));

  CHECK(has_line(text, "# TYPE app_plain_total counter"));
  CHECK(has_line(text, "app_plain_total 1"));

  CHECK(has_line(text, "# HELP app_latency_seconds Latency"));
  CHECK(has_line(text, "# TYPE app_latency_seconds histogram"));
  CHECK(has_line(text, R"(app_latency_seconds_bucket{route="/a",le="0.5"} 1)"));
  CHECK(has_line(text, R"(app_latency_seconds_bucket{route="/a",le="1"} 2)"));
  CHECK(has_line(text, R"(app_latency_seconds_bucket{route="/a",le="+Inf"} 3)"));
  CHECK(has_line(text, R"(app_latency_seconds_sum{route="/a"} 3)"));
  CHECK(has_line(text, R"(app_latency_seconds_count{route="/a"} 3)"));

  CHECK(has_line(text, R"(app_size_bytes_bucket{le="10"} 1)"));
  CHECK(has_line(text, R"(app_size_bytes_bucket{le="+Inf"} 1)"));
  CHECK(has_line(text, "app_size_bytes_sum 4"));
  CHECK(has_line(text, "app_size_bytes_count 1"));

  // HELP and TYPE come before the family's samples, once per family.
  auto ls = lines(text);
  std::size_t help = 0, type = 0, sample = 0;
  for (std::size_t i = 0; i < ls.size(); ++i) {
    if (ls[i] == "# HELP app_requests_total Requests served") {
      help = i;
    }
    if (ls[i] == "# TYPE app_requests_total counter") {
      type = i;
    }
    if (ls[i].starts_with("app_requests_total{")) {
      sample = i;
    }
  }
  CHECK(help < type);
  CHECK(type < sample);
  std::size_t helps = 0;
  for (const auto& l : ls) {
    helps += l.starts_with("# HELP app_latency_seconds ") ? 1 : 0;
  }
  CHECK(helps == 1);
}

TEST_CASE("render escapes label values", "[metrics]") {
  todo::metrics::registry reg;
  reg.get_counter("esc_total", "Escaping", todo::metrics::label("v", "a\"b\\c\nd")).inc();
  auto text = reg.render();
  CHECK(has_line(text, R"(esc_total{v="a\"b\\c\nd"} 1)"));
}

TEST_CASE("gauges are read when rendered", "[metrics]") {
  todo::metrics::registry reg;
  double level = 42;
  reg.add_gauge("queue_depth", "Items waiting", todo::metrics::label("queue", "outbox"), [&level] { return level; });
  reg.add_gauge("up", "Process is up", {}, [] { return 1.0; });
  auto first = reg.render();
  INFO(first);
  CHECK(has_line(first, "# TYPE queue_depth gauge"));
  CHECK(has_line(first, R"(queue_depth{queue="outbox"} 42)"));
  CHECK(has_line(first, "up 1"));
  level = 0.5;
  auto second = reg.render();
  CHECK(has_line(second, R"(queue_depth{queue="outbox"} 0.5)"));
}

TEST_CASE("a metric name cannot be registered with two types", "[metrics]") {
  todo::metrics::registry reg;
  reg.get_counter("dual", "help");
  CHECK_THROWS_AS(reg.get_histogram("dual", "help"), std::logic_error);
  CHECK_THROWS_AS(reg.add_gauge("dual", "help", {}, [] { return 0.0; }), std::logic_error);
}
