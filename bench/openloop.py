#!/usr/bin/python3
"""Open-loop load: sends requests at a fixed rate whatever the latency, and
measures each from its scheduled send time (no coordinated omission).

usage: openloop.py PORT RATE SECONDS TOKENS_FILE
Prints one JSON line: offered rate, achieved rate, p50/p90/p99/max in ms, errors.
"""
import asyncio
import json
import sys
import time

PORT, RATE, SECONDS, TOKENS = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
BODY = b'{"title":"Water the plants","priority":"high","tags":["home","weekly"],"due_at":"2026-03-02T17:00:00Z"}'
CONNECTIONS = 64


def request(token):
    return (b"POST /api/v1/tasks HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer " + token +
            b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(BODY)).encode() +
            b"\r\n\r\n" + BODY)


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return status


async def main():
    tokens = [t.strip().encode() for t in open(TOKENS) if t.strip()]
    queue = asyncio.Queue()
    latencies, errors = [], 0
    total = int(RATE * SECONDS)

    async def worker(i):
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
        while True:
            item = await queue.get()
            if item is None:
                break
            scheduled, n = item
            writer.write(request(tokens[n % len(tokens)]))
            status = await read_response(reader)
            if status != 201:
                errors += 1
            latencies.append(time.perf_counter() - scheduled)
        writer.close()

    workers = [asyncio.create_task(worker(i)) for i in range(CONNECTIONS)]
    start = time.perf_counter()
    for n in range(total):
        scheduled = start + n / RATE
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((scheduled, n))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p):
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)

    print(json.dumps({"offered_rps": RATE, "achieved_rps": round(len(latencies) / elapsed, 1),
                      "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99),
                      "max_ms": round(latencies[-1] * 1000, 2), "errors": errors}))


asyncio.run(main())
