#!/usr/bin/python3
"""A stand-in for the Dapr sidecar (daprd 1.16) on the endpoints todo-server uses.

Standard library only, plus python3-psycopg2 when --pg-dsn is given. Status
codes, bodies and timing follow daprd 1.16 with the Scheduler
(go-etcd-cron 0.9) and the state.postgresql v2 component:

  GET             /v1.0/healthz, /v1.0/healthz/outbound
  POST|GET|DELETE /v1.0-alpha1/jobs/{name}
  POST|PUT        /v1.0/state/{store}, /v1.0/state/{store}/bulk,
                  /v1.0/state/{store}/transaction
  GET|DELETE      /v1.0/state/{store}/{key}

Test-only routes under /__control/ (not part of Dapr, no token needed):

  GET  /__control/jobs        current jobs (name, dueTime, data, attempts, next)
  GET  /__control/triggers    every trigger attempt (name, attempt, time, status or error)
  GET  /__control/calls       every API call (method, path, status)
  POST /__control/disconnect  due jobs wait, as while no sidecar is connected
  POST /__control/connect     and are delivered again

Job schedules: 6-field cron with seconds (optionally prefixed TZ=<zone> or
CRON_TZ=<zone>), "@every <Go duration>", and @yearly, @annually, @monthly,
@weekly, @daily, @midnight, @hourly. Times without a zone are UTC, as in the
Scheduler's container.
"""

import argparse
import calendar
import datetime as dt
import decimal
import heapq
import hmac
import http.client
import http.server
import itertools
import json
import os
import random
import re
import signal
import socket
import sys
import threading
import time
import traceback
import unicodedata
import urllib.parse
import uuid
import zoneinfo

NS = 10**9
MS = 10**6
UTC = dt.timezone.utc
MAX_INT64 = 2**63 - 1
VALUE_TYPE_URL = "type.googleapis.com/google.protobuf.Value"
HEALTH_PATHS = ("/v1.0/healthz", "/v1.0/healthz/outbound")


def log(msg):
    sys.stderr.write(f"dapr-sidecar: {msg}\n")
    sys.stderr.flush()


def format_ns(ns):
    sec, frac = divmod(ns, NS)
    t = dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=sec)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


# ------------------------------------------------------------------ errors

class ApiError(Exception):
    """A non-2xx reply: status, Dapr errorCode, message, optional details."""

    def __init__(self, status, code, message, details=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def body(self):
        out = {"errorCode": self.code, "message": self.message}
        if self.details is not None:
            out["details"] = self.details
        return json.dumps(out).encode()


def error_info(reason, metadata):
    return {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
            "domain": "dapr.io", "metadata": metadata}


# ------------------------------------------------------- JSON as Go writes it

def _finite_float(text):
    v = float(text)
    if v in (float("inf"), float("-inf")):
        raise ValueError(f"number {text} out of range")
    return v


def _ranged_int(text):
    v = int(text)
    if abs(v) >= 2**1024:  # Go decodes JSON numbers into float64
        raise ValueError(f"number {text} out of range")
    return v


def _no_constant(name):
    raise ValueError(f"invalid character in literal {name}")


def _go_decoder(object_pairs_hook=None):
    return json.JSONDecoder(parse_float=_finite_float, parse_int=_ranged_int,
                            parse_constant=_no_constant, object_pairs_hook=object_pairs_hook)


def format_go_float(f):
    """strconv formatting as encoding/json and protojson apply it to a float64."""
    if f != f or f in (float("inf"), float("-inf")):
        raise ValueError("unsupported value")
    if f == 0:
        return "-0" if str(f).startswith("-") else "0"
    r = repr(f)
    if 1e-6 <= abs(f) < 1e21:
        s = format(decimal.Decimal(r), "f")
        if "." in s:
            s = s.rstrip("0").rstrip(".")
        return s
    s = r
    if len(s) >= 4 and s[-4] == "e" and s[-3] == "-" and s[-2] == "0":
        s = s[:-2] + s[-1]
    return s


_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                  "\b": "\\b", "\f": "\\f"}


class JsonWriter:
    """Compact JSON with sorted object keys and float64 numbers.

    encoding/json (state values) escapes <, >, & and U+2028/9; protojson
    (job data) does not, and puts a space after some commas at random per
    build, which is mimicked per process so clients parse instead of compare.
    """

    def __init__(self, go_escaping, comma=","):
        self.go_escaping = go_escaping
        self.comma = comma

    def string(self, s):
        out = ['"']
        for ch in s:
            o = ord(ch)
            if ch in _SHORT_ESCAPES:
                out.append(_SHORT_ESCAPES[ch])
            elif o < 0x20:
                out.append("\\u%04x" % o)
            elif self.go_escaping and (ch in "<>&" or o in (0x2028, 0x2029)):
                out.append("\\u%04x" % o)
            elif 0xD800 <= o <= 0xDFFF:
                out.append("\ufffd")
            else:
                out.append(ch)
        out.append('"')
        return "".join(out)

    def value(self, v):
        if v is None:
            return "null"
        if v is True:
            return "true"
        if v is False:
            return "false"
        if isinstance(v, (int, float)):
            return format_go_float(float(v))
        if isinstance(v, str):
            return self.string(v)
        if isinstance(v, list):
            return "[" + self.comma.join(self.value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + self.comma.join(self.string(k) + ":" + self.value(v[k])
                                         for k in sorted(v)) + "}"
        raise TypeError(f"cannot encode {type(v).__name__}")

    def message(self, pairs):
        """A protobuf message: fields in declaration order, not sorted."""
        return "{" + self.comma.join(self.string(k) + ":" + self.value(v) for k, v in pairs) + "}"


GO_JSON = JsonWriter(go_escaping=True)
PROTOJSON = JsonWriter(go_escaping=False, comma=random.choice([",", ", "]))

_MISSING = object()


def go_field(obj, name, default=_MISSING):
    """encoding/json field lookup: exact or case-insensitive, last key wins."""
    found = default
    lname = name.lower()
    for k, v in obj.items():
        if k == name or k.lower() == lname:
            found = v
    return found


def go_decode(body):
    """json.NewDecoder(body).Decode: the first JSON value; trailing bytes ignored."""
    text = body.decode("utf-8", errors="replace")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start == len(text):
        raise ValueError("EOF")
    value, _ = _go_decoder().raw_decode(text, start)
    return value


# ----------------------------------------------------------- time formats

_DURATION_UNITS = {"ns": 1, "us": 10**3, "\u00b5s": 10**3, "\u03bcs": 10**3, "ms": MS,
                   "s": NS, "m": 60 * NS, "h": 3600 * NS}
_DURATION_NUMBER = re.compile(r"([0-9]*)(?:\.([0-9]*))?")
_DURATION_UNIT = re.compile(r"[^0-9.]*")


def parse_go_duration(text):
    """time.ParseDuration: nanoseconds, or ValueError."""
    s, neg = text, False
    if s[:1] in ("-", "+"):
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    total = 0
    while s:
        m = _DURATION_NUMBER.match(s)
        whole, frac = m.group(1), m.group(2)
        if not whole and not frac:
            raise ValueError(f'time: invalid duration "{text}"')
        s = s[m.end():]
        unit = _DURATION_UNIT.match(s).group(0)
        if unit not in _DURATION_UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        s = s[len(unit):]
        scale = _DURATION_UNITS[unit]
        total += int(whole or "0") * scale
        if frac:
            total += int(frac) * scale // 10 ** len(frac)
        if total > (2**63 if neg else MAX_INT64):
            raise ValueError(f'time: invalid duration "{text}"')
    return -total if neg else total


_RFC3339 = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
                      r"(?:[.,]([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})\Z")


