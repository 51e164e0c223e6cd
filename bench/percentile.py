#!/usr/bin/python3
"""Percentiles of a Prometheus histogram between two scrapes.

usage: percentile.py METRIC BEFORE_FILE AFTER_FILE
Prints JSON: count and p50/p90/p99 in ms, interpolated within buckets.
"""
import json
import re
import sys

metric, before_file, after_file = sys.argv[1:4]


def buckets(path):
    out = {}
    for line in open(path):
        m = re.match(rf'^{metric}_bucket\{{.*le="([^"]+)"\}} (\S+)$', line)
        if m:
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            out[le] = out.get(le, 0) + float(m.group(2))
    return out


b, a = buckets(before_file), buckets(after_file)
bounds = sorted(a)
delta = [a[x] - b.get(x, 0) for x in bounds]
total = delta[-1] if delta else 0


def pct(p):
    if total == 0:
        return None
    want = p * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in zip(bounds, delta):
        if count >= want:
            if bound == float("inf"):
                return f">{prev_bound * 1000:g}"
            frac = (want - prev_count) / max(count - prev_count, 1e-9)
            return round((prev_bound + (bound - prev_bound) * frac) * 1000, 2)
        prev_bound, prev_count = bound, count
    return None


print(json.dumps({"count": int(total), "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99)}))
