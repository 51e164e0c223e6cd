#!/usr/bin/env python3
"""The fault soak: mixed load from several users while the server is killed
with SIGKILL every minute, PostgreSQL is stopped the hard way once, and the
Kafka broker goes away twice; then a checker proves that nothing acknowledged
was lost and nothing half-done appeared.

Loopback only and bounded in time. Everything runs here: a private
PostgreSQL (PrivatePostgres, its own data directory), the standalone broker
(`todo-server broker --control`, librdkafka's mock cluster, which outlives
each server), the server itself, one load thread per user over keep-alive
HTTP, WebSocket clients that resume after every disconnect, and a kcat
consumer per topic that follows the broker throughout (the mock broker keeps
only the newest few MiB of each partition, so reading the topics once at the
end would not see the early records).

usage: soak.py [--duration 600] [--kill-every 60] [--users 8] [--rate 20]
               [--ws-per-user 2] [--self-test]

--self-test: after the checks pass, damage copies of what was read (drop an
acknowledged task, an event, a Kafka record, a WebSocket frame; duplicate an
activity entry; open a second occurrence of a series) and require each
check to catch its damage. Exit status 0 only if every check passed.
"""
import argparse
import asyncio
import collections
import copy
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
os.environ.setdefault("TODO_BINARY", os.path.join(ROOT, "build", "todo-server"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

import websockets  # noqa: E402  (python3-websockets)

import event_contract  # noqa: E402
from harness import BINARY, PrivatePostgres, free_port  # noqa: E402
from test_events import Broker, parse_records, topic_partitions  # noqa: E402

SECRET = "soak-secret-0123456789abcdefghijklmnopqrstuvwxyz"
TASK_TYPES = ("created", "updated", "completed", "reopened", "deleted")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------
# The parts under test and the faults done to them.

class Service:
    """The server on a fixed port, so clients find it again after each restart."""

    def __init__(self, env, log_path):
        self.env = env
        self.port = int(env["PORT"])
        self.log_path = log_path
        self.proc = None

    def start(self):
        with open(self.log_path, "a") as out:
            self.proc = subprocess.Popen([BINARY], env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode} while starting")
            if request(self.port, "GET", "/health", timeout=1)[0] == 200:
                return
            time.sleep(0.05)
        raise RuntimeError("the server did not answer /health within 30 s")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def exited_on_its_own(self):
        return self.proc.poll() is not None

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "timeout"


def request(port, method, path, body=None, token=None, headers=None, timeout=5, conn=None):
    """One request; (status, headers, parsed body). Status 0: no answer."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        raw = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        parsed = None
        if raw and hdrs.get("content-type", "").startswith(("application/json", "application/problem+json")):
            parsed = json.loads(raw)
        return r.status, hdrs, parsed
    except (OSError, http.client.HTTPException, ValueError):
        conn.close()
        return 0, {}, None
    finally:
        if own:
            conn.close()


class Chaos(threading.Thread):
    """Runs the fault schedule: [(seconds from start, name)]."""

    def __init__(self, soak, schedule):
        super().__init__(daemon=True)
        self.soak = soak
        self.schedule = sorted(schedule)
        self.done = []
        self.error = None

    def run(self):
        try:
            for at, action in self.schedule:
                delay = self.soak.t0 + at - time.monotonic()
                if self.soak.stop.wait(max(0.0, delay)):
                    return
                getattr(self, action)()
                self.done.append((round(time.monotonic() - self.soak.t0, 1), action))
        except Exception as e:  # noqa: BLE001 - reported as a failure of the run
            self.error = repr(e)
            log(f"fault schedule failed: {e!r}")

    def kill(self):
        s = self.soak.server
        if s.exited_on_its_own():
            raise RuntimeError(f"the server had exited with {s.proc.returncode} before the kill")
        s.kill9()
        self.soak.kills += 1
        log(f"kill -9 #{self.soak.kills}")
        s.start()

    def pg_down(self):
        log("PostgreSQL: immediate stop")
        self.soak.pg.crash()

    def pg_up(self):
        self.soak.pg.start()
        self.soak.pg_restarts += 1
        log("PostgreSQL: started again (crash recovery)")

    def broker_down(self):
        assert self.soak.broker.control("down 1") == "ok"
        log("broker: down")

    def broker_up(self):
        assert self.soak.broker.control("up 1") == "ok"
        self.soak.broker_outages += 1
        log("broker: up")


class KafkaFollower(threading.Thread):
    """kcat consuming one partition from its first offset for the whole run.
    kcat ends when every broker is down, so it is started again after the
    last offset it printed."""

    def __init__(self, bootstrap, topic, partition):
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.partition = bootstrap, topic, partition
        self.lines = []
        self.ids = set()  # event ids read, kept as they arrive: polled each second at the end
        self.next = 0
        self.restarts = 0
        self.halt = threading.Event()
        self.proc = None
        self.start()

    def run(self):
        while not self.halt.is_set():
            self.proc = subprocess.Popen(["kcat", "-b", self.bootstrap, "-C", "-t", self.topic,
                                          "-p", str(self.partition), "-o", str(self.next), "-J", "-q", "-u"],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            for line in self.proc.stdout:
                if line.strip():
                    self.lines.append(line)
                    rec = json.loads(line)
                    self.ids.add(json.loads(rec["payload"])["id"])
                    self.next = rec["offset"] + 1
            self.proc.wait()
            self.proc.stdout.close()
            if not self.halt.wait(0.5):
                self.restarts += 1

    def stop(self):
        self.halt.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
        self.join(10)


# ---------------------------------------------------------------------------
# Load: one thread per user, and its record of what was acknowledged.

class UserLoad(threading.Thread):
    def __init__(self, soak, user, token, rate, seed):
        super().__init__(daemon=True)
        self.soak, self.user, self.token = soak, user, token
        self.interval = 1.0 / rate
        self.rng = random.Random(seed)
        self.conn = None
        self.open = {}     # id -> recurring
        self.done = set()  # completed one-off tasks, to reopen
        self.resync = False
        self.acked = []    # {"op", "id", "task", "next"}
        self.keys = {}     # idempotency key -> acknowledged task id, or None
        self.requests = self.writes = self.unknown = self.replayed = self.gone = 0
        self.statuses = collections.Counter()
        self.unexpected = []

    def call(self, method, path, body=None, headers=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.soak.port, timeout=5)
        self.requests += 1
        st, h, b = request(self.soak.port, method, path, body, self.token, headers, conn=self.conn)
        self.statuses[st] += 1
        if st == 0:
            self.conn = None
        return st, h, b

    def run(self):
        while not self.soak.stop.is_set():
            started = time.monotonic()
            if self.resync:
                self.do_resync()
            else:
                self.step()
            rest = self.interval - (time.monotonic() - started)
            if rest > 0:
                self.soak.stop.wait(rest)

    def step(self):
        r = self.rng.random()
        one_offs = [i for i, rec in self.open.items() if not rec]
        if len(self.open) < 6 or r < 0.30:
            self.create()
        elif r < 0.50:
            self.patch(self.rng.choice(list(self.open) + list(self.done)))
        elif r < 0.72:
            self.complete(self.rng.choice(list(self.open)))
        elif r < 0.78 and self.done:
            self.reopen(self.rng.choice(sorted(self.done)))
        elif r < 0.90 and (one_offs or self.done):
            self.delete(self.rng.choice(one_offs + sorted(self.done)))
        else:
            self.read()

    def definite(self, st):
        return st != 0 and st < 500

    def lost_track(self, tid, unknown=True):
        """Forget what we believed of the task and read the open ones back."""
        self.unknown += unknown
        self.open.pop(tid, None)
        self.done.discard(tid)
        self.resync = True

    def check_answer(self, st, body, want, what):
        if st == want:
            return True
        if st == 404:  # an earlier unacknowledged delete went through
            return False
        self.unexpected.append(f"{what}: {st} {body}")
        return False

    def create(self):
        key = str(uuid.uuid4())
        recurring = self.rng.random() < 0.4
        body = {"title": f"soak {key}", "priority": self.rng.choice(["none", "low", "high"]),
                "tags": self.rng.sample(["home", "work", "soak", "x"], 2)}
        if recurring:
            body["due_at"] = "2027-01-04T09:00:00Z"
            body["timezone"] = "Europe/Berlin"
            body["recurrence"] = {"every": "day"}
        self.keys[key] = None
        self.writes += 1
        # Retried with the same key until the answer is definite: the retry
        # either finds the first attempt committed (a replay) or makes it.
        while True:
            st, h, b = self.call("POST", "/api/v1/tasks", body, {"Idempotency-Key": key})
            if self.definite(st) or self.soak.stop.is_set():
                break
            self.unknown += 1
            self.soak.stop.wait(0.1 + self.rng.random() * 0.2)
        if st != 201:
            if self.definite(st):
                self.unexpected.append(f"create: {st} {b}")
            return
        if h.get("idempotent-replayed") == "true":
            self.replayed += 1
        self.keys[key] = b["id"]
        self.acked.append({"op": "create", "id": b["id"], "task": b, "next": None})
        self.open[b["id"]] = recurring

    def write(self, op, tid, method, path, body=None, want=200):
        """(acknowledged, body)"""
        self.writes += 1
        st, _, b = self.call(method, path, body)
        if not self.definite(st):
            self.lost_track(tid)
            return False, None
        if not self.check_answer(st, b, want, op):
            self.gone += 1
            self.lost_track(tid, unknown=False)
            return False, None
        return True, b

    def patch(self, tid):
        body = {"title": f"soak patched {uuid.uuid4().hex[:8]}", "priority": self.rng.choice(["low", "medium", "urgent"])}
        ok, b = self.write("patch", tid, "PATCH", f"/api/v1/tasks/{tid}", body)
        if ok:
            self.acked.append({"op": "patch", "id": tid, "task": b, "next": None})

    def complete(self, tid):
        ok, b = self.write("complete", tid, "POST", f"/api/v1/tasks/{tid}/complete")
        if not ok:
            return
        self.acked.append({"op": "complete", "id": tid, "task": b["task"], "next": b["next"]})
        recurring = self.open.pop(tid, False)
        if b["next"] is not None:
            self.open[b["next"]["id"]] = True
        elif not recurring:
            self.done.add(tid)

    def reopen(self, tid):
        ok, b = self.write("reopen", tid, "POST", f"/api/v1/tasks/{tid}/reopen")
        if ok:
            self.acked.append({"op": "reopen", "id": tid, "task": b, "next": None})
            self.done.discard(tid)
            self.open[tid] = False

    def delete(self, tid):
        if self.write("delete", tid, "DELETE", f"/api/v1/tasks/{tid}", want=204)[0]:
            self.acked.append({"op": "delete", "id": tid, "task": None, "next": None})
            self.open.pop(tid, None)
            self.done.discard(tid)

    def read(self):
        if self.open and self.rng.random() < 0.5:
            self.call("GET", f"/api/v1/tasks/{self.rng.choice(list(self.open))}")
        else:
            self.call("GET", "/api/v1/tasks?status=open&limit=20&sort=-priority,due_at")

    def do_resync(self):
        """After an unknown outcome: the open tasks as the server has them."""
        tasks = list_tasks(self.call, "open")
        if tasks is None:
            self.soak.stop.wait(0.2)
            return
        self.open = {t["id"]: t["recurrence"] is not None for t in tasks}
        self.done = {t for t in self.done if t not in self.open}
        self.resync = False


def list_tasks(call, status):
    """Every task of the user with this status, or None if an answer was not 200."""
    out, cursor = [], None
    while True:
        q = f"/api/v1/tasks?status={status}&limit=200" + (f"&cursor={cursor}" if cursor else "")
        st, _, b = call("GET", q)
        if st != 200:
            return None
        out += b["items"]
        cursor = b["next_cursor"]
        if cursor is None:
            return out


# ---------------------------------------------------------------------------
# WebSocket clients: each keeps the highest sequence it holds and resumes
# after it on every new connection. Every connection's frames are kept.

class WsClient:
    def __init__(self, soak, user, token, seed):
        self.soak, self.user, self.token = soak, user, token
        self.rng = random.Random(seed)
        self.last = 0
        self.connections = []  # {"after": n, "frames": [sequence...]}
        self.events = {}       # sequence -> event id
        self.resets = []

    async def run(self):
        url = f"ws://127.0.0.1:{self.soak.port}/api/v1/ws?access_token={urllib.parse.quote(self.token)}"
        while not self.soak.ws_stop.is_set():
            try:
                async with websockets.connect(url, open_timeout=5, max_size=2**20, ping_interval=None) as ws:
                    conn = {"after": self.last, "frames": []}
                    self.connections.append(conn)
                    await ws.send(json.dumps({"type": "resume", "after": self.last}))
                    # Besides each server kill, a client goes away on its own now and then.
                    leave_at = time.monotonic() + self.rng.uniform(15, 45)
                    while not self.soak.ws_stop.is_set() and time.monotonic() < leave_at:
                        try:
                            msg = await asyncio.wait_for(ws.recv(), 0.5)
                        except asyncio.TimeoutError:
                            continue
                        self.receive(conn, json.loads(msg))
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
                pass
            await asyncio.sleep(self.rng.uniform(0.05, 0.3))

    def receive(self, conn, ev):
        if ev.get("type") in ("reset", "error"):
            self.resets.append(ev)
            return
        seq = ev["sequence"]
        conn["frames"].append(seq)
        if seq in self.events and self.events[seq] != ev["id"]:
            self.soak.ws_conflicts.append((self.user, seq, self.events[seq], ev["id"]))
        self.events[seq] = ev["id"]
        self.soak.ws_seen.setdefault(ev["id"], ev)
        if seq == self.last + 1:
            self.last = seq


# ---------------------------------------------------------------------------
# What the checker reads once the load has stopped and the server has settled.

def read_state(soak):
    """Per user: the tasks, the event log (GET /events) and the activity log."""
    state = {}
    for user, token in soak.tokens.items():
        def call(m, p, body=None, token=token):
            return request(soak.port, m, p, body, token, timeout=30)
        tasks = list_tasks(call, "all")
        events, after = [], 0
        while True:
            st, _, b = call("GET", f"/api/v1/events?after={after}&limit=500")
            assert st == 200, (st, b)
            if not b["items"]:
                last_seq = b["last_seq"]
                break
            events += b["items"]
            after = b["items"][-1]["sequence"]
        activity, cursor = [], None
        while True:
            st, _, b = call("GET", "/api/v1/activity?limit=200" + (f"&cursor={cursor}" if cursor else ""))
            assert st == 200, (st, b)
            activity += b["items"]
            cursor = b["next_cursor"]
            if cursor is None:
                break
        assert tasks is not None
        state[user] = {"tasks": tasks, "events": events, "last_seq": last_seq, "activity": activity}
    return state


class Checker:
    """Each check returns a list of findings; empty means it holds."""

    def __init__(self, soak, state, records, ws_clients):
        self.soak, self.state, self.records, self.ws = soak, state, records, ws_clients

    def all(self):
        findings = {}
        for name in ("acknowledged_durable", "log_matches_state", "activity_once",
                     "kafka_complete_in_order", "websocket_gap_free", "series_one_open",
                     "creates_exactly_once"):
            findings[name] = getattr(self, name)()
        return findings

    def events_by_task(self, user):
        out = {}
        for e in self.state[user]["events"]:
            if e["type"].startswith("com.todo.task."):
                out.setdefault(e["subject"], []).append(e)
        return out

    def acknowledged_durable(self):
        """Every acknowledged write is in PostgreSQL: its event (same version,
        same task) is in the log, and a deleted task is gone."""
        bad = []
        for load in self.soak.loads:
            by_task = self.events_by_task(load.user)
            live = {t["id"] for t in self.state[load.user]["tasks"]}
            for a in load.acked:
                chain = by_task.get(a["id"], [])
                if a["op"] == "delete":
                    if not any(e["type"] == "com.todo.task.deleted" for e in chain) or a["id"] in live:
                        bad.append(f"{load.user}: acknowledged delete of {a['id']} not durable")
                    continue
                kind = {"create": "created", "patch": "updated", "complete": "completed",
                        "reopen": "reopened"}[a["op"]]
                match = [e for e in chain if e["data"]["task"]["version"] == a["task"]["version"]
                         and e["type"] == f"com.todo.task.{kind}"]
                if not match or match[0]["data"]["task"] != a["task"]:
                    bad.append(f"{load.user}: acknowledged {a['op']} of {a['id']} v{a['task']['version']} not in the log")
                if a["next"] is not None:
                    created = by_task.get(a["next"]["id"], [])
                    if not created or created[0]["data"]["task"] != a["next"]:
                        bad.append(f"{load.user}: acknowledged successor {a['next']['id']} not in the log")
        return bad

    def log_matches_state(self):
        """Per user the log is 1..last_seq; per task its events are versions
        1, 2, ... (a delete repeats the last), and the task as stored is the
        task of its newest event. A change is there whole or not at all."""
        bad = []
        for user, st in self.state.items():
            seqs = [e["sequence"] for e in st["events"]]
            if seqs != list(range(1, st["last_seq"] + 1)):
                bad.append(f"{user}: event sequences are not 1..{st['last_seq']}")
            by_task = self.events_by_task(user)
            stored = {t["id"]: t for t in st["tasks"]}
            for tid, chain in by_task.items():
                versions = [e["data"]["task"]["version"] for e in chain]
                deleted = chain[-1]["type"] == "com.todo.task.deleted"
                want = list(range(1, len(chain) + 1 - deleted)) + ([len(chain) - 1] if deleted else [])
                if chain[0]["type"] != "com.todo.task.created" or versions != want:
                    bad.append(f"{user}: task {tid} has event versions {versions}")
                if deleted and tid in stored:
                    bad.append(f"{user}: task {tid} deleted in the log but still stored")
                if not deleted and stored.get(tid) != chain[-1]["data"]["task"]:
                    bad.append(f"{user}: task {tid} as stored differs from its newest event")
            for tid in stored:
                if tid not in by_task:
                    bad.append(f"{user}: task {tid} is stored without any event")
        return bad

    def activity_once(self):
        """The activity log has exactly one entry per change: the task events."""
        bad = []
        for user, st in self.state.items():
            want = [(e["sequence"], e["type"][len("com.todo."):], e["subject"])
                    for e in st["events"] if e["type"].startswith("com.todo.task.")]
            got = sorted((a["seq"], a["type"], a["task_id"]) for a in st["activity"])
            if got != want:
                bad.append(f"{user}: {len(got)} activity entries for {len(want)} changes, or not the same ones")
        return bad

    def kafka_complete_in_order(self):
        """Every committed event is on Kafka, once per id (a re-delivery is the
        same event), in per-user order: task-updates carries 1..last_seq,
        task-events the task events in sequence order."""
        bad = []
        for topic, only_tasks in (("task-updates", False), ("task-events", True)):
            by_user, offsets = {}, {}
            for r in self.records[topic]:
                by_user.setdefault(r["key"], []).append(r)
                offsets.setdefault(r["partition"], []).append(r["offset"])
            for part, offs in offsets.items():
                if offs != list(range(len(offs))):
                    bad.append(f"{topic}[{part}]: the consumer did not read offsets 0..{len(offs) - 1} in order")
            for user, st in self.state.items():
                want = [e for e in st["events"] if not only_tasks or e["type"].startswith("com.todo.task.")]
                recs = by_user.get(user, [])
                if len({r["partition"] for r in recs}) > 1:
                    bad.append(f"{topic}: {user}'s records span partitions")
                first, order = {}, []
                for r in recs:
                    ce = r["value"]
                    if ce["id"] in first:
                        if first[ce["id"]] != ce:
                            bad.append(f"{topic}: {ce['id']} delivered twice with different content")
                        continue
                    first[ce["id"]] = ce
                    order.append(ce["sequence"])
                if order != [e["sequence"] for e in want]:
                    missing = sorted({e["sequence"] for e in want} - set(order))
                    bad.append(f"{topic}: {user} has {len(order)} distinct events, want {len(want)} in order;"
                               f" missing {len(missing)}: {missing[:12]} committed at"
                               f" {sorted({e['time'][11:19] for e in want if e['sequence'] in missing})[:6]}")
                elif any(first[e["id"]]["sequence"] != e["sequence"] for e in want):
                    bad.append(f"{topic}: {user}'s ids do not match the log")
        return bad

    def websocket_gap_free(self):
        """Each connection's frames: the live run it may have started with
        (consecutive, after the newest event at the upgrade), then from the
        resume point on, consecutive with nothing skipped or repeated. Each
        client ends holding the whole log, with the log's ids."""
        bad = []
        for c in self.ws:
            for n, conn in enumerate(c.connections):
                frames, after = conn["frames"], conn["after"]
                seam = next((i for i in range(len(frames)) if frames[i] == after + 1
                             and frames[i:] == list(range(after + 1, after + 1 + len(frames) - i))), None)
                head = frames if seam is None else frames[:seam]
                if seam is None and frames:
                    bad.append(f"{c.user} connection {n}: no gap-free run from {after + 1}")
                elif head and (head != list(range(head[0], head[0] + len(head))) or head[0] <= after):
                    bad.append(f"{c.user} connection {n}: frames before the resume are not a live run")
            st = self.state[c.user]
            if c.last != st["last_seq"]:
                bad.append(f"{c.user}: a client ended at {c.last} of {st['last_seq']}")
            if any(c.events.get(e["sequence"]) != e["id"] for e in st["events"]):
                bad.append(f"{c.user}: a client's events differ from the log")
            if c.resets:
                bad.append(f"{c.user}: control frames {c.resets[:2]}")
        bad += [f"{u}: sequence {s} carried two ids" for u, s, _, _ in self.soak.ws_conflicts]
        return bad

    def series_one_open(self):
        """Each recurring series has exactly one open occurrence, one per
        completion before it, on consecutive days."""
        bad = []
        for user, st in self.state.items():
            series = {}
            for t in st["tasks"]:
                if t["series_id"] is not None:
                    series.setdefault(t["series_id"], []).append(t)
            for sid, ts in series.items():
                ts.sort(key=lambda t: t["due_at"])
                opened = [t for t in ts if not t["completed"]]
                dues = [t["due_at"][:10] for t in ts]
                if len(opened) != 1 or opened[0] is not ts[-1] or len(set(dues)) != len(dues):
                    bad.append(f"{user}: series {sid} has {len(opened)} open of {len(ts)}, due {dues[:4]}...")
        return bad

    def creates_exactly_once(self):
        """An idempotency key makes at most one task, and an acknowledged one
        made exactly the task it answered with."""
        bad = []
        for load in self.soak.loads:
            made = {}
            for e in self.state[load.user]["events"]:
                if e["type"] == "com.todo.task.created" and e["data"]["task"]["title"].startswith("soak ") \
                        and e["data"]["task"]["series_id"] in (None, e["subject"]):
                    key = e["data"]["task"]["title"][len("soak "):]
                    made.setdefault(key, []).append(e["subject"])
            for key, tids in made.items():
                if len(tids) != 1 or key not in load.keys:
                    bad.append(f"{load.user}: key {key} made {len(tids)} tasks")
            for key, tid in load.keys.items():
                if tid is not None and made.get(key) != [tid]:
                    bad.append(f"{load.user}: acknowledged key {key} does not name its task")
        return bad


def self_test(soak, state, records, ws_clients):
    """Damage copies of what was read; each check must notice its damage."""
    def run(check, state=state, records=records, ws=ws_clients):
        return getattr(Checker(soak, state, records, ws), check)()

    user = next(u for u in state if state[u]["events"])
    failures = []

    def fresh():  # new lists, the same entries: damage is done to the lists only
        return {u: {k: list(v) if isinstance(v, list) else v for k, v in st.items()} for u, st in state.items()}

    def expect(check, what, **kw):
        if not run(check, **kw):
            failures.append(f"{check} missed: {what}")

    load = next(lo for lo in soak.loads if lo.user == user)
    acked = next(a for a in load.acked if a["op"] == "create")
    s = fresh()
    s[user]["events"] = [e for e in s[user]["events"] if e["subject"] != acked["id"]]
    expect("acknowledged_durable", "an acknowledged task missing from the log", state=s)
    s = fresh()
    del s[user]["events"][len(s[user]["events"]) // 2]
    expect("log_matches_state", "an event missing from the log", state=s)
    s = fresh()
    s[user]["activity"].append(s[user]["activity"][0])
    expect("activity_once", "an activity entry twice", state=s)
    r = {t: list(v) for t, v in records.items()}
    r["task-updates"] = [x for x in r["task-updates"] if not (x["key"] == user and x["value"]["sequence"] == 2)]
    expect("kafka_complete_in_order", "a record missing on Kafka", records=r)
    r = {t: list(v) for t, v in records.items()}
    idx = [i for i, x in enumerate(r["task-events"]) if x["key"] == user][:2]
    r["task-events"][idx[0]], r["task-events"][idx[1]] = r["task-events"][idx[1]], r["task-events"][idx[0]]
    expect("kafka_complete_in_order", "two records out of order", records=r)
    ws = [copy.copy(c) for c in ws_clients]
    for c in ws:
        c.connections = copy.deepcopy(c.connections)
    conn = max((cn for c in ws for cn in c.connections), key=lambda cn: len(cn["frames"]))
    del conn["frames"][len(conn["frames"]) // 2]
    expect("websocket_gap_free", "a frame missing in one connection", ws=ws)
    s = fresh()
    recurring = next(t for u in s for t in s[u]["tasks"] if t["series_id"] and not t["completed"])
    twin = dict(recurring, id=str(uuid.uuid4()), due_at="2099" + recurring["due_at"][4:])
    next(st for st in s.values() if recurring in st["tasks"])["tasks"].append(twin)
    expect("series_one_open", "a second open occurrence", state=s)
    s = fresh()
    created = next(e for e in s[user]["events"] if e["type"] == "com.todo.task.created"
                   and e["data"]["task"]["title"].startswith("soak "))
    dup = copy.deepcopy(created)
    dup["subject"] = dup["data"]["task"]["id"] = str(uuid.uuid4())
    s[user]["events"].append(dup)
    expect("creates_exactly_once", "one key making two tasks", state=s)
    return failures


# ---------------------------------------------------------------------------

class Soak:
    def __init__(self, args):
        self.args = args
        self.stop = threading.Event()
        self.ws_stop = threading.Event()
        self.kills = self.pg_restarts = self.broker_outages = 0
        self.ws_seen = {}  # id -> the first frame that carried it
        self.ws_conflicts = []
        self.port = free_port()
        self.server = None
        self.followers = []

    def schedule(self):
        d, every = self.args.duration, self.args.kill_every
        plan = [(t, "kill") for t in range(every, d, every)]
        # The other faults fall between kills: a broker outage early and
        # late, PostgreSQL down for a few seconds halfway.
        pg_at, pg_down_for = every * (len(plan) // 2 + 0.5), min(8, every / 3)
        plan += [(every * 0.5, "broker_down"), (every * 0.5 + every / 3, "broker_up")]
        plan += [(pg_at, "pg_down"), (pg_at + pg_down_for, "pg_up")]
        late = d - every * 0.5 - every / 3
        if late > pg_at + pg_down_for + every:
            plan += [(late, "broker_down"), (late + every / 3, "broker_up")]
        return plan

    def run(self):
        a = self.args
        self.pg = PrivatePostgres(settings=a.pg_settings).init().start()
        try:
            self.broker = Broker(control=True)
            try:
                parts = topic_partitions(self.broker.bootstrap)
                self.followers = [KafkaFollower(self.broker.bootstrap, t, p)
                                  for t in ("task-updates", "task-events") for p in range(parts[t])]
                return self.run_with_parts()
            finally:
                self.stop.set()
                self.ws_stop.set()
                if self.server is not None and self.server.proc.poll() is None:
                    self.server.proc.kill()
                    self.server.proc.wait()
                for f in self.followers:
                    f.stop()
                self.broker.cleanup()
        finally:
            self.pg.cleanup()

    def run_with_parts(self):
        a = self.args
        work = self.pg.dir
        env = dict(os.environ, DATABASE_URL=self.pg.url, JWT_SECRET=SECRET,
                   PORT=str(self.port), BIND_ADDRESS="127.0.0.1", LOG_LEVEL="info",
                   KAFKA_BROKERS=self.broker.bootstrap)
        self.server = Service(env, a.server_log or os.path.join(work, "server.log"))
        self.server.start()
        run_id = uuid.uuid4().hex[:6]
        self.tokens = {}
        for i in range(a.users):
            user = f"soak-{run_id}-{i}"
            self.tokens[user] = subprocess.run([BINARY, "token", "--user", user, "--ttl", "3h"], env=env,
                                               capture_output=True, text=True, check=True).stdout.strip()
        self.loads = [UserLoad(self, u, t, a.rate, seed=i) for i, (u, t) in enumerate(self.tokens.items())]
        self.ws = [WsClient(self, u, t, seed=100 + i * a.ws_per_user + k)
                   for i, (u, t) in enumerate(self.tokens.items()) for k in range(a.ws_per_user)]
        async def all_clients():
            await asyncio.gather(*(c.run() for c in self.ws))
        ws_thread = threading.Thread(target=lambda: asyncio.run(all_clients()), daemon=True)
        ws_thread.start()
        chaos = Chaos(self, self.schedule())
        log(f"soak: server on port {self.port}, broker {self.broker.bootstrap}")
        log(f"soak: {a.duration} s, {a.users} users at {a.rate} ops/s, {len(self.ws)} WebSocket clients, "
            f"faults: {chaos.schedule}")
        self.t0 = time.monotonic()
        chaos.start()
        for lo in self.loads:
            lo.start()
        self.stop.wait(a.duration)
        self.stop.set()
        chaos.join(60)
        for lo in self.loads:
            lo.join(30)
        problems = []
        if chaos.error:
            problems.append(f"fault schedule: {chaos.error}")
        if self.server.exited_on_its_own():
            problems.append(f"the server exited with {self.server.proc.returncode} on its own")
            self.server.start()
        log("load stopped; waiting for the relay to catch up")
        self.settle()
        log("settled; reading the logs")
        state = read_state(self)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(c.last != state[c.user]["last_seq"] for c in self.ws):
            time.sleep(0.2)
        self.ws_stop.set()
        ws_thread.join(15)
        log("reading Kafka")
        records = self.read_kafka(state)
        log("checking")
        findings = Checker(self, state, records, self.ws).all()
        for lo in self.loads:
            findings.setdefault("answers", []).extend(f"{lo.user}: {u}" for u in lo.unexpected)
        findings["answers"] = findings.get("answers", [])
        if a.self_test:
            findings["self_test"] = self_test(self, state, records, self.ws)
        try:
            event_contract.check(list(self.ws_seen.values()), "WebSocket")
        except event_contract.ContractViolation as e:
            problems.append(f"WebSocket frames break the event contract: {e}")
        rc = self.server.stop()
        if rc != 0:
            problems.append(f"the server exited with {rc} on SIGTERM")
        return self.report(state, records, findings, problems)

    def settle(self):
        deadline = time.monotonic() + 120
        b = None
        while time.monotonic() < deadline:
            st, _, b = request(self.port, "GET", "/ready", timeout=2)
            if st == 200 and b.get("kafka") == "ok" and b.get("kafka_lag") == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"the server did not settle (kafka_lag 0) within 120 s: {b}")

    def read_kafka(self, state):
        want = {"task-updates": sum(len(s["events"]) for s in state.values()),
                "task-events": sum(1 for s in state.values() for e in s["events"]
                                   if e["type"].startswith("com.todo.task."))}
        deadline = time.monotonic() + 60
        while True:
            have = collections.Counter()
            for f in self.followers:
                have[f.topic] += len(f.ids)
            if all(have[t] >= n for t, n in want.items()) or time.monotonic() > deadline:
                break
            time.sleep(1)
        for f in self.followers:
            f.stop()
        return {t: parse_records("".join(line for f in self.followers if f.topic == t for line in f.lines), t)
                for t in want}

    def report(self, state, records, findings, problems):
        requests = sum(lo.requests for lo in self.loads)
        acked = sum(len(lo.acked) for lo in self.loads)
        events = sum(len(s["events"]) for s in state.values())
        frames = sum(len(cn["frames"]) for c in self.ws for cn in c.connections)
        lines = [
            ("requests made", requests),
            ("writes attempted", sum(lo.writes for lo in self.loads)),
            ("writes acknowledged", acked),
            ("answers lost to faults (retried or read back)", sum(lo.unknown for lo in self.loads)),
            ("404s for tasks an unanswered delete removed", sum(lo.gone for lo in self.loads)),
            ("answers by status", dict(sorted(sum((lo.statuses for lo in self.loads), collections.Counter()).items()))),
            ("creates answered by an idempotent replay", sum(lo.replayed for lo in self.loads)),
            ("kill -9 survived", self.kills),
            ("PostgreSQL restarts", self.pg_restarts),
            ("broker outages", self.broker_outages),
            ("events checked (log = Kafka = WebSocket)", events),
            ("Kafka records read", sum(len(r) for r in records.values())),
            ("Kafka consumers restarted after an outage", sum(f.restarts for f in self.followers)),
            ("WebSocket connections / frames", f"{sum(len(c.connections) for c in self.ws)} / {frames}"),
            ("activity entries checked", sum(len(s["activity"]) for s in state.values())),
            ("recurring series checked", len({t["series_id"] for s in state.values() for t in s["tasks"]
                                              if t["series_id"]})),
        ]
        lost = sum(len(v) for k, v in findings.items() if k != "self_test")
        lines.append(("lost or inconsistent", lost))
        print()
        for k, v in lines:
            print(f"  {k:<48} {v}")
        ok = not problems
        for name, found in findings.items():
            print(f"  check {name:<42} {'ok' if not found else 'FAILED'}")
            for f in found[:10]:
                print(f"      {f}")
            ok = ok and not found
        for p in problems:
            print(f"  problem: {p}")
        print(f"\nsoak: {'passed' if ok else 'FAILED'}", flush=True)
        return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=600)
    p.add_argument("--kill-every", type=int, default=60)
    p.add_argument("--users", type=int, default=8)
    p.add_argument("--rate", type=float, default=20, help="operations a second per user")
    p.add_argument("--ws-per-user", type=int, default=2)
    p.add_argument("--self-test", action="store_true")
    p.add_argument("--server-log", help="keep the server's log here")
    p.add_argument("--fast-pg", dest="pg_settings", action="store_const", const=("fsync=off",), default=(),
                   help="no fsync (a crash of the process, not of the machine, is simulated either way)")
    args = p.parse_args()

    # SIGTERM unwinds like Ctrl-C, so every process started here is stopped.
    def interrupted(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupted)
    sys.exit(Soak(args).run())


if __name__ == "__main__":
    main()