def parse_rfc3339(text):
    """time.Parse(time.RFC3339): Unix nanoseconds, or None."""
    m = _RFC3339.match(text)
    if not m:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    try:
        dt.datetime(y, mo, d, h, mi, s)
    except ValueError:
        return None
    zone, offset = m.group(8), 0
    if zone != "Z":
        oh, om = int(zone[1:3]), int(zone[4:6])
        if oh > 23 or om > 59:
            return None
        offset = (oh * 3600 + om * 60) * (1 if zone[0] == "+" else -1)
    frac = int((m.group(7) or "").ljust(9, "0"))
    return (calendar.timegm((y, mo, d, h, mi, s)) - offset) * NS + frac


_ATOI = re.compile(r"[+-]?[0-9]+\Z")


def _atoi(text, whole):
    if not _ATOI.match(text):
        raise ValueError(f"unsupported ISO8601 duration format: {whole}")
    return int(text)


def parse_iso8601_duration(text):
    """dapr/kit ParseISO8601Duration: (years, months, days, ns, repetitions)."""
    bad = ValueError(f"unsupported ISO8601 duration format: {text}")
    years = months = days = dur = 0
    rep, n, i = -1, len(text), 0
    if n < 2:
        raise bad
    if text[0] == "R":
        while True:
            i += 1
            if i == n or text[i] == "/":
                break
        if i - 1 < 1:
            raise bad
        rep = _atoi(text[1:i], text)
        i += 1
        if i >= n:
            return years, months, days, dur, rep
    if text[i] != "P":
        raise bad
    i += 1
    start, in_time = i, False
    while i < n:
        c = text[i]
        if c == "T":
            if start != i:
                raise bad
            in_time, start = True, i + 1
        elif c in "YWD":
            if in_time or start == i:
                raise bad
            v = _atoi(text[start:i], text)
            if c == "Y":
                years = v
            else:
                days += v * (7 if c == "W" else 1)
            start = i + 1
        elif c in "HS":
            if not in_time or start == i:
                raise bad
            dur += _atoi(text[start:i], text) * (3600 if c == "H" else 1) * NS
            start = i + 1
        elif c == "M":
            if start == i:
                raise bad
            v = _atoi(text[start:i], text)
            if in_time:
                dur += v * 60 * NS
            else:
                months = v
            start = i + 1
        i += 1
    return years, months, days, dur, rep


def add_date(ns, years, months, days):
    """time.AddDate in UTC, normalising overflowing months and days as Go does."""
    sec, frac = divmod(ns, NS)
    t = dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=sec)
    y, m0 = divmod(t.year * 12 + t.month - 1 + years * 12 + months, 12)
    base = dt.datetime(y, m0 + 1, 1, t.hour, t.minute, t.second, tzinfo=UTC)
    base += dt.timedelta(days=t.day - 1 + days)
    return calendar.timegm(base.utctimetuple()) * NS + frac


def parse_point_in_time(text, now_ns):
    """go-etcd-cron parsePointInTime: RFC 3339, else Go duration, else ISO 8601."""
    t = parse_rfc3339(text)
    if t is not None:
        return t
    try:
        return now_ns + parse_go_duration(text)
    except ValueError:
        pass
    try:
        years, months, days, dur, rep = parse_iso8601_duration(text)
    except ValueError:
        raise ValueError("due time format not recognized") from None
    if rep > 0:
        raise ValueError("repeats not supported for due time")
    try:
        return add_date(now_ns, years, months, days) + dur
    except (ValueError, OverflowError):
        raise ValueError("due time out of range") from None


_PB_DURATION = re.compile(r"(-)?([0-9]+)(?:\.([0-9]{1,9}))?s\Z")


def parse_pb_duration(text):
    """protojson google.protobuf.Duration ("1s", "1.5s"): nanoseconds."""
    m = _PB_DURATION.match(text) if isinstance(text, str) else None
    if not m or int(m.group(2)) > 315576000000:
        raise ValueError(f"invalid google.protobuf.Duration value {text!r}")
    ns = int(m.group(2)) * NS + int((m.group(3) or "").ljust(9, "0"))
    return -ns if m.group(1) else ns


def format_pb_duration(ns):
    sign = "-" if ns < 0 else ""
    s, f = divmod(abs(ns), NS)
    if f == 0:
        return f"{sign}{s}s"
    if f % MS == 0:
        return f"{sign}{s}.{f // MS:03d}s"
    if f % 1000 == 0:
        return f"{sign}{s}.{f // 1000:06d}s"
    return f"{sign}{s}.{f:09d}s"


# ------------------------------------------------------------------- cron

