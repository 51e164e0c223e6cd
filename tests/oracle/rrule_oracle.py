#!/usr/bin/python3
"""Compares the recurrence engine with python-dateutil's rrule.

Generates seeded random rules and start dates (many near daylight-saving
changes, at times of day that fall into gaps and overlaps), asks the engine
(through rrule_cli) for the next dates, and computes the same dates with
dateutil in local wall-clock time, mapped to UTC by zoneinfo with fold=0:
a time in a gap takes the offset from before the gap, a time that occurs
twice its first occurrence, as the engine does.

COUNT and UNTIL are applied here, not by dateutil: RFC 5545 counts DTSTART
as the first date even when the rule does not match it; dateutil does not.
Two local dates on the same instant (a skipped day maps onto the next) are
one date, as in the engine.

Where the engine refuses a rule (parse_rule or check_series), dateutil must
find no date after DTSTART either.

Usage: rrule_oracle.py PATH_TO_RRULE_CLI [CASES] [SEED]
"""
import datetime as dt
import random
import signal
import subprocess
import sys
import time
import types
from zoneinfo import ZoneInfo

from dateutil import rrule as du

ZONES = [
    "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Apia",
    "UTC", "Europe/London", "Australia/Sydney", "America/St_Johns", "Pacific/Chatham",
    "America/Santiago", "Asia/Kolkata", "America/Sao_Paulo",
]
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
FREQS = {"DAILY": du.DAILY, "WEEKLY": du.WEEKLY, "MONTHLY": du.MONTHLY, "YEARLY": du.YEARLY}
UTC = dt.timezone.utc
# The system tz data read by the engine lists transitions up to 2037 only:
# later instants are not compared. dateutil runs a little past it in local
# time, so that every zone's dates before it are complete.
LIMIT = int(dt.datetime(2037, 1, 1, tzinfo=UTC).timestamp())
LOCAL_BOUND = dt.datetime(2037, 1, 3)
# dateutil walks on to the year 9999 looking for a date that never comes:
# its rrule reads the last year from the datetime module it imported.
_bounded = types.ModuleType("datetime")
_bounded.__dict__.update(vars(dt))
_bounded.MAXYEAR = LOCAL_BOUND.year
du.datetime = _bounded
# What a run must compare at least, so that a generator or clipping change
# cannot make the test pass by comparing nothing.
MIN_COMPARED_SHARE = 0.9
MIN_DATES_PER_QUERY = 2.5


class Timeout(Exception):
    pass


def on_alarm(signum, frame):
    raise Timeout()


def transitions(zone, year, cache={}):
    """Local dates in `year` on which the UTC offset changes."""
    key = (zone, year)
    if key not in cache:
        z = ZoneInfo(zone)
        out = []
        day = dt.datetime(year, 1, 1, 12)
        prev = day.replace(tzinfo=z).utcoffset()
        for _ in range(366):
            nxt = day + dt.timedelta(days=1)
            off = nxt.replace(tzinfo=z).utcoffset()
            if off != prev:
                out.append(nxt.date())
            prev, day = off, nxt
        cache[key] = out
    return cache[key]


def pick(rng, values, lo, hi):
    return sorted(set(rng.choice(values) for _ in range(rng.randint(lo, hi))))


def gen_byday(rng, ordinal_max, mixed_ok):
    """Plain weekdays, numbered ones, or (when mixed_ok) both."""
    kind = rng.random()
    days = []
    for _ in range(rng.randint(1, 3)):
        wd = rng.choice(WEEKDAYS)
        numbered = kind < 0.45 or (mixed_ok and kind > 0.85 and rng.random() < 0.5)
        if numbered:
            n = rng.choice([1, -1, 2, -2, rng.randint(1, ordinal_max), -rng.randint(1, ordinal_max)])
            days.append(f"{n}{wd}")
        else:
            days.append(wd)
    return sorted(set(days))


