#include "search.hpp"

#include "expand.hpp"

namespace todo::recurrence {

std::chrono::sys_seconds wall_clock::to_sys(date::local_seconds t) {
  std::chrono::sys_seconds at{t.time_since_epoch() - offset_};
  if (begin_ <= at && at < end_) {
    return at;
  }
  // For a nonexistent time `first` is the period before the gap; for an
  // ambiguous one it is the earlier period.
  auto info = zone_->get_info(t);
  at = std::chrono::sys_seconds(t.time_since_epoch() - info.first.offset);
  if (info.result == date::local_info::unique && info.first.end - info.first.begin > 2 * margin) {
    begin_ = info.first.begin + margin;
    end_ = info.first.end - margin;
    offset_ = info.first.offset;
  }
  return at;
}

search_result search(const rule_parts& p, const date::time_zone& z, std::chrono::sys_seconds dtstart,
                     std::chrono::sys_seconds after) {
  if (after < dtstart) {
    return {dtstart, series_end::none};
  }
  // The calendar arithmetic holds for four-digit years; a day of margin keeps
  // local times inside them too.
  constexpr std::chrono::sys_seconds first_instant{date::sys_days(date::year(1) / 1 / 2)};
  constexpr std::chrono::sys_seconds last_instant{date::sys_days(date::year(9999) / 12 / 31)};
  if (dtstart < first_instant || after >= last_instant) {
    return {std::nullopt, series_end::bound};
  }
  auto start_local = z.to_local(dtstart);
  auto start_day = date::floor<date::days>(start_local);
  auto time_of_day = start_local - start_day;
  expansion dates(p, start_day);
  if (!p.count && after > dtstart) {
    // Without COUNT nothing before `after` needs counting: start near it. Two
    // days back covers any offset change (Samoa skipped a whole day).
    auto from = date::floor<date::days>(z.to_local(after)) - date::days(2);
    if (from > start_day) {
      dates.skip_to(from);
    }
  }
  std::optional<date::local_days> until_day;
  std::optional<std::chrono::sys_seconds> until_time;
  if (p.until) {
    const auto& u = *p.until;
    auto day =
        date::year(u.year) / date::month(static_cast<unsigned>(u.month)) / date::day(static_cast<unsigned>(u.day));
    if (u.date_only) {
      until_day = date::local_days(day);
    } else {
      until_time = date::sys_days(day) + std::chrono::hours(u.hour) + std::chrono::minutes(u.minute) +
                   std::chrono::seconds(u.second);
    }
  }
  wall_clock clock(z);
  int seen = 1;  // dtstart is the first date
  auto previous = dtstart;
  for (int step = 0; step < max_steps; ++step) {
    auto day = dates.next();
    if (!day) {
      return {std::nullopt, series_end::bound};
    }
    date::local_seconds local = *day + time_of_day;
    if (local <= start_local) {
      continue;
    }
    auto at = clock.to_sys(local);
    if (at <= previous) {
      // A day skipped whole (Samoa's 2011-12-30) maps onto the next day's
      // instant: one date, counted once.
      continue;
    }
    previous = at;
    ++seen;
    if (p.count && seen > *p.count) {
      return {std::nullopt, series_end::count};
    }
    if ((until_day && *day > *until_day) || (until_time && at > *until_time)) {
      return {std::nullopt, series_end::until};
    }
    if (at > after) {
      return {at, series_end::none};
    }
  }
  return {std::nullopt, series_end::bound};
}

}  // namespace todo::recurrence
