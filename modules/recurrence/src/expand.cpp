#include "expand.hpp"

#include <bit>
#include <bitset>
#include <cstdlib>
#include <numeric>

namespace todo::recurrence {
namespace {

// The Gregorian calendar repeats every 400 years: 146097 days, a whole
// number of weeks, 4800 months.
constexpr std::int64_t days_in_cycle = 146097;
constexpr int last_year = 9999;  // RFC 5545 dates have four-digit years

// Weekday of a day number, 0 = MO (1970-01-01 was a Thursday).
int weekday_of(std::int64_t day) { return static_cast<int>(((day + 3) % 7 + 7) % 7); }

std::int64_t day_number(date::year_month_day ymd) { return date::local_days(ymd).time_since_epoch().count(); }

date::year_month_day civil(std::int64_t day) { return date::year_month_day(date::local_days(date::days(day))); }

int year_of(const date::year_month_day& ymd) { return static_cast<int>(ymd.year()); }
unsigned month_of(const date::year_month_day& ymd) { return static_cast<unsigned>(ymd.month()); }
unsigned day_of(const date::year_month_day& ymd) { return static_cast<unsigned>(ymd.day()); }

unsigned month_length(int y, unsigned m) {
  return static_cast<unsigned>((date::year(y) / date::month(m) / date::last).day());
}

// Bits 1..len.
std::uint32_t all_days(unsigned len) { return ((std::uint32_t{1} << len) - 1) << 1; }

// Bits of the days s+1, s+8, s+15, ...: one weekday of a month whose first
// such weekday is day s+1.
constexpr std::array<std::uint32_t, 7> every_week = [] {
  std::array<std::uint32_t, 7> out{};
  for (unsigned s = 0; s < 7; ++s) {
    for (unsigned d = s + 1; d <= 31; d += 7) {
      out[s] |= std::uint32_t{1} << d;
    }
  }
  return out;
}();

// Calls f(n) for each set bit n, lowest first.
template <class Bits, class F>
void for_bits(Bits bits, F f) {
  while (bits != 0) {
    f(std::countr_zero(bits));
    bits &= bits - 1;
  }
}

bool has(std::uint32_t bits, unsigned n) { return (bits >> n) & 1U; }

// The days of month m of year y that pass the filter, as bits 1..31. `first`
// is the month's first weekday; `year_nth` the days picked by ordinals that
// count in the year (BYDAY=20MO in a yearly rule without BYMONTH).
std::uint32_t month_days(const day_filter& f, int y, unsigned m, int first, std::uint32_t year_nth) {
  unsigned len = month_length(y, m);
  std::uint32_t valid = all_days(len);
  std::uint32_t by_monthday = valid;
  if (f.by_monthday) {
    by_monthday = f.monthdays & valid;
    for_bits(f.monthdays_from_end & all_days(len), [&](int d) { by_monthday |= std::uint32_t{1} << (len + 1 - d); });
  }
  std::uint32_t by_day = valid;
  if (f.by_day) {
    by_day = year_nth;
    for (int w = 0; w < 7; ++w) {
      unsigned s = static_cast<unsigned>((w - first + 7) % 7);  // day s+1 is the first such weekday
      if ((f.weekdays >> w) & 1U) {
        by_day |= every_week[s] & valid;
      }
      if (f.nth_in_year || (f.nth[w] | f.nth_from_end[w]) == 0) {
        continue;
      }
      unsigned count = (len - 1 - s) / 7 + 1;
      for (unsigned n = 1; n <= count; ++n) {
        if ((f.nth[w] >> n) & 1U) {
          by_day |= std::uint32_t{1} << (s + 7 * (n - 1) + 1);
        }
        if ((f.nth_from_end[w] >> n) & 1U) {
          by_day |= std::uint32_t{1} << (s + 7 * (count - n) + 1);
        }
      }
    }
  }
  return by_monthday & by_day;
}

// Ordinals counted in year y, as bits 1..31 of each month.
std::array<std::uint32_t, 12> year_ordinals(const day_filter& f, int y) {
  std::array<std::uint32_t, 12> out{};
  std::int64_t jan1 = day_number(date::year(y) / 1 / 1);
  unsigned len = date::year(y).is_leap() ? 366 : 365;
  for (int w = 0; w < 7; ++w) {
    if ((f.nth[w] | f.nth_from_end[w]) == 0) {
      continue;
    }
    unsigned s = static_cast<unsigned>((w - weekday_of(jan1) + 7) % 7);
    unsigned count = (len - 1 - s) / 7 + 1;
    auto mark = [&](unsigned day_of_year) {
      auto ymd = civil(jan1 + day_of_year);
      out[month_of(ymd) - 1] |= std::uint32_t{1} << day_of(ymd);
    };
    for_bits(f.nth[w], [&](int n) {
      if (static_cast<unsigned>(n) <= count) {
        mark(s + 7 * (static_cast<unsigned>(n) - 1));
      }
    });
    for_bits(f.nth_from_end[w], [&](int n) {
      if (static_cast<unsigned>(n) <= count) {
        mark(s + 7 * (count - static_cast<unsigned>(n)));
      }
    });
  }
  return out;
}

// One day of a daily or weekly rule (no ordinals there).
bool day_passes(const day_filter& f, std::int64_t day) {
  if (f.by_day && !((f.weekdays >> weekday_of(day)) & 1U)) {
    return false;
  }
  if (f.months == 0 && !f.by_monthday) {
    return true;
  }
  auto ymd = civil(day);
  if (f.months != 0 && !has(f.months, month_of(ymd))) {
    return false;
  }
  if (f.by_monthday) {
    unsigned d = day_of(ymd);
    unsigned from_end = month_length(year_of(ymd), month_of(ymd)) + 1 - d;
    return has(f.monthdays, d) || has(f.monthdays_from_end, from_end);
  }
  return true;
}

}  // namespace

day_filter make_filter(const rule_parts& p, date::year_month_day dtstart) {
  day_filter f;
  f.freq = p.freq;
  for (int m : p.bymonth) {
    f.months |= static_cast<std::uint16_t>(1U << m);
  }
  f.by_monthday = !p.bymonthday.empty();
  for (int d : p.bymonthday) {
    (d > 0 ? f.monthdays : f.monthdays_from_end) |= std::uint32_t{1} << std::abs(d);
  }
  f.by_day = !p.byday.empty();
  for (const auto& d : p.byday) {
    auto w = static_cast<std::size_t>(d.weekday);
    if (d.ordinal == 0) {
      f.weekdays |= static_cast<std::uint8_t>(1U << d.weekday);
    } else {
      (d.ordinal > 0 ? f.nth[w] : f.nth_from_end[w]) |= std::uint64_t{1} << std::abs(d.ordinal);
    }
  }
  f.nth_in_year = p.freq == frequency::yearly && p.bymonth.empty();
  if (!f.by_day && !f.by_monthday) {
    // RFC 5545: what the rule leaves open comes from DTSTART.
    switch (p.freq) {
      case frequency::yearly:
        if (f.months == 0) {
          f.months = static_cast<std::uint16_t>(1U << month_of(dtstart));
        }
        [[fallthrough]];
      case frequency::monthly:
        f.by_monthday = true;
        f.monthdays = std::uint32_t{1} << day_of(dtstart);
        break;
      case frequency::weekly:
        f.by_day = true;
        f.weekdays = static_cast<std::uint8_t>(1U << weekday_of(day_number(dtstart)));
        break;
      case frequency::daily:
        break;
    }
  }
  return f;
}

expansion::expansion(const rule_parts& p, date::local_days dtstart)
    : setpos_(p.bysetpos), interval_(p.interval), wkst_(p.wkst) {
  std::int64_t day = dtstart.time_since_epoch().count();
  auto ymd = civil(day);
  filter_ = make_filter(p, ymd);
  std::int64_t periods = 0;
  switch (p.freq) {
    case frequency::daily:
      first_ = day;
      periods = days_in_cycle;
      break;
    case frequency::weekly:
      first_ = day - (weekday_of(day) - wkst_ + 7) % 7;
      periods = days_in_cycle / 7;
      break;
    case frequency::monthly:
      first_ = std::int64_t{year_of(ymd)} * 12 + month_of(ymd) - 1;
      periods = 400 * 12;
      break;
    case frequency::yearly:
      first_ = year_of(ymd);
      periods = 400;
      break;
  }
  // Stepping by INTERVAL visits every period of the cycle that it ever will
  // within cycle / gcd steps.
  cycle_ = periods / std::gcd(periods, std::int64_t{interval_});
}

void expansion::skip_to(date::local_days from) {
  std::int64_t day = from.time_since_epoch().count();
  std::int64_t unit = 0;  // periods of one unit from first_
  switch (filter_.freq) {
    case frequency::daily:
      unit = day - first_;
      break;
    case frequency::weekly:
      unit = (day - first_) / 7;
      break;
    case frequency::monthly: {
      auto ymd = civil(day);
      unit = std::int64_t{year_of(ymd)} * 12 + month_of(ymd) - 1 - first_;
      break;
    }
    case frequency::yearly:
      unit = year_of(civil(day)) - first_;
      break;
  }
  std::int64_t target = unit < 0 ? 0 : unit / interval_;
  if (target - 1 > period_) {
    period_ = target - 1;
    size_ = pos_ = 0;
    empty_run_ = 0;
  }
}

std::optional<date::local_days> expansion::next() {
  while (pos_ >= size_) {
    if (empty_run_ > cycle_) {
      return std::nullopt;
    }
    ++period_;
    if (!fill()) {
      return std::nullopt;
    }
    pos_ = 0;
    empty_run_ = size_ == 0 ? empty_run_ + 1 : 0;
  }
  return date::local_days(date::days(days_[static_cast<std::size_t>(pos_++)]));
}

bool expansion::fill() {
  size_ = 0;
  auto push = [this](std::int64_t day) { days_[static_cast<std::size_t>(size_++)] = static_cast<std::int32_t>(day); };
  auto push_month = [&](int y, unsigned m, std::uint32_t year_nth) {
    std::int64_t first = day_number(date::year(y) / date::month(m) / 1);
    for_bits(month_days(filter_, y, m, weekday_of(first), year_nth), [&](int d) { push(first + d - 1); });
  };
  std::int64_t step = period_ * interval_;
  switch (filter_.freq) {
    case frequency::daily:
      if (year_of(civil(first_ + step)) > last_year) {
        return false;
      }
      if (day_passes(filter_, first_ + step)) {
        push(first_ + step);
      }
      break;
    case frequency::weekly: {
      std::int64_t start = first_ + 7 * step;
      if (year_of(civil(start)) > last_year) {
        return false;
      }
      for (std::int64_t d = start; d < start + 7; ++d) {
        if (day_passes(filter_, d)) {
          push(d);
        }
      }
      break;
    }
    case frequency::monthly: {
      std::int64_t month = first_ + step;
      int y = static_cast<int>(month / 12);
      auto m = static_cast<unsigned>(month % 12 + 1);
      if (y > last_year) {
        return false;
      }
      if (filter_.months == 0 || has(filter_.months, m)) {
        push_month(y, m, 0);
      }
      break;
    }
    case frequency::yearly: {
      auto y = static_cast<int>(first_ + step);
      if (y > last_year) {
        return false;
      }
      std::array<std::uint32_t, 12> year_nth{};
      if (filter_.nth_in_year && filter_.by_day) {
        year_nth = year_ordinals(filter_, y);
      }
      for (unsigned m = 1; m <= 12; ++m) {
        if (filter_.months == 0 || has(filter_.months, m)) {
          push_month(y, m, year_nth[m - 1]);
        }
      }
      break;
    }
  }
  if (!setpos_.empty() && size_ > 0) {
    // BYSETPOS picks from the period's dates in order; the picks stay in order.
    std::bitset<366> picked;
    for (int pos : setpos_) {
      int i = pos > 0 ? pos - 1 : size_ + pos;
      if (i >= 0 && i < size_) {
        picked.set(static_cast<std::size_t>(i));
      }
    }
    int kept = 0;
    for (int i = 0; i < size_; ++i) {
      if (picked.test(static_cast<std::size_t>(i))) {
        days_[static_cast<std::size_t>(kept++)] = days_[static_cast<std::size_t>(i)];
      }
    }
    size_ = kept;
  }
  return true;
}

}  // namespace todo::recurrence