def gen_rule(rng, start_local):
    freq = rng.choice(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"])
    parts = {"FREQ": freq}
    if rng.random() < 0.4:
        parts["INTERVAL"] = rng.choice([2, 2, 3, 4, 5, 7, 12])
    monthdays = [d for d in range(-31, 32) if d] + [1, 15, 28, 29, 30, 31, -1, -1, -2]
    if freq == "DAILY":
        if rng.random() < 0.3:
            parts["BYDAY"] = pick(rng, WEEKDAYS, 1, 5)
        if rng.random() < 0.15:
            parts["BYMONTH"] = pick(rng, range(1, 13), 1, 4)
        if rng.random() < 0.15:
            parts["BYMONTHDAY"] = pick(rng, monthdays, 1, 4)
    elif freq == "WEEKLY":
        if rng.random() < 0.6:
            parts["BYDAY"] = pick(rng, WEEKDAYS, 1, 4)
        if rng.random() < 0.1:
            parts["BYMONTH"] = pick(rng, range(1, 13), 1, 6)
        if rng.random() < 0.25:
            parts["WKST"] = rng.choice(WEEKDAYS)
    else:
        by_month = freq == "YEARLY" and rng.random() < 0.5 or rng.random() < 0.15
        if by_month:
            parts["BYMONTH"] = pick(rng, range(1, 13), 1, 3)
        if rng.random() < 0.35:
            parts["BYMONTHDAY"] = pick(rng, monthdays, 1, 3)
        if rng.random() < 0.45:
            parts["BYDAY"] = gen_byday(rng, 53 if freq == "YEARLY" and not by_month else 5, True)
    has_by = any(k in parts for k in ("BYDAY", "BYMONTHDAY", "BYMONTH"))
    if has_by and freq != "DAILY" and rng.random() < 0.25 and not mixed(parts):
        parts["BYSETPOS"] = sorted(set(rng.choice([1, -1, 2, -2, 3]) for _ in range(rng.randint(1, 2))))
    r = rng.random()
    if r < 0.2:
        parts["COUNT"] = rng.randint(1, 30)
    elif r < 0.35:
        until = start_local + dt.timedelta(days=rng.randint(-5, 800), minutes=rng.randint(-600, 600))
        if rng.random() < 0.5:
            parts["UNTIL"] = until.strftime("%Y%m%d")
        else:
            parts["UNTIL"] = (until - dt.timedelta(hours=rng.randint(-14, 14))).strftime("%Y%m%dT%H%M%SZ")
    return parts


def mixed(parts):
    """BYDAY with both plain and numbered weekdays."""
    days = parts.get("BYDAY", [])
    return any(d[:-2] for d in days) and any(not d[:-2] for d in days)


def rule_text(parts):
    return ";".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in parts.items())


def gen_start(rng, zone):
    """A UTC instant for the series start, often close before an offset change,
    at a time of day that the change skips or repeats."""
    z = ZoneInfo(zone)
    if zone == "Pacific/Apia" and rng.random() < 0.2:
        day = dt.date(2011, 12, rng.randint(20, 29))  # Samoa skipped 30 December 2011
    else:
        year = rng.randint(1996, 2030)
        ts = transitions(zone, year)
        if ts and rng.random() < 0.6:
            day = rng.choice(ts) - dt.timedelta(days=rng.choice([0, 1, 3, 7, 14, 27, 33, 360]))
        else:
            day = dt.date(year, 1, 1) + dt.timedelta(days=rng.randint(0, 364))
    if rng.random() < 0.1:
        day = dt.date(rng.choice([1996, 2000, 2004, 2016, 2024, 2028]), 2, 29)
    if rng.random() < 0.6:
        tod = dt.time(rng.randint(0, 4), rng.choice([0, 15, 30, 45, rng.randint(0, 59)]))
    else:
        tod = dt.time(rng.randint(0, 23), rng.randint(0, 59), rng.choice([0, 0, 0, rng.randint(0, 59)]))
    local = dt.datetime.combine(day, tod).replace(tzinfo=z, fold=rng.randint(0, 1))
    return int(local.timestamp())


