// Reads "rrule|zone|dtstart|after|n" lines (times in Unix seconds) and
// answers each with one line for the oracle test:
//   error PART                 parse_rule refused the rule
//   CHECK DATE... [end]        CHECK is "ok" or "refused:PART" from
//                              check_series, then the series' next n dates
//                              after `after`, each after the previous one, as
//                              Unix seconds, and "end" if it ended first.
#include "recurrence/recurrence.hpp"

#include <iostream>
#include <string>
#include <vector>

int main() {
  using namespace todo::recurrence;
  std::ios::sync_with_stdio(false);
  std::string line;
  while (std::getline(std::cin, line)) {
    std::vector<std::string> f;
    std::size_t start = 0;
    while (true) {
      auto bar = line.find('|', start);
      f.push_back(line.substr(start, bar - start));
      if (bar == std::string::npos) {
        break;
      }
      start = bar + 1;
    }
    if (f.size() != 5) {
      std::cout << "bad line\n";
      continue;
    }
    auto r = parse_rule(f[0]);
    if (!r) {
      std::cout << "error " << r.error().part << '\n';
      continue;
    }
    std::chrono::sys_seconds dtstart{std::chrono::seconds(std::stoll(f[2]))};
    std::chrono::sys_seconds after{std::chrono::seconds(std::stoll(f[3]))};
    int n = std::stoi(f[4]);
    auto refused = check_series(*r, f[1], dtstart);
    std::string out = refused ? "refused:" + refused->part : "ok";
    for (int i = 0; i < n; ++i) {
      auto next = next_occurrence(*r, f[1], dtstart, after);
      if (!next) {
        out += " end";
        break;
      }
      out += ' ' + std::to_string(next->time_since_epoch().count());
      after = *next;
    }
    std::cout << out << '\n';
  }
}