_STAR = 1 << 63
_MONTHS = {n: i + 1 for i, n in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
_DAYS = {n: i for i, n in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
# second, minute, hour, day of month, month, day of week
_FIELDS = [(0, 59, None), (0, 59, None), (0, 23, None), (1, 31, None), (1, 12, _MONTHS), (0, 6, _DAYS)]


def _bits(lo, hi, step):
    out = 0
    for i in range(lo, hi + 1, step):
        out |= 1 << i
    return out


def _all(bounds):
    return _bits(bounds[0], bounds[1], 1) | _STAR


def _cron_int(expr, names=None):
    if names and expr.lower() in names:
        return names[expr.lower()]
    if not _ATOI.match(expr):
        raise ValueError(f"failed to parse int from {expr}")
    v = int(expr)
    if v < 0:
        raise ValueError(f"negative number ({v}) not allowed: {expr}")
    return v


def _cron_range(expr, bounds):
    lo_b, hi_b, names = bounds
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    extra = 0
    if low_high[0] in ("*", "?"):
        start, end, extra = lo_b, hi_b, _STAR
    else:
        start = _cron_int(low_high[0], names)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _cron_int(low_high[1], names)
        else:
            raise ValueError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _cron_int(range_and_step[1])
        if len(low_high) == 1:
            end = hi_b
        if step > 1:
            extra = 0
    else:
        raise ValueError(f"too many slashes: {expr}")
    if start < lo_b:
        raise ValueError(f"beginning of range ({start}) below minimum ({lo_b}): {expr}")
    if end > hi_b:
        raise ValueError(f"end of range ({end}) above maximum ({hi_b}): {expr}")
    if start > end:
        raise ValueError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise ValueError(f"step of range should be a positive number: {expr}")
    return _bits(start, end, step) | extra


def _norm(t):
    """Resolve a wall time that a DST change skipped, as time.Date would."""
    return t.astimezone(UTC).astimezone(t.tzinfo)


def _plus(t, seconds):
    """Absolute time arithmetic (time.Add), whatever the zone does."""
    return (t.astimezone(UTC) + dt.timedelta(seconds=seconds)).astimezone(t.tzinfo)


class EverySchedule:
    """@every: a constant delay, truncated to milliseconds (dapr/kit cron.Every)."""

    def __init__(self, delay_ns):
        delay_ns = max(delay_ns, MS)
        self.delay = delay_ns - delay_ns % MS

    def next(self, t_ns):
        return t_ns + self.delay - (t_ns % NS) % MS


class CronSchedule:
    """A port of dapr/kit cron.SpecSchedule.Next (robfig/cron)."""

    def __init__(self, second, minute, hour, dom, month, dow, loc):
        self.second, self.minute, self.hour = second, minute, hour
        self.dom, self.month, self.dow, self.loc = dom, month, dow, loc

    def _day_matches(self, t):
        dom_match = bool((1 << t.day) & self.dom)
        dow_match = bool((1 << ((t.weekday() + 1) % 7)) & self.dow)
        if self.dom & _STAR or self.dow & _STAR:
            return dom_match and dow_match
        return dom_match or dow_match

    def _date(self, y, mo, d, h=0, mi=0, s=0):
        return _norm(dt.datetime(y, mo, d, h, mi, s, tzinfo=self.loc))

    def next(self, t_ns):
        loc = self.loc
        t = dt.datetime.fromtimestamp(t_ns // NS + 1, loc)  # the next whole second
        added = False
        year_limit = t.year + 5
        while True:  # WRAP
            if t.year > year_limit:
                return None
            wrapped = False
            while not (1 << t.month) & self.month:
                if not added:
                    added = True
                    t = self._date(t.year, t.month, 1)
                y, m0 = divmod(t.year * 12 + t.month, 12)
                t = self._date(y, m0 + 1, 1, t.hour, t.minute, t.second)
                if t.month == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not self._day_matches(t):
                if not added:
                    added = True
                    t = self._date(t.year, t.month, t.day)
                t = _norm(t + dt.timedelta(days=1))
                if t.hour != 0:  # midnight skipped by DST
                    t = _plus(t, (24 - t.hour) * 3600 if t.hour > 12 else -t.hour * 3600)
                if t.day == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not (1 << t.hour) & self.hour:
                if not added:
                    added = True
                    t = self._date(t.year, t.month, t.day, t.hour)
                t = _plus(t, 3600)
                if t.hour == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not (1 << t.minute) & self.minute:
                if not added:
                    added = True
                    t = t.replace(second=0, microsecond=0)
                t = _plus(t, 60)
                if t.minute == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not (1 << t.second) & self.second:
                if not added:
                    added = True
                    t = t.replace(microsecond=0)
                t = _plus(t, 1)
                if t.second == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            return calendar.timegm(t.astimezone(UTC).utctimetuple()) * NS


def _load_location(name):
    if name in ("", "UTC"):
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"provided bad location {name}") from None


def parse_schedule(spec):
    if not spec:
        raise ValueError("empty spec string")
    loc = UTC
    if spec.startswith("TZ=") or spec.startswith("CRON_TZ="):
        ws = next((k for k, c in enumerate(spec) if c.isspace()), -1)
        if ws == -1:
            raise ValueError(f"timezone prefix {spec} is not followed by a schedule")
        loc = _load_location(spec[spec.index("=") + 1:ws])
        spec = spec[ws:].strip()
    if spec.startswith("@"):
        return _parse_descriptor(spec, loc)
    fields = spec.split()
    if len(fields) != 6:
        raise ValueError(f"expected exactly 6 fields, found {len(fields)}: {fields}")
    bits = []
    for field, bounds in zip(fields, _FIELDS):
        b = 0
        for expr in (r for r in field.split(",") if r):
            b |= _cron_range(expr, bounds)
        bits.append(b)
    return CronSchedule(*bits, loc)


def _parse_descriptor(spec, loc):
    sec, minute, hour, dom, month, dow = _FIELDS
    one = lambda b: 1 << b[0]  # noqa: E731
    table = {
        "@yearly": (one(sec), one(minute), one(hour), one(dom), one(month), _all(dow)),
        "@monthly": (one(sec), one(minute), one(hour), one(dom), _all(month), _all(dow)),
        "@weekly": (one(sec), one(minute), one(hour), _all(dom), _all(month), one(dow)),
        "@daily": (one(sec), one(minute), one(hour), _all(dom), _all(month), _all(dow)),
        "@hourly": (one(sec), one(minute), _all(hour), _all(dom), _all(month), _all(dow)),
    }
    table["@annually"] = table["@yearly"]
    table["@midnight"] = table["@daily"]
    if spec in table:
        return CronSchedule(*table[spec], loc)
    if spec.startswith("@every "):
        try:
            return EverySchedule(parse_go_duration(spec[len("@every "):]))
        except ValueError as e:
            raise ValueError(f"failed to parse duration {spec}: {e}") from None
    raise ValueError(f"unrecognized descriptor: {spec}")


# ------------------------------------------------------------------- jobs

DEFAULT_POLICY = {"constant": {"interval": "1s", "maxRetries": 3}}


def valid_job_name(name):
    """The Scheduler's name rule from 1.16.17 on."""
    if name in (".", ".."):
        return False
    return not any(c in "/\\#?" or unicodedata.category(c) == "Cc" for c in name)


class Job:
    """A scheduled job and its counter, as the Scheduler keeps them in etcd.

    `spec` holds the fields as sent (shown by GET); the rest is the trigger
    state: `count` ticks done, `last_ns` the last tick's time, `attempts` the
    failed attempts of the current tick, `next_ns` when to try next.
    """

    __slots__ = ("name", "uid", "spec", "schedule", "begin_due", "begin_ns", "exp_ns",
                 "count", "last_ns", "attempts", "next_ns", "gen", "in_flight")

    def __init__(self, name, spec, begin_due, begin_ns, exp_ns):
        self.name, self.spec = name, spec
        self.uid = uuid.uuid4().hex
        self.schedule = parse_schedule(spec["schedule"]) if "schedule" in spec else None
        self.begin_due, self.begin_ns, self.exp_ns = begin_due, begin_ns, exp_ns
        self.count, self.last_ns, self.attempts, self.next_ns = 0, None, 0, None
        self.gen, self.in_flight = 0, False

    def to_dict(self):
        return {k: getattr(self, k) for k in ("name", "uid", "spec", "begin_due", "begin_ns", "exp_ns",
                                                 "count", "last_ns", "attempts", "next_ns")}

    @classmethod
    def from_dict(cls, d):
        job = cls(d["name"], d["spec"], d["begin_due"], d["begin_ns"], d["exp_ns"])
        for k in ("uid", "count", "last_ns", "attempts", "next_ns"):
            setattr(job, k, d[k])
        return job

    def policy(self):
        fp = self.spec["failurePolicy"]
        if "constant" in fp:
            c = fp["constant"]
            return ("constant", parse_pb_duration(c["interval"]) if "interval" in c else 0,
                    c.get("maxRetries"))
        if "drop" in fp:
            return ("drop",)
        return ("none",)

    def tick_time(self):
        """The nominal time of the current tick (scheduler.Next), or None."""
        repeats = self.spec.get("repeats")
        if self.schedule is None:
            return self.begin_ns if self.count < 1 else None
        if repeats is not None and self.count >= repeats:
            return None
        if self.last_ns is None:
            return self.begin_ns if self.begin_due else self.schedule.next(self.begin_ns)
        nxt = self.schedule.next(self.last_ns)
        if nxt is None or (self.exp_ns is not None and nxt > self.exp_ns):
            return None
        return nxt

    def advance(self):
        """counter.updateNext: False when the job has no tick left."""
        repeats = self.spec.get("repeats")
        if repeats is not None and self.count >= repeats:
            return False
        nxt = self.tick_time()
        if nxt is None or (self.exp_ns is not None and nxt > self.exp_ns):
            return False
        self.next_ns = nxt
        return True

    def succeeded(self):
        lt = self.tick_time()
        if lt is not None:
            self.last_ns = lt
        self.count += 1
        self.attempts = 0
        return self.advance()

    def failed(self):
        """counter.TriggerFailed: False when the job is done and deleted."""
        self.attempts += 1
        policy = self.policy()
        if policy[0] == "constant" and (policy[2] is None or policy[2] >= self.attempts):
            # Retries count from the attempt's scheduled time, not from when
            # the app answered: a slow failure is retried at once.
            self.next_ns += policy[1]
            return True
        if policy[0] == "constant":
            lt = self.tick_time()
            if lt is not None:
                self.last_ns = lt
        else:
            self.last_ns = self.next_ns
        self.count += 1
        self.attempts = 0
        return self.advance()


def _job_field(obj, *names):
    """A protojson field by its JSON or proto name; both at once is an error."""
    present = [n for n in names if n in obj]
    if len(present) > 1:
        raise ValueError(f"duplicate field {present[1]!r}")
    return obj[present[0]] if present else None


def _pb_uint32(v, field):
    if isinstance(v, str) and re.fullmatch(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?", v):
        v = float(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v) or not 0 <= v < 2**32:
        raise ValueError(f"invalid value for uint32 field {field}: {v!r}")
    return int(v)


def _no_duplicate_keys(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate field {k!r}")
        out[k] = v
    return out


def parse_job_request(body):
    """The protojson JobHTTPRequest body; ValueError becomes 400 ERR_MALFORMED_REQUEST."""
    text = body.decode("utf-8")
    obj = {} if not text.strip() else _go_decoder(_no_duplicate_keys).decode(text)
    if not isinstance(obj, dict):
        raise ValueError("a job must be a JSON object")
    req = {}
    for key, names in (("name", ("name",)), ("schedule", ("schedule",)),
                       ("dueTime", ("dueTime", "due_time")), ("ttl", ("ttl",))):
        v = _job_field(obj, *names)
        if v is not None and not isinstance(v, str):
            raise ValueError(f"invalid value for string field {key}: {v!r}")
        if v is not None:
            req[key] = v
    repeats = _job_field(obj, "repeats")
    if repeats is not None:
        req["repeats"] = _pb_uint32(repeats, "repeats")
    overwrite = _job_field(obj, "overwrite")
    if overwrite is not None and not isinstance(overwrite, bool):
        raise ValueError(f"invalid value for bool field overwrite: {overwrite!r}")
    req["overwrite"] = overwrite is True
    if "data" in obj:  # a JSON null is a Value too (NullValue)
        req["data"] = obj["data"]
    fp = _job_field(obj, "failurePolicy", "failure_policy")
    if fp is not None:
        req["failurePolicy"] = _parse_failure_policy(fp)
    return req


def _parse_failure_policy(fp):
    if not isinstance(fp, dict):
        raise ValueError("failurePolicy must be an object")
    drop, constant = _job_field(fp, "drop"), _job_field(fp, "constant")
    if drop is not None and constant is not None:
        raise ValueError("failurePolicy: more than one field of oneof policy")
    if drop is not None:
        if not isinstance(drop, dict):
            raise ValueError("failurePolicy.drop must be an object")
        return {"drop": {}}
    if constant is not None:
        if not isinstance(constant, dict):
            raise ValueError("failurePolicy.constant must be an object")
        out = {}
        interval = _job_field(constant, "interval")
        if interval is not None:
            out["interval"] = format_pb_duration(parse_pb_duration(interval))
        retries = _job_field(constant, "maxRetries", "max_retries")
        if retries is not None:
            out["maxRetries"] = _pb_uint32(retries, "maxRetries")
        return {"constant": out}
    return {}


class Scheduler:
    """Jobs, their triggers, and delivery to the app.

    One lock (the condition `cv`) guards every field. A single loop thread
    waits on `cv` until the earliest job is due and hands each due attempt
    to its own thread, so triggers run concurrently and one slow app call
    does not delay the others.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        self.cv = threading.Condition()
        self.jobs = {}
        self.heap = []
        self.seq = itertools.count()
        self.triggers = []
        self.connected = True
        # daprd connects to the Scheduler only once the app port is open.
        self.app_ready = cfg.app_port == 0
        self.app_healthy = not cfg.app_health_check
        self.stopping = False
        self.path = os.path.join(cfg.data_dir, "jobs.json") if cfg.data_dir else None
        self._load()

    # -- persistence: the Scheduler keeps jobs in etcd, so they survive restarts

    def _load(self):
        if not self.path or not os.path.exists(self.path):
            return
        with open(self.path, encoding="utf-8") as f:
            saved = json.load(f)
        with self.cv:
            for d in saved.get("jobs", []):
                job = Job.from_dict(d)
                self.jobs[job.name] = job
                self._push(job)
        log(f"loaded {len(self.jobs)} job(s) from {self.path}")

    def _persist(self):
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"jobs": [j.to_dict() for j in self.jobs.values()]}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def _push(self, job):
        # Generations are unique across jobs, so a stale heap entry of a
        # replaced job can never match its successor.
        job.gen = next(self.seq)
        heapq.heappush(self.heap, (job.next_ns, next(self.seq), job.name, job.gen))
        self.cv.notify_all()

    # -- API

    def schedule(self, name, req, err_meta):
        def fail(msg, status=500):
            raise ApiError(status, "DAPR_SCHEDULER_SCHEDULE_JOB", "failed to schedule job due to: " + msg,
                           [error_info("DAPR_SCHEDULER_SCHEDULE_JOB", err_meta)])

        if not valid_job_name(name):
            fail(f"rpc error: code = InvalidArgument desc = job name {name!r} must not contain "
                 "'/', '\\', '#', '?' or control characters, and must not be '.' or '..'")
        spec = {k: req[k] for k in ("schedule", "repeats", "dueTime", "ttl", "data") if k in req}
        spec["failurePolicy"] = req.get("failurePolicy", DEFAULT_POLICY)
        begin_due, begin_ns, exp_ns = self._validate(spec, fail)
        with self.cv:
            if name in self.jobs and not req["overwrite"]:
                fail(f"rpc error: code = AlreadyExists desc = job already exists: {name}", 409)
            job = Job(name, spec, begin_due, begin_ns, exp_ns)
            self.jobs.pop(name, None)
            # A job whose first tick is already past its ttl is deleted at once.
            if job.advance():
                self.jobs[name] = job
                self._push(job)
            self._persist()

    def _validate(self, spec, fail):
        """go-etcd-cron Builder.Parse: (begin_due, begin_ns, exp_ns) or fail()."""
        schedule, due, ttl, repeats = (spec.get(k) for k in ("schedule", "dueTime", "ttl", "repeats"))
        if schedule is None and repeats is not None and repeats > 1:
            fail("job must have a schedule to repeat")
        if repeats is not None and repeats < 1:
            fail("defined repeats must be greater than 0")
        if schedule is None and ttl is not None:
            fail("job must have a schedule to have a ttl")
        if schedule is not None:
            try:
                parse_schedule(schedule)
            except ValueError as e:
                fail(str(e))
        now = time.time_ns()
        now -= now % NS  # relative times count from the current whole second
        begin_ns = now
        if due is not None:
            try:
                begin_ns = parse_point_in_time(due, now)
            except ValueError as e:
                fail(str(e))
        exp_ns = None
        if ttl is not None:
            try:
                exp_ns = parse_point_in_time(ttl, begin_ns if due is not None else now)
            except ValueError:
                fail("ttl format not recognized")
            if due is not None and begin_ns > exp_ns:
                fail("ttl must be greater than due time")
        return due is not None, begin_ns, exp_ns

    def get(self, name):
        with self.cv:
            job = self.jobs.get(name)
            if job is None:
                return None
            spec = dict(job.spec)
        pairs = [("name", name)]
        for k in ("schedule", "repeats", "dueTime", "ttl"):
            if k in spec:
                pairs.append((k, spec[k]))
        if "data" in spec:
            pairs.append(("data", {"@type": VALUE_TYPE_URL, "value": spec["data"]}))
        pairs.append(("failurePolicy", spec["failurePolicy"]))
        return pairs

    def delete(self, name):
        with self.cv:
            if self.jobs.pop(name, None) is not None:
                self._persist()
                self.cv.notify_all()

    def snapshot(self):
        with self.cv:
            out = []
            for job in sorted(self.jobs.values(), key=lambda j: (j.next_ns, j.name)):
                item = {"name": job.name, "dueTime": job.spec.get("dueTime"),
                        "schedule": job.spec.get("schedule"), "attempts": job.attempts,
                        "count": job.count, "next": format_ns(job.next_ns), "nextNs": job.next_ns,
                        "failurePolicy": job.spec["failurePolicy"], "inFlight": job.in_flight}
                if "data" in job.spec:
                    item["data"] = job.spec["data"]
                out.append(item)
            return out

    def trigger_log(self):
        with self.cv:
            return list(self.triggers)

    # -- delivery state

    def deliverable(self):
        return self.connected and self.app_ready and self.app_healthy

    def set_connected(self, on):
        with self.cv:
            self.connected = on
            self.cv.notify_all()

    def set_app_ready(self):
        with self.cv:
            self.app_ready = True
            self.cv.notify_all()

    def set_app_healthy(self, on):
        with self.cv:
            if self.app_healthy != on:
                log(f"app is {'healthy' if on else 'unhealthy'}")
            self.app_healthy = on
            self.cv.notify_all()

    def stop(self):
        with self.cv:
            self.stopping = True
            self.cv.notify_all()

    def run(self):
        with self.cv:
            while not self.stopping:
                wait = 1.0  # bounded so a wall-clock step cannot strand a due job
                if self.deliverable():
                    now = time.time_ns()
                    while self.heap:
                        due, _, name, gen = self.heap[0]
                        job = self.jobs.get(name)
                        if job is None or job.gen != gen or job.in_flight:
                            heapq.heappop(self.heap)
                            continue
                        if due > now:
                            wait = min(wait, (due - now) / NS)
                            break
                        heapq.heappop(self.heap)
                        job.in_flight = True
                        threading.Thread(target=self._deliver, daemon=True,
                                         args=(job.uid, name, due, job.attempts + 1, job.count)).start()
                self.cv.wait(wait)

    def _deliver(self, uid, name, due_ns, attempt, tick):
        with self.cv:
            job = self.jobs.get(name)
            if job is None or job.uid != uid:
                return
            has_data, data = "data" in job.spec, job.spec.get("data")
        sent_ns = time.time_ns()
        status, error = None, None
        if not has_data:
            # daprd cannot render an empty Value, so the attempt fails before any call.
            error = "job has no data: the trigger body cannot be rendered"
        else:
            status, error = self._post(name, data)
        delivered = status is not None and (200 <= status < 300 or status == 404)
        log(f"trigger {name} attempt {attempt}: {status if status is not None else error}")
        with self.cv:
            self.triggers.append({
                "name": name, "attempt": attempt, "tick": tick,
                "scheduled": format_ns(due_ns), "scheduledNs": due_ns,
                "time": format_ns(sent_ns), "timeNs": sent_ns,
                "status": status, "error": error, "delivered": delivered})
            job = self.jobs.get(name)
            if job is None or job.uid != uid:
                return  # deleted or replaced meanwhile
            job.in_flight = False
            alive = job.succeeded() if delivered else job.failed()
            if alive:
                self._push(job)
            else:
                del self.jobs[name]
            self._persist()
            self.cv.notify_all()

    def _post(self, name, data):
        headers = {"Content-Type": "application/json"}
        if self.cfg.app_token:
            headers["dapr-api-token"] = self.cfg.app_token
        conn = http.client.HTTPConnection("127.0.0.1", self.cfg.app_port, timeout=self.cfg.trigger_timeout)
        try:
            conn.request("POST", "/job/" + name, body=PROTOJSON.value(data).encode(), headers=headers)
            resp = conn.getresponse()
            resp.read()
            return resp.status, None
        except Exception as e:  # refused, reset, timeout, bad URL: all are failed attempts
            return None, f"{type(e).__name__}: {e}"
        finally:
            conn.close()


# ------------------------------------------------------------------ state

class EtagMismatch(Exception):
    def __init__(self):
        super().__init__("possible etag mismatch. error from state store")


class StoreError(Exception):
    pass


class SetOp:
    """A state.SetRequest after key prefixing; prepare() does what doSet checks."""

    def __init__(self, key, value, etag, metadata, options):
        self.key, self.raw_value, self.etag = key, value, etag or None
        self.metadata, self.options = metadata or {}, options or {}

    def prepare(self):
        consistency = self.options.get("consistency") or ""
        concurrency = self.options.get("concurrency") or ""
        if consistency not in ("", "eventual", "strong"):
            raise StoreError(f"unrecognized consistency model '{consistency}'")
        if concurrency not in ("", "first-write", "last-write"):
            raise StoreError(f"unrecognized concurrency model '{concurrency}'")
        if not self.key:
            raise StoreError("missing key in set operation")
        self.first_write = concurrency == "first-write"
        self.value = GO_JSON.value(self.raw_value).encode()
        self.ttl = parse_ttl(self.metadata)
        return self


class DeleteOp:
    def __init__(self, key, etag):
        self.key, self.etag = key, etag or None

    def prepare(self):
        if not self.key:
            raise StoreError("missing key in delete operation")
        return self


def parse_ttl(metadata):
    """state/utils.ParseTTL: seconds, or None for no expiry."""
    val = metadata.get("ttlInSeconds", "")
    if val == "":
        return None
    if not re.fullmatch(r"[+-]?[0-9]+", val):
        raise StoreError(f"error parsing TTL: incorrect value for metadata 'ttlInSeconds': "
                         f'strconv.ParseInt: parsing "{val}": invalid syntax')
    v = int(val)
    if v < -1 or v > 2**31 - 1:
        raise StoreError("error parsing TTL: incorrect value for metadata 'ttlInSeconds': must be -1 or greater")
    return v if v > 0 else None


def _uuid(etag):
    """PostgreSQL's uuid input; a malformed ETag is an error, not a mismatch."""
    try:
        if etag.lower().startswith("urn:"):
            raise ValueError
        return uuid.UUID(etag)
    except ValueError:
        raise StoreError(f'ERROR: invalid input syntax for type uuid: "{etag}" (SQLSTATE 22P02)') from None


class MemoryStore:
    """The state table in memory: key -> (value bytes, etag, expires_ns)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rows = {}

    @staticmethod
    def _live(row, now):
        return row is not None and (row[2] is None or row[2] >= now)

    def _apply(self, rows, op, now):
        if isinstance(op, DeleteOp):
            if op.etag is None:
                rows.pop(op.key, None)
                return
            row = rows.get(op.key)  # like DELETE ... AND etag = $2: expiry not checked
            if row is None or row[1] != _uuid(op.etag):
                raise EtagMismatch()
            del rows[op.key]
            return
        expires = now + op.ttl * NS if op.ttl else None
        row = rows.get(op.key)
        if op.etag is not None:
            want = _uuid(op.etag)
            if not self._live(row, now) or row[1] != want:
                raise EtagMismatch()
        elif op.first_write and row is not None and (row[2] is None or row[2] >= now):
            raise StoreError("no item was updated")
        rows[op.key] = (op.value, uuid.uuid4(), expires)

    def set(self, op):
        self.multi([op])

    def delete(self, op):
        self.multi([op])

    def multi(self, ops):
        with self.lock:
            rows = dict(self.rows)
            now = time.time_ns()
            for op in ops:
                self._apply(rows, op.prepare(), now)
            self.rows = rows

    def get(self, key):
        with self.lock:
            row = self.rows.get(key)
            if not self._live(row, time.time_ns()):
                return None
            return row[0], str(row[1]), row[2] // NS if row[2] is not None else None

    def bulk_get(self, keys):
        with self.lock:
            now = time.time_ns()
            found = []
            for key in dict.fromkeys(keys):
                row = self.rows.get(key)
                if self._live(row, now):
                    found.append((key, row[0], str(row[1]), row[2] // NS if row[2] is not None else None))
            return found


class PgStore:
    """The state.postgresql v2 table `state`, with the component's statements."""

    def __init__(self, dsn, table="state"):
        import psycopg2
        import psycopg2.pool
        self.pg = psycopg2
        self.table = table
        self.pool = psycopg2.pool.ThreadedConnectionPool(
            1, 16, dsn, connect_timeout=5, options="-c statement_timeout=5000",
            application_name="dapr-sidecar")
        # psycopg2's pool raises when all 16 are out; daprd's pool waits.
        self.slots = threading.BoundedSemaphore(16)
        self._ensure_schema()

    def _ensure_schema(self):
        t = self.table

        def create(cur):
            cur.execute("SELECT to_regclass(%s)", (t,))
            if cur.fetchone()[0] is None:
                cur.execute(f"""CREATE TABLE IF NOT EXISTS {t} (
  key text NOT NULL PRIMARY KEY,
  value bytea NOT NULL,
  etag uuid NOT NULL DEFAULT gen_random_uuid(),
  created_at timestamp with time zone NOT NULL DEFAULT now(),
  updated_at timestamp with time zone,
  expires_at timestamp with time zone
)""")
                cur.execute(f"CREATE INDEX IF NOT EXISTS {t}_expires_at_idx ON {t} (expires_at)")
            cur.execute("CREATE TABLE IF NOT EXISTS dapr_metadata "
                        "(key text NOT NULL PRIMARY KEY, value text NOT NULL)")
            cur.execute("INSERT INTO dapr_metadata (key, value) VALUES ('migrations-state-v2-', '1') "
                        "ON CONFLICT (key) DO NOTHING")

        try:
            self._run(create)
        except StoreError:
            # Another process created the tables at the same moment: IF NOT
            # EXISTS is not safe against that, but the second look is.
            self._run(create)

    def _run(self, fn):
        with self.slots:
            return self._run_with_slot(fn)

    def _run_with_slot(self, fn):
        conn = self.pool.getconn()
        broken = False
        try:
            with conn:
                with conn.cursor() as cur:
                    return fn(cur)
        except (self.pg.OperationalError, self.pg.InterfaceError) as e:
            broken = True
            raise StoreError(str(e).strip()) from None
        except self.pg.Error as e:
            raise StoreError(str(e).strip()) from None
        finally:
            self.pool.putconn(conn, close=broken or conn.closed != 0)

    def _apply(self, cur, op):
        t = self.table
        if isinstance(op, DeleteOp):
            if op.etag is None:
                cur.execute(f"DELETE FROM {t} WHERE key = %s", (op.key,))
            else:
                cur.execute(f"DELETE FROM {t} WHERE key = %s AND etag = %s", (op.key, op.etag))
                if cur.rowcount != 1:
                    raise EtagMismatch()
            return
        expires = f"now() + interval '{op.ttl} seconds'" if op.ttl else "NULL"
        value = self.pg.Binary(op.value)
        if op.etag is not None:
            cur.execute(f"""UPDATE {t}
SET value = %s, updated_at = now(), etag = gen_random_uuid(), expires_at = {expires}
WHERE key = %s AND etag = %s AND (expires_at IS NULL OR expires_at >= now())""",
                        (value, op.key, op.etag))
            if cur.rowcount != 1:
                raise EtagMismatch()
            return
        where = " WHERE t.expires_at < now()" if op.first_write else ""
        cur.execute(f"""INSERT INTO {t} AS t (key, value, etag, expires_at)
VALUES (%s, %s, gen_random_uuid(), {expires})
ON CONFLICT (key) DO UPDATE SET
  value = EXCLUDED.value, updated_at = now(), etag = gen_random_uuid(), expires_at = {expires}{where}""",
                    (op.key, value))
        if cur.rowcount != 1:
            raise StoreError("no item was updated")

    def set(self, op):
        self.multi([op])

    def delete(self, op):
        self.multi([op])

    def multi(self, ops):
        prepared = [op.prepare() for op in ops]

        def run(cur):
            for op in prepared:
                self._apply(cur, op)

        self._run(run)

    @staticmethod
    def _row(r):
        key, value, etag, expires = r
        return key, bytes(value), etag, int(expires.timestamp()) if expires is not None else None

    def get(self, key):
        def run(cur):
            cur.execute(f"SELECT key, value, etag::text, expires_at FROM {self.table} "
                        "WHERE key = %s AND (expires_at IS NULL OR expires_at >= now())", (key,))
            return cur.fetchone()

        r = self._run(run)
        return None if r is None else self._row(r)[1:]

    def bulk_get(self, keys):
        def run(cur):
            cur.execute(f"SELECT key, value, etag::text, expires_at FROM {self.table} "
                        "WHERE key = ANY(%s) AND (expires_at IS NULL OR expires_at >= now())", (list(keys),))
            return cur.fetchall()

        return [self._row(r) for r in self._run(run)]


def _format_expiry(sec):
    return (dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%SZ")


class StateApi:
    """The daprd state endpoints (pkg/api/http/http.go) over one store."""

    def __init__(self, cfg, store):
        self.cfg, self.store = cfg, store

    def check_store(self, name):
        if name != self.cfg.state_store:
            raise ApiError(400, "ERR_STATE_STORE_NOT_FOUND", f"state store {name} is not found",
                           [error_info("DAPR_STATE_NOT_FOUND", {"appID": self.cfg.app_id})])

    def key(self, store, key):
        """GetModifiedStateKey: the store key for a client key."""
        if "||" in key:
            msg = f"input key/keyPrefix '{key}' can't contain '||'"
            raise ApiError(400, "ERR_MALFORMED_REQUEST", msg, [
                {"@type": "type.googleapis.com/google.rpc.BadRequest",
                 "field_violations": [{"field": key, "description": msg}]},
                error_info("DAPR_STATE_ILLEGAL_KEY", {}),
                {"@type": "type.googleapis.com/google.rpc.ResourceInfo", "resource_type": "state",
                 "resource_name": store, "owner": "", "description": ""}])
        p = self.cfg.key_prefix
        if p == "none":
            return key
        if p == "name":
            return f"{store}||{key}"
        if p == "appid":
            return f"{self.cfg.app_id}||{key}" if self.cfg.app_id else key
        if p == "namespace":
            return f"{self.cfg.namespace}.{self.cfg.app_id}||{key}"
        return f"{p}||{key}"

    @staticmethod
    def bare(key):
        return key.split("||")[-1]

    @staticmethod
    def malformed(e):
        return ApiError(400, "ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {e}")

    def _decode_request(self, item, delete=False):
        """A SetRequest/DeleteRequest object, with Go's type checks."""
        if item is None:
            item = {}
        if not isinstance(item, dict):
            raise self.malformed(f"expected a map, got {type(item).__name__}")
        key = go_field(item, "key", None)
        etag = go_field(item, "etag", None)
        meta = go_field(item, "metadata", None)
        options = go_field(item, "options", None)
        if key is not None and not isinstance(key, str):
            raise self.malformed("cannot unmarshal into field key of type string")
        if etag is not None and not isinstance(etag, str):
            raise self.malformed("cannot unmarshal into field etag of type string")
        if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
            raise self.malformed("cannot unmarshal into field metadata of type map[string]string")
        if options is not None:
            if not isinstance(options, dict) or any(
                    go_field(options, f, None) is not None and not isinstance(go_field(options, f), str)
                    for f in ("concurrency", "consistency")):
                raise self.malformed("cannot unmarshal into field options")
            options = {f: go_field(options, f, None) for f in ("concurrency", "consistency")}
        if delete:
            return DeleteOp(key or "", etag)
        return SetOp(key or "", go_field(item, "value", None), etag, dict(meta or {}), options)

    def save(self, store, body, qmeta):
        self.check_store(store)
        try:
            items = go_decode(body)
        except ValueError as e:
            raise self.malformed(e) from None
        if items is None:
            items = []
        if not isinstance(items, list):
            raise self.malformed("cannot unmarshal object into Go value of type []state.SetRequest")
        if not items:
            return
        ops = [self._decode_request(i) for i in items]
        for op in ops:
            if not op.key:
                raise ApiError(400, "ERR_MALFORMED_REQUEST", '"key" is a required field')
            op.metadata.update(qmeta)
            op.key = self.key(store, op.key)
        # Items are written one by one, so a failure leaves the others written.
        errors = []
        for op in ops:
            try:
                self.store.set(op)
            except (EtagMismatch, StoreError) as e:
                errors.append(e)
        if errors:
            status = 409 if any(isinstance(e, EtagMismatch) for e in errors) else 500
            raise ApiError(status, "ERR_STATE_SAVE", f"failed saving state in state store {store}: "
                           + "\n".join(str(e) for e in errors))

    def get(self, store, key):
        self.check_store(store)
        k = self.key(store, key)
        try:
            row = self.store.get(k)
        except StoreError as e:
            raise ApiError(500, "ERR_STATE_GET", f"fail to get {key} from state store {store}: {e}") from None
        if row is None:
            return None
        value, etag, expires = row
        headers = {"Content-Type": "application/json", "ETag": etag}
        if expires is not None:
            headers["metadata.ttlExpireTime"] = _format_expiry(expires)
        return value, headers

    def delete(self, store, key, if_match):
        self.check_store(store)
        op = DeleteOp(self.key(store, key), if_match)
        try:
            self.store.delete(op)
        except EtagMismatch as e:
            raise ApiError(409, "ERR_STATE_DELETE", f"failed deleting state with key {key}: {e}") from None
        except StoreError as e:
            raise ApiError(500, "ERR_STATE_DELETE", f"failed deleting state with key {key}: {e}") from None

    def bulk(self, store, body):
        self.check_store(store)
        try:
            req = go_decode(body)
        except ValueError as e:
            raise self.malformed(e) from None
        req = req if req is not None else {}
        keys = go_field(req, "keys", None) if isinstance(req, dict) else _MISSING
        if keys is _MISSING or (keys is not None and not (
                isinstance(keys, list) and all(isinstance(k, str) for k in keys))):
            raise self.malformed("cannot unmarshal into Go value of type http.BulkGetRequest")
        parallelism = go_field(req, "parallelism", None)
        if parallelism is not None and (isinstance(parallelism, bool) or not isinstance(parallelism, (int, float))
                                        or parallelism != int(parallelism)):
            raise self.malformed("cannot unmarshal into field parallelism of type int")
        keys = keys or []
        if not keys:
            return "[]\n"
        stored = [self.key(store, k) for k in keys]
        try:
            found = self.store.bulk_get(stored)
        except StoreError as e:
            raise ApiError(500, "ERR_STATE_BULK_GET", str(e)) from None
        items = []
        seen = set()
        for key, value, etag, expires in found:
            seen.add(key)
            parts = [f'"key":{GO_JSON.string(self.bare(key))}']
            try:
                json.loads(value)
                parts.append(f'"data":{value.decode()}')
            except ValueError:
                parts.append(f'"error":{GO_JSON.string("stored value is not JSON")}')
            parts.append(f'"etag":{GO_JSON.string(etag)}')
            if expires is not None:
                parts.append(f'"metadata":{{"ttlExpireTime":"{_format_expiry(expires)}"}}')
            items.append("{" + ",".join(parts) + "}")
        for key in stored:
            if key not in seen:
                items.append(f'{{"key":{GO_JSON.string(self.bare(key))}}}')
        return "[" + ",".join(items) + "]\n"

    def transaction(self, store, body, qmeta):
        self.check_store(store)
        try:
            req = go_decode(body)
        except ValueError as e:
            raise self.malformed(e) from None
        req = req if req is not None else {}
        if not isinstance(req, dict):
            raise self.malformed("cannot unmarshal into Go value of type http.stateTransactionRequestBody")
        operations = go_field(req, "operations", None) or []
        if not isinstance(operations, list) or not all(isinstance(o, dict) or o is None for o in operations):
            raise self.malformed("cannot unmarshal into field operations")
        if not operations:
            return
        ops = []
        for o in operations:
            o = o or {}
            kind = go_field(o, "operation", "")
            if not isinstance(kind, str):
                raise self.malformed("cannot unmarshal into field operation of type string")
            request = go_field(o, "request", None)
            if kind == "upsert":
                op = self._decode_request(request)
                op.metadata.update(qmeta)
            elif kind == "delete":
                op = self._decode_request(request, delete=True)
            else:
                raise ApiError(400, "ERR_NOT_SUPPORTED_STATE_OPERATION", f"operation type {kind} not supported")
            if op.key:
                op.key = self.key(store, op.key)
            ops.append(op)
        try:
            self.store.multi(ops)
        except (EtagMismatch, StoreError) as e:
            raise ApiError(500, "ERR_STATE_TRANSACTION", f"error while executing state transaction: {e}") from None


# ------------------------------------------------------------------- HTTP

class Sidecar:
    """Everything a request handler needs: config, scheduler, state."""

    def __init__(self, cfg, store):
        self.cfg = cfg
        self.scheduler = Scheduler(cfg)
        self.state = StateApi(cfg, store)
        self.calls = []
        self.calls_lock = threading.Lock()
        self.stop_event = threading.Event()
        self.err_meta = {"appID": cfg.app_id, "namespace": cfg.namespace}

    def app_port_open(self):
        try:
            socket.create_connection(("127.0.0.1", self.cfg.app_port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def watch_app_port(self):
        while not self.stop_event.is_set() and not self.scheduler.app_ready:
            if self.app_port_open():
                self.scheduler.set_app_ready()
                log(f"app port {self.cfg.app_port} is open")
            else:
                self.stop_event.wait(0.05)

    def watch_app_health(self):
        failures = 0
        url_path = self.cfg.app_health_path
        while not self.stop_event.is_set():
            ok = False
            conn = http.client.HTTPConnection("127.0.0.1", self.cfg.app_port, timeout=0.5)
            try:
                conn.request("GET", url_path)
                resp = conn.getresponse()
                resp.read()
                ok = 200 <= resp.status < 300
            except Exception:
                ok = False
            finally:
                conn.close()
            failures = 0 if ok else failures + 1
            if ok:
                self.scheduler.set_app_healthy(True)
            elif failures >= self.cfg.app_health_threshold:
                self.scheduler.set_app_healthy(False)
            self.stop_event.wait(self.cfg.app_health_interval)

    def record_call(self, method, path, query, status):
        with self.calls_lock:
            self.calls.append({"method": method, "path": path, "query": query, "status": status,
                               "time": format_ns(time.time_ns())})


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "dapr-sidecar"

    def log_message(self, fmt, *args):
        log(f"{self.address_string()} {fmt % args}")

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self):
        sc = self.server.sidecar
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self._send(400, b"bad request body", {"Content-Type": "text/plain"})
            return
        split = urllib.parse.urlsplit(self.path)
        path, query = split.path, split.query
        control = path.startswith("/__control/")
        try:
            status, payload, headers = self._route(sc, self.command, path, query, body)
        except ApiError as e:
            status, payload, headers = e.status, e.body(), {"Content-Type": "application/json"}
        except Exception:
            log("handler error:\n" + traceback.format_exc())
            status = 500
            payload = ApiError(500, "ERR_INTERNAL", "internal error in the sidecar").body()
            headers = {"Content-Type": "application/json"}
        if not control:
            sc.record_call(self.command, path, query, status)
        self._send(status, payload, headers)

    def _send(self, status, payload, headers):
        if isinstance(payload, str):
            payload = payload.encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        # A 204 carries no Content-Length (RFC 9110 §8.6, and daprd sends
        # none); everything else states its length so keep-alive holds.
        if status != 204:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if status != 204 and payload:
            self.wfile.write(payload)
        self.wfile.flush()

    def _route(self, sc, method, path, query, body):
        cfg = sc.cfg
        if path.startswith("/__control/"):
            return self._control(sc, method, path)
        if cfg.api_token and not (method == "GET" and path in HEALTH_PATHS):
            given = self.headers.get("dapr-api-token", "")
            if not hmac.compare_digest(given.encode(), cfg.api_token.encode()):
                return 401, b"invalid api token", {"Content-Type": "text/plain; charset=utf-8"}
        segments = path.split("/")
        if path == "/v1.0/healthz" and method == "GET":
            if sc.scheduler.app_ready or sc.app_port_open():
                sc.scheduler.set_app_ready()
                return 204, b"", {}
            raise ApiError(500, "ERR_HEALTH_NOT_READY", "dapr is not ready: [app channel]")
        if path == "/v1.0/healthz/outbound" and method == "GET":
            return 204, b"", {}
        if len(segments) == 4 and segments[1] == "v1.0-alpha1" and segments[2] == "jobs":
            return self._jobs(sc, method, urllib.parse.unquote(segments[3]), body)
        if len(segments) >= 4 and segments[1] == "v1.0" and segments[2] == "state":
            return self._state(sc, method, segments, query, body)
        raise ApiError(404, "ERR_NOT_FOUND", f"no route for {method} {path}")

    def _jobs(self, sc, method, name, body):
        meta = sc.err_meta
        if method not in ("POST", "GET", "DELETE"):
            raise ApiError(405, "ERR_METHOD_NOT_ALLOWED", f"method {method} not allowed")
        if method == "POST":
            try:
                req = parse_job_request(body)
            except (ValueError, UnicodeDecodeError) as e:
                raise ApiError(400, "ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {e}") from None
            if req.get("name"):
                raise ApiError(400, "DAPR_SCHEDULER_JOB_NAME", "Set the job name in the url only",
                               [error_info("DAPR_SCHEDULER_JOB_NAME", {"appID": sc.cfg.app_id})])
        if not name.strip():
            raise ApiError(400, "DAPR_SCHEDULER_JOB_NAME_EMPTY", "Name is empty",
                           [error_info("DAPR_SCHEDULER_JOB_NAME_EMPTY", meta)])
        if method == "POST":
            if "schedule" not in req and "dueTime" not in req:
                raise ApiError(400, "DAPR_SCHEDULER_SCHEDULE_EMPTY", "Schedule is empty",
                               [error_info("DAPR_SCHEDULER_SCHEDULE_EMPTY", meta)])
            sc.scheduler.schedule(name, req, meta)
            return 204, b"", {}
        if method == "GET":
            pairs = sc.scheduler.get(name) if valid_job_name(name) else None
            if pairs is None:
                raise ApiError(500, "DAPR_SCHEDULER_GET_JOB", "failed to get job due to: rpc error: "
                               f"code = NotFound desc = job not found: {name}",
                               [error_info("DAPR_SCHEDULER_GET_JOB", meta)])
            return 200, PROTOJSON.message(pairs), {"Content-Type": "application/json"}
        if not valid_job_name(name):
            raise ApiError(500, "DAPR_SCHEDULER_DELETE_JOB", "failed to delete job due to: rpc error: "
                           f"code = InvalidArgument desc = invalid job name: {name}",
                           [error_info("DAPR_SCHEDULER_DELETE_JOB", meta)])
        sc.scheduler.delete(name)
        return 204, b"", {}

    def _state(self, sc, method, segments, query, body):
        store = urllib.parse.unquote(segments[3])
        rest = segments[4:]
        qmeta = {k[len("metadata."):]: v[0] for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items()
                 if k.startswith("metadata.")}
        api = sc.state
        if not rest and method in ("POST", "PUT"):
            api.save(store, body, qmeta)
            return 204, b"", {}
        if len(rest) == 1 and rest[0] == "bulk" and method in ("POST", "PUT"):
            return 200, api.bulk(store, body), {"Content-Type": "application/json"}
        if len(rest) == 1 and rest[0] == "transaction" and method in ("POST", "PUT"):
            api.transaction(store, body, qmeta)
            return 204, b"", {}
        if len(rest) == 1 and method == "GET":
            found = api.get(store, urllib.parse.unquote(rest[0]))
            if found is None:
                return 204, b"", {}
            return 200, found[0], found[1]
        if len(rest) == 1 and method == "DELETE":
            api.delete(store, urllib.parse.unquote(rest[0]), self.headers.get("If-Match"))
            return 204, b"", {}
        raise ApiError(404 if len(rest) > 1 else 405, "ERR_NOT_FOUND", f"no route for {method} {self.path}")

    def _control(self, sc, method, path):
        js = {"Content-Type": "application/json"}
        if method == "GET" and path == "/__control/jobs":
            return 200, json.dumps(sc.scheduler.snapshot()), js
        if method == "GET" and path == "/__control/triggers":
            return 200, json.dumps(sc.scheduler.trigger_log()), js
        if method == "GET" and path == "/__control/calls":
            with sc.calls_lock:
                return 200, json.dumps(sc.calls), js
        if method == "POST" and path == "/__control/disconnect":
            sc.scheduler.set_connected(False)
            return 204, b"", {}
        if method == "POST" and path == "/__control/connect":
            sc.scheduler.set_connected(True)
            return 204, b"", {}
        raise ApiError(404, "ERR_NOT_FOUND", f"no control route {method} {path}")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


# ------------------------------------------------------------------- main

def parse_args(argv):
    p = argparse.ArgumentParser(description="Stand-in Dapr sidecar (daprd 1.16) for tests.")
    p.add_argument("--port", type=int, default=0, help="HTTP port on 127.0.0.1 (0: pick a free one)")
    p.add_argument("--app-port", type=int, default=0, help="the app's port (0: no app; jobs stay staged)")
    p.add_argument("--app-id", default="todo-server")
    p.add_argument("--namespace", default="default")
    p.add_argument("--api-token", default=os.environ.get("DAPR_API_TOKEN", ""),
                   help="required in the dapr-api-token header (default: $DAPR_API_TOKEN)")
    p.add_argument("--app-token", default=os.environ.get("APP_API_TOKEN", ""),
                   help="sent to the app in dapr-api-token (default: $APP_API_TOKEN)")
    p.add_argument("--app-health-check", action="store_true",
                   help="poll the app's health path; jobs wait while it fails")
    p.add_argument("--app-health-path", default="/health")
    p.add_argument("--app-health-interval", type=float, default=0.5, help="seconds between probes")
    p.add_argument("--app-health-threshold", type=int, default=1,
                   help="failed probes before the app counts as unhealthy (daprd's default is 3)")
    p.add_argument("--trigger-timeout", type=float, default=5.0, help="seconds before a job trigger fails")
    p.add_argument("--data-dir", default="", help="keep jobs in <dir>/jobs.json across restarts")
    p.add_argument("--state-store", default="statestore", help="the state store's component name")
    p.add_argument("--key-prefix", default="appid", help="keyPrefix: appid, name, namespace, none or a string")
    p.add_argument("--pg-dsn", default="", help="keep state in this PostgreSQL database (else in memory)")
    cfg = p.parse_args(argv)
    if cfg.app_health_check and not cfg.app_port:
        p.error("--app-health-check needs --app-port")
    if cfg.app_health_threshold < 1 or cfg.app_health_interval <= 0 or cfg.trigger_timeout <= 0:
        p.error("--app-health-threshold, --app-health-interval and --trigger-timeout must be positive")
    return cfg


def main(argv):
    cfg = parse_args(argv)
    if cfg.data_dir:
        os.makedirs(cfg.data_dir, exist_ok=True)
    try:
        store = PgStore(cfg.pg_dsn) if cfg.pg_dsn else MemoryStore()
    except Exception as e:
        log(f"cannot open the state store: {e}")
        return 1
    sidecar = Sidecar(cfg, store)
    server = Server(("127.0.0.1", cfg.port), Handler)
    server.sidecar = sidecar

    def on_signal(signum, _frame):
        sidecar.stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    threads = [threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True),
               threading.Thread(target=sidecar.scheduler.run, daemon=True)]
    if cfg.app_port:
        threads.append(threading.Thread(target=sidecar.watch_app_port, daemon=True))
    if cfg.app_health_check:
        threads.append(threading.Thread(target=sidecar.watch_app_health, daemon=True))
    for t in threads:
        t.start()
    print(f"dapr-sidecar listening on 127.0.0.1:{server.server_address[1]}", flush=True)

    while not sidecar.stop_event.wait(0.2):
        pass
    log("shutting down")
    sidecar.scheduler.stop()
    server.shutdown()
    server.server_close()
    sys.stdout.flush()
    sys.stderr.flush()
    # Trigger threads may be waiting on the app; jobs are already on disk.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
