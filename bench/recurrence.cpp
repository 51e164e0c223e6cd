// Next-date computations per second on one core, for a mix of rules, zones
// and positions in the series, as the completion of a recurring task asks
// for them: the series' rule, zone and first date, and the current due date
// (within a month of the first date for half the queries, within ten years
// for the other half: old series must not cost more).
//
// usage: recurrence_bench [cpu-seconds-per-run=2] [runs=5]
// Prints each run's rate (per second of the thread's CPU time) and their
// median, then each rule's own rate.
#include "recurrence/recurrence.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

namespace {

namespace rec = todo::recurrence;
using std::chrono::sys_seconds;

struct query {
  rec::rule rule;
  std::string zone;
  sys_seconds dtstart;
  sys_seconds after;
};

// What users set up most: plain periods, weekdays, "last Friday", month ends,
// birthdays, and some bounded series.
constexpr const char* rules[] = {
    "FREQ=DAILY",
    "FREQ=DAILY;INTERVAL=3",
    "FREQ=WEEKLY;BYDAY=MO",
    "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;WKST=SU",
    "FREQ=MONTHLY",
    "FREQ=MONTHLY;BYMONTHDAY=-1",
    "FREQ=MONTHLY;BYMONTHDAY=31",
    "FREQ=MONTHLY;BYDAY=-1FR",
    "FREQ=MONTHLY;BYDAY=2TU",
    "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
    "FREQ=YEARLY",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
    "FREQ=YEARLY;BYMONTH=11;BYDAY=4TH",
    "FREQ=DAILY;COUNT=30",
    "FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=1000",
    "FREQ=WEEKLY;BYDAY=MO,WE,FR;UNTIL=20301231T000000Z",
};
constexpr const char* zones[] = {"Europe/Berlin", "America/New_York", "UTC", "Australia/Lord_Howe"};

std::vector<query> make_queries() {
  std::vector<query> out;
  // 2026-03-02T08:00:00Z; starts spread over 400 days and any hour, so
  // that series cross DST changes and start at times that fall into gaps.
  const sys_seconds base{std::chrono::seconds(1772438400)};
  unsigned seed = 12345;
  auto rnd = [&seed](unsigned n) {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 8) % n;
  };
  for (int i = 0; i < 4096; ++i) {
    auto r = rec::parse_rule(rules[rnd(std::size(rules))]);
    if (!r) {
      std::fprintf(stderr, "bench rule refused: %s\n", r.error().part.c_str());
      std::exit(1);
    }
    auto dtstart = base + std::chrono::hours(24 * static_cast<int>(rnd(400)) + static_cast<int>(rnd(24)));
    auto days = static_cast<int>(i % 2 == 0 ? rnd(31) : rnd(3653));
    auto after = dtstart + std::chrono::hours(24 * days);
    out.push_back({*r, zones[rnd(std::size(zones))], dtstart, after});
  }
  return out;
}

struct rate {
  double per_second = 0;
  long found = 0;  // queries that had a next date
};

// The thread's CPU time, not the wall clock: on a machine shared with other
// jobs, time spent waiting for a core is not the engine's.
double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

rate run_once(const std::vector<query>& qs, double seconds) {
  long done = 0;
  long found = 0;
  double start = cpu_seconds();
  while (cpu_seconds() - start < seconds) {
    for (const auto& q : qs) {
      found += rec::next_occurrence(q.rule, q.zone, q.dtstart, q.after).has_value();
    }
    done += static_cast<long>(qs.size());
  }
  return {static_cast<double>(done) / (cpu_seconds() - start), found};
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  auto qs = make_queries();
  if (run_once(qs, 0.2).found == 0) {  // also warms up: tz database loaded
    std::fprintf(stderr, "no dates found: the benchmark would measure nothing\n");
    return 1;
  }
  std::vector<double> rates;
  for (int i = 0; i < runs; ++i) {
    rates.push_back(run_once(qs, seconds).per_second);
    std::printf("run %d: %.0f next dates per CPU second\n", i + 1, rates.back());
  }
  std::sort(rates.begin(), rates.end());
  std::printf("median: %.0f next dates per CPU second over %d runs of %.1f s, %zu rule/zone/start mixes\n",
              rates[rates.size() / 2], runs, seconds, qs.size());
  for (const char* text : rules) {
    std::vector<query> same;
    for (const auto& q : qs) {
      if (q.rule.text() == rec::parse_rule(text)->text()) {
        same.push_back(q);
      }
    }
    std::printf("  %9.0f /s  %s\n", run_once(same, seconds / 4).per_second, text);
  }
}