def dateutil_rule(parts, start):
    """The rule without COUNT and UNTIL, up to LOCAL_BOUND. Dates up to
    `start` are the caller's to drop.

    Where dateutil departs from RFC 5545, the rule is restated: it requires a
    date to match both plain and numbered weekdays where RFC 5545 takes
    either, so a mixed BYDAY (never with BYSETPOS) is the union of two rules;
    its first week of a weekly rule begins at DTSTART, not at WKST, so
    BYSETPOS would pick from a part of it."""
    kw = {"dtstart": start, "interval": parts.get("INTERVAL", 1), "until": LOCAL_BOUND}
    wkst = WEEKDAYS.index(parts.get("WKST", "MO"))
    kw["wkst"] = wkst
    if parts["FREQ"] == "WEEKLY" and "BYSETPOS" in parts:
        kw["dtstart"] = start - dt.timedelta(days=(start.weekday() - wkst) % 7)
        parts = dict(parts, BYDAY=parts.get("BYDAY", [WEEKDAYS[start.weekday()]]))
    for name, key in (("BYMONTH", "bymonth"), ("BYMONTHDAY", "bymonthday"), ("BYSETPOS", "bysetpos")):
        if name in parts:
            kw[key] = parts[name]
    freq = FREQS[parts["FREQ"]]
    if "BYDAY" not in parts:
        return du.rrule(freq, **kw)
    kinds = {}
    for d in parts["BYDAY"]:
        wd = getattr(du, d[-2:])
        kinds.setdefault(bool(d[:-2]), []).append(wd(int(d[:-2])) if d[:-2] else wd)
    if len(kinds) == 1:
        return du.rrule(freq, byweekday=next(iter(kinds.values())), **kw)
    union = du.rruleset()
    for days in kinds.values():
        union.rrule(du.rrule(freq, byweekday=days, **kw))
    return union


def unbounded(parts):
    return {k: v for k, v in parts.items() if k not in ("COUNT", "UNTIL")}


