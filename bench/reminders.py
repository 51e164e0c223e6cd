#!/usr/bin/python3
"""Reminder benchmark driver against a running server (bench/reminders.sh).

usage: reminders.py PORT TOKENS_FILE PHASE [args]
  create N FROM_S SPAN_S       N reminders (10 per task, over the tokens' users)
                               with fire_at spread evenly over [now+FROM_S, now+FROM_S+SPAN_S];
                               prints {"created", "seconds"}
  burst N LEAD_S               N reminders all due in the same second, LEAD_S from now,
                               one WebSocket per user listening; prints when the
                               last due frame arrived, counted from that second
"""
import asyncio
import concurrent.futures
import datetime
import http.client
import json
import sys
import time

PORT = int(sys.argv[1])
TOKENS = [t.strip() for t in open(sys.argv[2]) if t.strip()]
PHASE = sys.argv[3]


def iso(t):
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def create_all(times):
    """Tasks of 10 reminders each, from 8 threads with a connection each."""
    batches = [times[i:i + 10] for i in range(0, len(times), 10)]

    def worker(k):
        conn = http.client.HTTPConnection("127.0.0.1", PORT)
        made = 0
        for j in range(k, len(batches), 8):
            token = TOKENS[j % len(TOKENS)]
            body = json.dumps({"title": f"bench {j}", "reminders": [{"at": iso(t)} for t in batches[j]]})
            conn.request("POST", "/api/v1/tasks", body, {"authorization": f"Bearer {token}",
                                                           "content-type": "application/json"})
            r = conn.getresponse()
            r.read()
            if r.status != 201:
                raise SystemExit(f"create answered {r.status}")
            made += len(batches[j])
        return made

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        return sum(ex.map(worker, range(8)))


def create(n, start, span):
    now = time.time()
    times = [now + start + span * i / n for i in range(n)]
    t0 = time.monotonic()
    made = create_all(times)
    print(json.dumps({"created": made, "seconds": round(time.monotonic() - t0, 1)}))


async def burst(n, lead):
    import websockets
    due = int(time.time()) + lead
    users = TOKENS[:100]
    socks = [await websockets.connect(f"ws://127.0.0.1:{PORT}/api/v1/ws?access_token={t}", max_queue=None,
                                      ping_interval=None) for t in users]
    # Spread over the second's first half so all are due "in the same second".
    times = [due + 0.5 * i / n for i in range(n)]
    loop = asyncio.get_running_loop()
    old = time.time()
    await loop.run_in_executor(None, create_all_for, times, users)
    created_in = time.time() - old
    got = 0
    last = 0.0
    deadline = due + 30

    async def read(ws):
        nonlocal got, last
        while got < n and time.time() < deadline:
            try:
                frame = await asyncio.wait_for(ws.recv(), timeout=max(0.1, deadline - time.time()))
            except asyncio.TimeoutError:
                return
            if json.loads(frame).get("type") == "com.todo.reminder.due":
                got += 1
                last = time.time()

    await asyncio.gather(*(read(ws) for ws in socks))
    for ws in socks:
        await ws.close()
    print(json.dumps({"due": n, "received": got, "created_seconds": round(created_in, 1),
                      "last_frame_after_s": round(last - due, 3) if got else None}))


def create_all_for(times, users):
    global TOKENS
    TOKENS = users
    return create_all(times)


if PHASE == "create":
    create(int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]))
elif PHASE == "burst":
    asyncio.run(burst(int(sys.argv[4]), int(sys.argv[5])))
else:
    raise SystemExit(__doc__)
