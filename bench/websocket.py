#!/usr/bin/python3
"""WebSocket benchmark against a running server (started by bench/websocket.sh).

usage: websocket.py PORT SECRET_TOKENS_FILE PHASE [args]
  steady N_SOCKETS N_USERS RATE SECONDS   commit -> frame latency at a steady write rate
  idle N_SOCKETS                          open N idle sockets, print when done, wait for EOF on stdin
Prints one JSON line. Latency is the receive time minus the event's `time`
(set just before commit), on the same clock.
"""
import asyncio
import http.client
import json
import sys
import time
from datetime import datetime

import websockets

PORT = int(sys.argv[1])
TOKENS = [t.strip() for t in open(sys.argv[2]) if t.strip()]
PHASE = sys.argv[3]


def event_time(ev):
    return datetime.fromisoformat(ev["time"].replace("Z", "+00:00")).timestamp()


def pct(values, p):
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p * len(values)))] * 1000, 2) if values else None


async def open_sockets(n, tokens):
    socks = []
    for i in range(n):
        ws = await websockets.connect(f"ws://127.0.0.1:{PORT}/api/v1/ws?access_token={tokens[i % len(tokens)]}",
                                      max_queue=None, ping_interval=None, open_timeout=30)
        socks.append(ws)
    return socks


def writer(token, count, rate):
    conn = http.client.HTTPConnection("127.0.0.1", PORT)
    body = json.dumps({"title": "bench"})
    start = time.perf_counter()
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        conn.request("POST", "/api/v1/tasks", body, {"Authorization": f"Bearer {token(i)}",
                                                     "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()


async def collect(ws, latencies, counter):
    try:
        async for msg in ws:
            now = time.time()
            ev = json.loads(msg)
            if "sequence" in ev:
                latencies.append(now - event_time(ev))
                counter[0] += 1
    except websockets.ConnectionClosed:
        pass


async def steady(n, users, rate, seconds):
    tokens = TOKENS[:users]
    socks = await open_sockets(n, tokens)
    latencies, counter = [], [0]
    tasks = [asyncio.create_task(collect(ws, latencies, counter)) for ws in socks]
    await asyncio.sleep(0.5)
    loop = asyncio.get_running_loop()
    count = int(rate * seconds)
    t0 = time.perf_counter()
    await loop.run_in_executor(None, writer, lambda i: tokens[i % len(tokens)], count, rate)
    expected = count * (n // users)
    deadline = time.perf_counter() + 10
    while counter[0] < expected and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - t0
    for ws in socks:
        await ws.close()
    for t in tasks:
        t.cancel()
    print(json.dumps({"phase": "steady", "sockets": n, "users": users, "writes_per_s": rate, "frames": counter[0],
                      "frames_expected": expected, "frames_per_s": round(counter[0] / elapsed),
                      "p50_ms": pct(latencies, 0.5), "p99_ms": pct(latencies, 0.99)}))


async def idle(n):
    socks = await open_sockets(n, TOKENS)
    print(json.dumps({"phase": "idle", "sockets": len(socks)}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for ws in socks:
        await ws.close()


args = [int(a) if a.isdigit() else float(a) for a in sys.argv[4:]]
asyncio.run({"steady": steady, "idle": idle}[PHASE](*[int(a) for a in args]))