class Series:
    """The series' instants, DTSTART first, computed as far as asked."""

    def __init__(self, parts, zone, dtstart):
        self.parts = parts
        self.dates = [dtstart]
        self.ended = False  # COUNT or UNTIL ended it (else it may go on past the bound)
        self.exhausted = False
        self._gen = self._walk(zone, dtstart)

    def _walk(self, zone, dtstart):
        z = ZoneInfo(zone)
        start = dt.datetime.fromtimestamp(dtstart, z).replace(tzinfo=None)
        until_day = until_at = None
        u = self.parts.get("UNTIL")
        if u and len(u) == 8:
            until_day = dt.datetime.strptime(u, "%Y%m%d").date()
        elif u:
            until_at = int(dt.datetime.strptime(u, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp())
        seen, previous = 1, dtstart
        for x in dateutil_rule(self.parts, start):
            if x <= start:
                continue
            at = int(x.replace(tzinfo=z, fold=0).timestamp())
            if at <= previous:
                continue
            previous = at
            seen += 1
            if "COUNT" in self.parts and seen > self.parts["COUNT"]:
                self.ended = True
                return
            if (until_day and x.date() > until_day) or (until_at is not None and at > until_at):
                self.ended = True
                return
            yield at

    def get(self, i):
        """The i-th date (DTSTART is the 0th), or None past the end or the bound."""
        while len(self.dates) <= i and not self.exhausted:
            try:
                self.dates.append(next(self._gen))
            except StopIteration:
                self.exhausted = True
        return self.dates[i] if i < len(self.dates) else None

    def after(self, after, n):
        """(up to n dates after `after`, whether the series ends before them)."""
        out, i = [], 0
        while len(out) < n:
            at = self.get(i)
            if at is None:
                return out, self.ended
            if at > after:
                out.append(at)
            i += 1
        return out, False


def has_date(series):
    """Whether the series has a date after DTSTART (before the bound)."""
    second = series.get(1)
    return second is not None and second < LIMIT


def compare(series, after, n, line):
    """None when the engine's dates agree with dateutil's, else dateutil's."""
    fields = line.split()[1:]
    have = [int(f) for f in fields if f != "end"]
    have_end = fields[-1:] == ["end"]
    want, want_end = series.after(after, n)
    kept = [d for d in want if d < LIMIT]
    if [d for d in have if d < LIMIT] != kept:
        return want
    if want_end and len(kept) == len(want) and not (have_end and len(have) == len(want)):
        return want + ["end"]
    return None


def judge(parts, zone, dtstart, asks, lines):
    """(after, engine's line, what dateutil expected) for each disagreement."""
    head = lines[0].split()
    if head[0] == "error":
        # parse_rule refused it as impossible: dateutil must find no date either.
        free = Series(unbounded(parts), zone, dtstart)
        return [(dtstart, lines[0], [free.get(1)])] if has_date(free) else []
    series = Series(parts, zone, dtstart)
    out = []
    if head[0] != "ok":
        # check_series refused it: no date after DTSTART, by COUNT or UNTIL
        # when it names them, else none ever.
        part = head[0].split(":")[1]
        source = series if part in ("COUNT", "UNTIL") else Series(unbounded(parts), zone, dtstart)
        if has_date(source):
            out.append((dtstart, lines[0], [source.get(1)]))
        if head[1:] != ["end"]:
            out.append((dtstart, lines[0], "no date, as check_series refused"))
    elif head[1:] == ["end"]:
        out.append((dtstart, lines[0], "a date, as check_series accepted"))
    for (after, n), line in zip(asks, lines):
        want = compare(series, after, n, line)
        if want is not None:
            out.append((after, line, want))
    return out


def main():
    cli = sys.argv[1]
    cases = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 20260302
    rng = random.Random(seed)
    signal.signal(signal.SIGALRM, on_alarm)
    rules = []
    for _ in range(cases):
        zone = rng.choice(ZONES)
        dtstart = gen_start(rng, zone)
        local = dt.datetime.fromtimestamp(dtstart, ZoneInfo(zone)).replace(tzinfo=None)
        parts = gen_rule(rng, local)
        skip = rng.choice([rng.randint(-86400, 86400), rng.randint(0, 400 * 86400), rng.randint(0, 1200 * 86400)])
        rules.append((parts, zone, dtstart, [(dtstart, 6), (dtstart + skip, 3)]))
    started = time.monotonic()
    text = "".join(f"{rule_text(p)}|{z}|{s}|{a}|{n}\n" for p, z, s, asks in rules for a, n in asks)
    got = subprocess.run([cli], input=text, capture_output=True, text=True, check=True).stdout.splitlines()
    engine_time = time.monotonic() - started
    queries = sum(len(asks) for *_, asks in rules)
    assert len(got) == queries, "rrule_cli answered %d of %d lines" % (len(got), queries)
    failures, compared, dates, refused, slow = [], 0, 0, {}, 0
    answers = iter(got)
    for parts, zone, dtstart, asks in rules:
        lines = [next(answers) for _ in asks]
        head = lines[0].split()[0]
        if head != "ok":
            key = lines[0] if head == "error" else head
            refused[key] = refused.get(key, 0) + 1
        try:
            signal.setitimer(signal.ITIMER_REAL, 2.0)
            failures += [(parts, zone, dtstart) + f for f in judge(parts, zone, dtstart, asks, lines)]
        except Timeout:
            slow += 1
            continue
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if head != "error":
            compared += len(asks)
            dates += sum(1 for line in lines for f in line.split()[1:] if f != "end" and int(f) < LIMIT)
    total = time.monotonic() - started
    for parts, zone, dtstart, after, line, want in failures[:25]:
        z = ZoneInfo(zone)
        fmt = lambda v: [dt.datetime.fromtimestamp(t, z).isoformat() if isinstance(t, int) else t for t in v]
        have = fmt([int(f) if f.isdigit() else f for f in line.split()])
        print(f"MISMATCH {rule_text(parts)} {zone} dtstart={fmt([dtstart])[0]} after={fmt([after])[0]}\n"
              f"  engine:   {have}\n  dateutil: {fmt(want) if isinstance(want, list) else want}")
    print(f"{queries} queries over {cases} rules: {compared} compared ({dates} engine dates before 2037), "
          f"refused {refused}, {slow} rules beyond dateutil's time limit; engine {engine_time:.2f}s, "
          f"total {total:.1f}s")
    print(f"{len(failures)} disagreements")
    if compared < MIN_COMPARED_SHARE * queries or dates < MIN_DATES_PER_QUERY * compared:
        print("too little compared: the oracle would pass without testing much")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
