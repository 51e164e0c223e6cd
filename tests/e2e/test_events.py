"""The durable event log end to end: GET /events, GET /activity, and the Kafka
mirror as a real third-party client (kcat) sees it on the wire, through a
clean run, a kill -9 under load, a broker outage and a relay failover between replicas.

The Kafka relay is a singleton per database (an advisory lock plus a stored
checkpoint), so every test that reads the wire gets a database of its own in
the shared PostgreSQL: otherwise another suite's server could hold the lock
and relay our events to its own embedded broker.
"""
import concurrent.futures
import datetime
import json
import queue
import re
import signal
import subprocess
import threading
import time
import unittest
import urllib.parse
import uuid

import psycopg2

import event_contract
from harness import (BINARY, PrivateDatabase, Server, ServerTest, eventually, metrics,
                     new_user, psql, require_environment)

UUID7 = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
RFC3339_UTC = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$"
TASK_TYPES = {f"com.todo.task.{k}" for k in ("created", "updated", "completed", "reopened", "deleted")}
CE_CONTENT_TYPE = "application/cloudevents+json"


# ---------------------------------------------------------------------------
# Helpers: a private database, the standalone broker, kcat.

class Broker:
    """`todo-server broker [--control]` as its own process."""

    def __init__(self, control=False):
        self.control_mode = control
        self.lines = []
        self.answers = queue.Queue()
        self.ready = queue.Queue()
        args = [BINARY, "broker"] + (["--control"] if control else [])
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE if control else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        try:
            first = self.ready.get(timeout=15)
        except queue.Empty:
            self.cleanup()
            raise AssertionError(f"broker printed no first line: {self.lines}")
        self.first_line = first
        msg = json.loads(first)  # the first stdout line is JSON
        assert msg.get("msg") == "broker ready", msg
        self.bootstrap = msg["bootstrap"]
        assert re.match(r"^127\.0\.0\.1:\d+$", self.bootstrap), msg

    def _read(self):
        first = True
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            if first:
                self.ready.put(line)
                first = False
            elif not line.startswith("{"):
                self.answers.put(line)

    def control(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.answers.get(timeout=10)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        self.reader.join(5)
        self.proc.stdout.close()


def read_topic(bootstrap, topic, timeout=30):
    """Every record of the topic, in (partition, offset) order, or None if kcat failed.

    subprocess.run kills kcat when the timeout passes, so none outlives a test."""
    cmd = ["kcat", "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if p.returncode != 0:
        return None
    return parse_records(p.stdout, topic)


def parse_records(text, topic):
    """kcat -J output as records in (partition, offset) order, each checked
    against the event contract."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        flat = rec.get("headers") or []
        rec["header_pairs"] = list(zip(flat[0::2], flat[1::2]))
        rec["value"] = json.loads(rec["payload"])
        out.append(rec)
    out.sort(key=lambda r: (r["partition"], r["offset"]))
    event_contract.check_records(out, topic)
    return out


def topic_partitions(bootstrap):
    """{topic: partition count} from the broker's metadata, or None if kcat failed."""
    try:
        p = subprocess.run(["kcat", "-b", bootstrap, "-L", "-J"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return None
    if p.returncode != 0:
        return None
    return {t["topic"]: len(t["partitions"]) for t in json.loads(p.stdout)["topics"]}


def by_user(records, users):
    """Records keyed by one of `users`, grouped per key, each in (partition, offset) order."""
    out = {u: [] for u in users}
    for r in records:
        if r.get("key") in out:
            out[r["key"]].append(r)
    return out


# ---------------------------------------------------------------------------
# Assertions shared by the test classes.

class EventChecks(unittest.TestCase):
    def assertCloudEvent(self, ce, user=None):
        """A CloudEvents 1.0 structured-mode task event, as API.md describes it."""
        self.assertIsInstance(ce, dict)
        for attr in ("specversion", "id", "source", "type", "subject", "time", "datacontenttype", "userid"):
            self.assertIsInstance(ce.get(attr), str, f"{attr} must be a string: {ce}")
            self.assertTrue(ce[attr], f"{attr} must not be empty: {ce}")
        for name in ce:
            self.assertRegex(name, r"^[a-z0-9]{1,20}$", "CloudEvents attribute names are lower-case alphanumeric")
        self.assertEqual(ce["specversion"], "1.0")
        self.assertRegex(ce["id"], UUID7)
        self.assertEqual(ce["source"], "/todo-server")
        self.assertIn(ce["type"], TASK_TYPES)
        self.assertRegex(ce["time"], RFC3339_UTC)
        datetime.datetime.strptime(ce["time"][:19], "%Y-%m-%dT%H:%M:%S")  # a real date
        self.assertEqual(ce["datacontenttype"], "application/json")
        self.assertIs(type(ce["sequence"]), int, ce)
        self.assertGreaterEqual(ce["sequence"], 1)
        if user is not None:
            self.assertEqual(ce["userid"], user)
        data = ce.get("data")
        self.assertIsInstance(data, dict, ce)
        self.assertIsInstance(data.get("task"), dict, ce)
        self.assertIsInstance(data.get("changes"), dict, ce)
        self.assertEqual(data["task"]["id"], ce["subject"])
        for field, pair in data["changes"].items():
            self.assertIsInstance(pair, list, (field, ce))
            self.assertEqual(len(pair), 2, (field, ce))

    def assertRecord(self, rec):
        """One Kafka record: the CloudEvent, keyed by its user, with the content type header."""
        ce = rec["value"]
        self.assertCloudEvent(ce)
        self.assertEqual(rec["key"], ce["userid"], "record key = user id")
        self.assertIn(("content-type", CE_CONTENT_TYPE), rec["header_pairs"], rec)

    def wait_ready(self, server, pred, timeout, what):
        """Polls /ready until pred(status, body); every answer must have the documented shape."""
        last = []

        def poll():
            r = server.get("/ready")
            body = r.json()
            last[:] = [r.status, body]
            self.assertIn(body.get("kafka"), ("ok", "down", "standby"), body)
            self.assertIs(type(body.get("kafka_lag")), int, body)
            self.assertGreaterEqual(body["kafka_lag"], 0)
            red = any(v in ("down", "pending") for v in body.values())
            self.assertEqual(r.status, 503 if red else 200, f"503 exactly when something is down: {body}")
            return (r.status, body) if pred(r.status, body) else None

        try:
            return eventually(poll, timeout, interval=0.1, what=what)
        except AssertionError as e:
            if not str(e).startswith("timed out"):
                raise
            raise AssertionError(f"{e}; last /ready: {last}") from None

    def walk_events(self, server, user, limit=100):
        """Every event of the user via GET /events paging with after; checks every page."""
        items, after, last_seqs = [], 0, set()
        while True:
            r = server.get(f"/api/v1/events?after={after}&limit={limit}", user=user)
            self.assertEqual(r.status, 200, r)
            page = r.json()
            self.assertEqual(set(page), {"items", "last_seq"}, page)
            self.assertLessEqual(len(page["items"]), limit)
            last_seqs.add(page["last_seq"])
            if not page["items"]:
                break
            seqs = [e["sequence"] for e in page["items"]]
            self.assertEqual(seqs, sorted(seqs), "oldest first")
            self.assertGreater(seqs[0], after, "only events after the given sequence")
            items += page["items"]
            after = seqs[-1]
        self.assertEqual(len(last_seqs), 1, "last_seq is the user's, the same on every page")
        return items, last_seqs.pop()

    def assertGapFreeUnique(self, records, expected_last):
        """Records of one user as read from the wire: duplicates only with the same id and
        sequence (and content); once removed, sequences are exactly 1..n in order."""
        first = {}
        order = []
        for rec in records:
            ce = rec["value"]
            if ce["id"] in first:
                self.assertEqual(ce, first[ce["id"]], "a re-delivered event is the same event")
                continue
            first[ce["id"]] = ce
            order.append(ce["sequence"])
        self.assertEqual(order, list(range(1, expected_last + 1)), "per-user order, no gap, no extra")
        return [first[i] for i in first], len(records) - len(first)


# ---------------------------------------------------------------------------
# 1. The wire, with the embedded broker.

class EmbeddedKafkaWire(EventChecks):
    def setUp(self):
        require_environment()
        db = PrivateDatabase("e2e_events").create()
        self.addCleanup(db.cleanup)
        self.server = Server(database_url=db.url)
        self.server.env.pop("KAFKA_BROKERS", None)  # unset means embedded
        self.addCleanup(self.server.cleanup)
        self.server.start()

    def scenario(self, u):
        s = self.server
        a = s.post("/api/v1/tasks", {"title": "alpha"}, user=u)
        self.assertEqual(a.status, 201, a)
        b = s.post("/api/v1/tasks", {"title": "beta"}, user=u)
        self.assertEqual(b.status, 201, b)
        a, b = a.json()["id"], b.json()["id"]
        p = s.patch(f"/api/v1/tasks/{a}", {"title": "alpha two", "priority": "high"}, user=u)
        self.assertEqual(p.status, 200, p)
        noop = s.patch(f"/api/v1/tasks/{a}", {"priority": "high"}, user=u)  # not a change: no event
        self.assertEqual((noop.status, noop.json()["version"]), (200, 2), noop)
        self.assertEqual(s.post(f"/api/v1/tasks/{a}/complete", user=u).status, 200)
        self.assertEqual(s.post(f"/api/v1/tasks/{a}/complete", user=u).status, 200)  # no-op: no event
        self.assertEqual(s.post(f"/api/v1/tasks/{a}/reopen", user=u).status, 200)
        self.assertEqual(s.delete(f"/api/v1/tasks/{b}", user=u).status, 204)
        return a, b

    def test_task_events_on_the_wire(self):
        lines = [l for l in self.server.log_lines() if l.get("msg") == "embedded kafka broker"]
        self.assertEqual(len(lines), 1, "the embedded broker's address is logged once")
        boot = lines[0]["bootstrap"]
        self.assertRegex(boot, r"^127\.0\.0\.1:\d+$")

        users = [new_user("wire") for _ in range(4)]
        with concurrent.futures.ThreadPoolExecutor(len(users)) as pool:
            tasks = dict(zip(users, pool.map(self.scenario, users)))
        per_user = 6
        expected = len(users) * per_user

        def on_wire():
            recs = read_topic(boot, "task-events")
            if recs is None:
                return None
            mine = [r for r in recs if r.get("key") in tasks]
            return mine if len(mine) >= expected else None

        records = eventually(on_wire, 30, what=f"{expected} records on task-events")
        self.assertEqual(len(records), expected, "one record per change, no duplicate in a clean run")
        ids = [r["value"]["id"] for r in records]
        self.assertEqual(len(set(ids)), len(ids), "ids unique across records")
        for rec in records:
            self.assertRecord(rec)

        updates = read_topic(boot, "task-updates")
        self.assertIsNotNone(updates, "kcat could read task-updates")
        wire, wire_updates = by_user(records, users), by_user(updates, users)
        kinds = ["created", "created", "updated", "completed", "reopened", "deleted"]
        for u in users:
            a, b = tasks[u]
            recs = wire[u]
            self.assertEqual(len({r["partition"] for r in recs}), 1, "one user's events share a partition")
            events = [r["value"] for r in recs]
            self.assertEqual([e["sequence"] for e in events], list(range(1, per_user + 1)), u)
            self.assertEqual([e["type"] for e in events], [f"com.todo.task.{k}" for k in kinds])
            self.assertEqual([e["subject"] for e in events], [a, b, a, a, a, b])
            self.assertEqual([e["data"]["task"]["version"] for e in events if e["subject"] == a], [1, 2, 3, 4])
            self.assertEqual(events[2]["data"]["changes"], {"title": ["alpha", "alpha two"],
                                                            "priority": ["none", "high"]})
            self.assertEqual(events[3]["data"]["changes"]["completed"], [False, True])
            self.assertTrue(events[3]["data"]["task"]["completed"])
            self.assertEqual(events[4]["data"]["changes"]["completed"], [True, False])
            self.assertEqual(events[0]["data"]["changes"]["title"], [None, "alpha"])
            self.assertEqual(events[5]["data"]["changes"], {})
            self.assertEqual((events[5]["data"]["task"]["title"], events[5]["data"]["task"]["version"]),
                             ("beta", 1), "a deleted event carries the task as it was")

            # The same events, in the same order, on task-updates.
            self.assertEqual([r["value"] for r in wire_updates[u]], events, f"task-updates for {u}")
            for rec in wire_updates[u]:
                self.assertRecord(rec)

            # And the same events through REST catch-up.
            api, last_seq = self.walk_events(self.server, u)
            self.assertEqual(last_seq, per_user)
            self.assertEqual(api, events, f"GET /events matches the wire for {u}")

        self.wait_ready(self.server, lambda s, b: b["kafka"] == "ok" and b["kafka_lag"] == 0, 15, "kafka_lag 0")
        self.assertEqual(topic_partitions(boot), {"task-events": 3, "reminders": 1, "task-updates": 3})
        m = metrics(self.server)
        self.assertGreaterEqual(m["todo_kafka_events_delivered_total"], expected)
        self.assertEqual(m["todo_kafka_delivery_errors_total"], 0)
        self.assertEqual(m["todo_kafka_outbox_depth"], 0)
        self.assertGreaterEqual(m["todo_kafka_publish_lag_seconds_count"], expected)


# ---------------------------------------------------------------------------
# 2 and 3. The log through REST: concurrency, activity, validation, isolation.

class EventLogRest(ServerTest, EventChecks):
    @classmethod
    def setUpClass(cls):
        require_environment()
        # Many requests of one user at once: keep the per-user limiter out of the way.
        cls.server = Server(extra_env={"RATE_LIMIT": "0"}).start()

    def test_concurrent_writers_get_gap_free_sequences(self):
        u = new_user("conc")
        threads, patches = 8, 12

        def writer(n):
            ok = []  # (task id, version) of each successful change
            r = self.server.post("/api/v1/tasks", {"title": f"writer {n}"}, user=u)
            if r.status != 201:
                return ok, [r]
            tid = r.json()["id"]
            ok.append((tid, r.json()["version"]))
            bad = []
            for i in range(patches):
                p = self.server.patch(f"/api/v1/tasks/{tid}", {"title": f"writer {n} patch {i}"}, user=u)
                if p.status == 200:
                    ok.append((tid, p.json()["version"]))
                else:
                    bad.append(p)
            return ok, bad

        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(writer, range(threads)))
        changes = [c for ok, _ in results for c in ok]
        failures = [b for _, bad in results for b in bad]
        self.assertEqual(failures, [], "every write succeeded")
        n = len(changes)
        self.assertEqual(n, threads * (patches + 1))

        items, last_seq = self.walk_events(self.server, u, limit=7)
        self.assertEqual([e["sequence"] for e in items], list(range(1, n + 1)), "exactly 1..N, in order")
        self.assertEqual(last_seq, n)
        self.assertEqual(len({e["id"] for e in items}), n, "no duplicate ids")
        for e in items:
            self.assertCloudEvent(e, user=u)
        # Per task, the log holds each version once, in version order (commit order).
        per_task = {}
        for e in items:
            per_task.setdefault(e["subject"], []).append(e["data"]["task"]["version"])
        acked = {}
        for tid, v in changes:
            acked.setdefault(tid, []).append(v)
        self.assertEqual({t: sorted(v) for t, v in acked.items()}, per_task)

        # Defaults and bounds: limit defaults to 100, at most 1000; after defaults to 0.
        page = self.server.get("/api/v1/events", user=u).json()
        self.assertEqual([e["sequence"] for e in page["items"]], list(range(1, 101)))
        self.assertEqual(page["last_seq"], n)
        page = self.server.get("/api/v1/events?limit=1000", user=u).json()
        self.assertEqual(len(page["items"]), n)
        page = self.server.get(f"/api/v1/events?after={n}", user=u).json()
        self.assertEqual(page, {"items": [], "last_seq": n})
        page = self.server.get(f"/api/v1/events?after={n - 3}&limit=2", user=u).json()
        self.assertEqual([e["sequence"] for e in page["items"]], [n - 2, n - 1])
        # Activity: the same changes, newest first, 50 a page by default (docs/API.md).
        page = self.server.get("/api/v1/activity", user=u).json()
        self.assertEqual([e["seq"] for e in page["items"]], list(range(n, n - 50, -1)))
        self.assertIsNotNone(page["next_cursor"])

    def test_events_parameters_are_checked(self):
        u = new_user("evp")
        self.create(u)
        for query, name in [("after=-1", "after"), ("after=x", "after"), ("after=1.5", "after"),
                            ("limit=0", "limit"), ("limit=1001", "limit"), ("limit=ten", "limit"),
                            ("limit=", "limit"), ("since=3", "since")]:
            with self.subTest(query=query):
                p = self.assertProblem(self.server.get(f"/api/v1/events?{query}", user=u), 400)
                self.assertIn(name, p.get("detail", ""), p)
        r = self.server.get("/api/v1/events")
        self.assertEqual(r.status, 401, r)
        self.assertIn("www-authenticate", r.headers)

    def test_activity(self):
        u, other = new_user("act"), new_user("act-other")
        a = self.create(u, {"title": "Water"})["id"]
        b = self.create(u, {"title": "Buy soil"})["id"]
        p = self.server.patch(f"/api/v1/tasks/{a}", {"title": "Water the plants", "priority": "high"}, user=u)
        self.assertEqual(p.status, 200, p)
        self.assertEqual(self.server.patch(f"/api/v1/tasks/{a}", {"priority": "high"}, user=u).status, 200)  # no-op
        self.assertEqual(self.server.post(f"/api/v1/tasks/{a}/complete", user=u).status, 200)
        self.assertEqual(self.server.post(f"/api/v1/tasks/{a}/complete", user=u).status, 200)  # no-op
        self.assertEqual(self.server.post(f"/api/v1/tasks/{a}/reopen", user=u).status, 200)
        self.assertEqual(self.server.delete(f"/api/v1/tasks/{b}", user=u).status, 204)
        o = self.create(other, {"title": "someone else's"})["id"]

        r = self.server.get("/api/v1/activity", user=u)
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertIsNone(body["next_cursor"])
        items = body["items"]
        self.assertEqual([e["seq"] for e in items], [6, 5, 4, 3, 2, 1], "one entry per change, newest first")
        self.assertEqual([e["type"] for e in items], ["task.deleted", "task.reopened", "task.completed",
                                                     "task.updated", "task.created", "task.created"])
        self.assertEqual([e["task_id"] for e in items], [b, a, a, a, b, a])
        for e in items:
            self.assertEqual(set(e), {"seq", "type", "task_id", "at", "summary", "changes"}, e)
            self.assertRegex(e["at"], RFC3339_UTC)
            self.assertIsInstance(e["summary"], str)
            self.assertTrue(e["summary"])
        deleted, reopened, completed, updated, created_b, created_a = items
        self.assertEqual(updated["changes"], {"title": ["Water", "Water the plants"], "priority": ["none", "high"]})
        self.assertEqual(completed["changes"]["completed"], [False, True])
        self.assertIsNone(completed["changes"]["completed_at"][0])
        self.assertRegex(completed["changes"]["completed_at"][1], RFC3339_UTC)
        self.assertEqual(reopened["changes"]["completed"], [True, False])
        self.assertEqual(deleted["changes"], {}, "docs/API.md: a deletion has {}")
        self.assertEqual(created_a["changes"]["title"], [None, "Water"])
        self.assertIn("Water the plants", completed["summary"])
        self.assertIn("Buy soil", deleted["summary"])

        # Activity is a view of the same log as /events.
        events, _ = self.walk_events(self.server, u)
        for e in items:
            ev = events[e["seq"] - 1]
            self.assertEqual((ev["sequence"], ev["type"], ev["subject"]),
                             (e["seq"], "com.todo." + e["type"], e["task_id"]))
            self.assertEqual(ev["time"], e["at"])
            if e["type"] != "task.deleted":
                self.assertEqual(ev["data"]["changes"], e["changes"])

        # ?task_id narrows; an unknown task is an empty page.
        narrowed = self.server.get(f"/api/v1/activity?task_id={a}", user=u).json()
        self.assertEqual([e["seq"] for e in narrowed["items"]], [5, 4, 3, 1])
        self.assertEqual({e["task_id"] for e in narrowed["items"]}, {a})
        upper = self.server.get(f"/api/v1/activity?task_id={a.upper()}", user=u)
        if upper.status == 200:  # an id in upper case is the same id
            self.assertEqual([e["seq"] for e in upper.json()["items"]], [5, 4, 3, 1])
        gone = self.server.get(f"/api/v1/activity?task_id={b}", user=u).json()
        self.assertEqual([e["seq"] for e in gone["items"]], [6, 2], "a deleted task keeps its history")
        none = self.server.get(f"/api/v1/activity?task_id={uuid.uuid4()}", user=u).json()
        self.assertEqual(none, {"items": [], "next_cursor": None})

        # Cursor paging covers everything exactly once, also when narrowed.
        for query, want in [("limit=2", [6, 5, 4, 3, 2, 1]), ("limit=1", [6, 5, 4, 3, 2, 1]),
                            (f"limit=3&task_id={a}", [5, 4, 3, 1]), ("limit=6", [6, 5, 4, 3, 2, 1])]:
            with self.subTest(query=query):
                seen, cursor, pages = [], None, 0
                limit = int(re.search(r"limit=(\d+)", query).group(1))
                while True:
                    path = f"/api/v1/activity?{query}" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
                    page = self.server.get(path, user=u)
                    self.assertEqual(page.status, 200, page)
                    page = page.json()
                    self.assertLessEqual(len(page["items"]), limit)
                    seen += [e["seq"] for e in page["items"]]
                    pages += 1
                    cursor = page["next_cursor"]
                    self.assertLess(pages, 10, "paging terminates")
                    if cursor is None:
                        break
                    self.assertIsInstance(cursor, str)
                self.assertEqual(seen, want)

        # Bad parameters are 400s naming the parameter.
        for query, name in [("limit=0", "limit"), ("limit=201", "limit"), ("limit=abc", "limit"),
                            ("cursor=garbage", "cursor"), ("cursor=-5", "cursor"), ("cursor=", "cursor"),
                            ("task_id=not-a-uuid", "task_id"), ("task_id=", "task_id"), ("sort=seq", "sort")]:
            with self.subTest(query=query):
                p = self.assertProblem(self.server.get(f"/api/v1/activity?{query}", user=u), 400)
                self.assertIn(name, p.get("detail", ""), p)

        # Another user's activity and events are invisible, in both directions.
        theirs = self.server.get("/api/v1/activity", user=other).json()
        self.assertEqual([(e["seq"], e["task_id"]) for e in theirs["items"]], [(1, o)])
        self.assertEqual(self.server.get(f"/api/v1/activity?task_id={a}", user=other).json(),
                         {"items": [], "next_cursor": None})
        self.assertEqual(self.server.get(f"/api/v1/activity?task_id={o}", user=u).json(),
                         {"items": [], "next_cursor": None})
        their_events = self.server.get("/api/v1/events", user=other).json()
        self.assertEqual(their_events["last_seq"], 1, "sequences are per user")
        self.assertEqual([e["subject"] for e in their_events["items"]], [o])
        self.assertNotIn(o, {e["subject"] for e in events})
        stranger = new_user("nobody")
        self.assertEqual(self.server.get("/api/v1/events", user=stranger).json(), {"items": [], "last_seq": 0})
        self.assertEqual(self.server.get("/api/v1/activity", user=stranger).json(),
                         {"items": [], "next_cursor": None})

    def test_only_committed_changes_make_events(self):
        u = new_user("fail")
        t = self.create(u)["id"]
        key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
        first = self.server.post("/api/v1/tasks", {"title": "once"}, user=u, headers=key)
        again = self.server.post("/api/v1/tasks", {"title": "once"}, user=u, headers=key)
        self.assertEqual((first.status, again.status), (201, 201))
        self.assertEqual(again.headers.get("idempotent-replayed"), "true")
        self.assertEqual(self.server.post("/api/v1/tasks", {"title": ""}, user=u).status, 422)
        self.assertEqual(self.server.patch(f"/api/v1/tasks/{t}", {"priority": "nope"}, user=u).status, 422)
        self.assertEqual(self.server.patch(f"/api/v1/tasks/{t}", {"title": "y"}, user=u,
                                           headers={"If-Match": '"9"'}).status, 412)
        self.assertEqual(self.server.delete(f"/api/v1/tasks/{uuid.uuid4()}", user=u).status, 404)
        items, last_seq = self.walk_events(self.server, u)
        self.assertEqual((last_seq, [e["type"] for e in items]), (2, ["com.todo.task.created"] * 2),
                         "no event for a failed request or an idempotent replay")
        self.assertEqual([e["subject"] for e in items], [t, first.json()["id"]])
        self.assertEqual(len(self.server.get("/api/v1/activity", user=u).json()["items"]), 2)


# ---------------------------------------------------------------------------
# 4. kill -9 under load, with a broker that outlives the server.

class KafkaCrash(EventChecks):
    def setUp(self):
        require_environment()
        db = PrivateDatabase("e2e_events").create()
        self.addCleanup(db.cleanup)
        self.db = db
        self.broker = Broker()
        self.addCleanup(self.broker.cleanup)

    def new_server(self):
        s = Server(database_url=self.db.url, extra_env={"KAFKA_BROKERS": self.broker.bootstrap})
        self.addCleanup(s.cleanup)
        return s.start()

    def test_kill_9_under_load_loses_nothing(self):
        self.assertEqual(topic_partitions(self.broker.bootstrap),
                         {"task-events": 3, "reminders": 1, "task-updates": 3})
        first = self.new_server()
        users = [new_user("crash") for _ in range(3)]
        acked = {u: [] for u in users}
        unexpected = []
        stop = threading.Event()

        def load(u):
            i = 0
            while not stop.is_set():
                r = first.post("/api/v1/tasks", {"title": f"load {i}"}, user=u, timeout=5)
                if r.status == 201:
                    acked[u].append(r.json()["id"])
                elif r.status != 0:  # 0: the connection died with the server
                    unexpected.append(r)
                else:
                    time.sleep(0.01)
                i += 1

        threads = [threading.Thread(target=load, args=(u,), daemon=True) for u in users]
        self.addCleanup(lambda: (stop.set(), [t.join(10) for t in threads]))
        for t in threads:
            t.start()
        eventually(lambda: sum(map(len, acked.values())) >= 60, 30, what="load before the kill")
        first.proc.send_signal(signal.SIGKILL)
        self.assertEqual(first.proc.wait(10), -signal.SIGKILL)
        # Diagnostic only (timing decides it): committed events past the relay's
        # durable checkpoint, which the restarted server has to send (again).
        behind = psql(self.db.url, "SELECT coalesce(max(pos), 0) - coalesce((SELECT max(pos) FROM"
                      " consumer_checkpoints WHERE name = 'kafka-relay'), 0) FROM events").strip()
        stop.set()
        for t in threads:
            t.join(15)
        self.assertEqual(unexpected, [], "only 201s or dead connections while loading")

        second = self.new_server()
        self.assertIsNone(self.broker.proc.poll(), "the broker outlived the server")
        duplicates = 0
        committed = {}
        for u in users:
            # PostgreSQL: every acknowledged task is there.
            listed, cursor = set(), None
            while True:
                r = second.get("/api/v1/tasks?status=all&limit=200" + (f"&cursor={cursor}" if cursor else ""), user=u)
                self.assertEqual(r.status, 200, r)
                listed |= {t["id"] for t in r.json()["items"]}
                cursor = r.json()["next_cursor"]
                if cursor is None:
                    break
            self.assertLessEqual(set(acked[u]), listed, "acknowledged tasks survive kill -9")

            # The log: one created event per task, 1..n.
            events, last_seq = self.walk_events(second, u)
            self.assertEqual([e["sequence"] for e in events], list(range(1, last_seq + 1)))
            self.assertEqual(sorted(e["subject"] for e in events), sorted(listed), "one event per committed task")

            # Activity: a created entry for each acknowledged task, once.
            created, cursor = [], None
            while True:
                r = second.get("/api/v1/activity?limit=200" + (f"&cursor={cursor}" if cursor else ""), user=u)
                self.assertEqual(r.status, 200, r)
                created += [e["task_id"] for e in r.json()["items"] if e["type"] == "task.created"]
                cursor = r.json()["next_cursor"]
                if cursor is None:
                    break
            self.assertEqual(len(created), len(set(created)))
            self.assertLessEqual(set(acked[u]), set(created))
            committed[u] = ({e["id"]: e for e in events}, last_seq)

        # The wire: eventually every committed event, gap-free per user once de-duplicated.
        def complete_on_wire():
            recs = read_topic(self.broker.bootstrap, "task-events")
            if recs is None:
                return None
            grouped = by_user(recs, users)
            for u in users:
                if {r["value"]["id"] for r in grouped[u]} != set(committed[u][0]):
                    return None
            return grouped

        grouped = eventually(complete_on_wire, 45, interval=0.2, what="every committed event on task-events")
        for u in users:
            u_events, last_seq = committed[u]
            for rec in grouped[u]:
                self.assertRecord(rec)
            unique, dups = self.assertGapFreeUnique(grouped[u], last_seq)
            duplicates += dups
            self.assertEqual({e["id"]: e for e in unique}, u_events, "the wire carries exactly what was committed")
            created_on_wire = {e["subject"] for e in unique if e["type"] == "com.todo.task.created"}
            self.assertLessEqual(set(acked[u]), created_on_wire, "a created event for every acknowledged task")

        self.wait_ready(second, lambda s, b: b["kafka"] == "ok" and b["kafka_lag"] == 0, 20, "kafka_lag 0")
        self.assertEqual(second.stop(), 0)
        self.assertEqual(self.broker.stop(), 0, "the broker exits 0 on SIGTERM")
        print(f"\n  crash: {sum(map(len, acked.values()))} acknowledged creates, {behind} events past the "
              f"checkpoint at the kill, {duplicates} duplicate records", end=" ", flush=True)


class KafkaQueueFull(EventChecks):
    """librdkafka's local queue full (here: room for 3 records): the relay
    waits and sends again; no event it could not hand over is passed by."""

    def test_every_event_arrives_though_the_queue_is_often_full(self):
        require_environment()
        db = PrivateDatabase("e2e_events").create()
        self.addCleanup(db.cleanup)
        broker = Broker()
        self.addCleanup(broker.cleanup)
        server = Server(database_url=db.url, extra_env={"KAFKA_BROKERS": broker.bootstrap, "RATE_LIMIT": "0",
                                                        "KAFKA_QUEUE_BUFFERING_MAX_MESSAGES": "3"})
        self.addCleanup(server.cleanup)
        server.start()
        users = [new_user("qfull") for _ in range(4)]
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            answers = list(ex.map(lambda i: server.post("/api/v1/tasks", {"title": f"t{i}"}, user=users[i % 4]),
                                  range(60)))
        self.assertTrue(all(a.status == 201 for a in answers), answers)
        self.wait_ready(server, lambda s, b: b["kafka"] == "ok" and b["kafka_lag"] == 0, 30, "kafka_lag 0")
        for topic in ("task-events", "task-updates"):
            def complete(topic=topic):
                recs = read_topic(broker.bootstrap, topic)
                grouped = by_user(recs or [], users)
                return grouped if all(len({r["value"]["id"] for r in grouped[u]}) == 15 for u in users) else None
            try:
                grouped = eventually(complete, 20, interval=0.2, what=f"all 60 events on {topic}")
            except AssertionError:
                grouped = by_user(read_topic(broker.bootstrap, topic) or [], users)
                self.fail(f"{topic}: per user {[len({r['value']['id'] for r in grouped[u]}) for u in users]} of 15")
            for u in users:
                self.assertGapFreeUnique(grouped[u], 15)
        self.assertEqual(server.stop(), 0)


# ---------------------------------------------------------------------------
# 5. A broker outage: writes go on, events wait, then arrive in order.

class KafkaOutage(EventChecks):
    def setUp(self):
        require_environment()
        db = PrivateDatabase("e2e_events").create()
        self.addCleanup(db.cleanup)
        self.broker = Broker(control=True)
        self.addCleanup(self.broker.cleanup)
        self.server = Server(database_url=db.url, extra_env={"KAFKA_BROKERS": self.broker.bootstrap})
        self.addCleanup(self.server.cleanup)
        self.server.start()

    def ready(self):
        return self.wait_ready(self.server, lambda s, b: True, 5, "/ready")

    def write(self, u, titles):
        """A create, a patch and a completion; every answer must be a success."""
        ids = []
        for title in titles:
            t0 = time.monotonic()
            r = self.server.post("/api/v1/tasks", {"title": title}, user=u)
            self.assertEqual(r.status, 201, r)
            tid = r.json()["id"]
            r = self.server.patch(f"/api/v1/tasks/{tid}", {"description": "more"}, user=u)
            self.assertEqual(r.status, 200, r)
            r = self.server.post(f"/api/v1/tasks/{tid}/complete", user=u)
            self.assertEqual(r.status, 200, r)
            self.assertLess(time.monotonic() - t0, 5, "writes do not wait for Kafka")
            ids.append(tid)
        return ids

    def test_broker_down_then_up(self):
        users = [new_user("outage") for _ in range(2)]
        server = self.server
        before = {u: self.write(u, ["before"]) for u in users}

        def seen(n_per_user):
            recs = read_topic(self.broker.bootstrap, "task-events")
            if recs is None:
                return None
            grouped = by_user(recs, users)
            ok = all(len({r["value"]["id"] for r in grouped[u]}) >= n_per_user for u in users)
            return grouped if ok else None

        eventually(lambda: seen(3), 30, interval=0.2, what="the first events on the wire")
        status, body = self.ready()
        self.assertEqual((status, body["kafka"]), (200, "ok"), body)

        self.assertEqual(self.broker.control("down 1"), "ok")
        during = {u: self.write(u, ["during 1", "during 2"]) for u in users}

        status, body = self.wait_ready(server, lambda s, b: b["kafka"] == "down" and b["kafka_lag"] > 0, 30,
                                       '/ready "kafka": "down" with a lag')
        self.assertEqual(status, 503, body)
        self.assertEqual(body["postgres"], "ok")
        for u in users:  # still writing once the outage is known
            during[u] += self.write(u, ["during 3"])
        eventually(lambda: metrics(server)["todo_kafka_outbox_depth"] > 0, 10, what="outbox depth > 0")
        self.assertEqual(server.get("/health").status, 200)

        self.assertEqual(self.broker.control("up 1"), "ok")
        status, body = self.wait_ready(server, lambda s, b: s == 200 and b["kafka_lag"] == 0, 45,
                                       "/ready 200 with kafka_lag 0 after the outage")
        self.assertEqual(body["kafka"], "ok")

        totals = {}
        for u in users:
            events, last_seq = self.walk_events(server, u)
            self.assertEqual(last_seq, 3 * (len(before[u]) + len(during[u])))
            totals[u] = (events, last_seq)
        grouped = eventually(lambda: seen(max(t[1] for t in totals.values())), 30, interval=0.2,
                             what="the outage's events on the wire")
        updates = read_topic(self.broker.bootstrap, "task-updates")
        self.assertIsNotNone(updates)
        grouped_updates = by_user(updates, users)
        for u in users:
            events, last_seq = totals[u]
            for rec in grouped[u] + grouped_updates[u]:
                self.assertRecord(rec)
            unique, _ = self.assertGapFreeUnique(grouped[u], last_seq)
            self.assertEqual(unique, events, "the wire carries the log, in order")
            unique_updates, _ = self.assertGapFreeUnique(grouped_updates[u], last_seq)
            self.assertEqual(unique_updates, events)
            kinds = {(e["subject"], e["type"]) for e in unique}
            for tid in during[u]:
                for kind in ("created", "updated", "completed"):
                    self.assertIn((tid, f"com.todo.task.{kind}"), kinds)
        self.assertEqual(metrics(server)["todo_kafka_outbox_depth"], 0)

        # In --control mode the broker goes away with its controller.
        self.broker.proc.stdin.close()
        self.assertEqual(self.broker.proc.wait(15), 0)
        self.assertTrue(any('"stdin closed"' in l for l in self.broker.lines), self.broker.lines[-3:])

    def test_kill_9_during_outage_then_restart(self):
        """Events committed while the broker is down cannot have reached it; after a
        kill -9 only the log can bring them there, so the restart must resend them."""
        users = [new_user("outage-kill") for _ in range(2)]
        for u in users:
            self.write(u, ["before"])
        # kafka_lag is refreshed about once a second, so a 0 may predate the
        # writes: the delivery counter says when the reports have arrived.
        eventually(lambda: metrics(self.server)["todo_kafka_events_delivered_total"] >= 6, 20, interval=0.1,
                   what="the first events delivered")
        self.assertEqual(self.broker.control("down 1"), "ok")
        during = {u: self.write(u, ["during 1", "during 2"]) for u in users}
        self.wait_ready(self.server, lambda s, b: b["kafka"] == "down", 30, '"kafka": "down"')
        self.server.proc.send_signal(signal.SIGKILL)
        self.assertEqual(self.server.proc.wait(10), -signal.SIGKILL)
        self.assertEqual(self.broker.control("up 1"), "ok")

        second = Server(database_url=self.server.env["DATABASE_URL"],
                        extra_env={"KAFKA_BROKERS": self.broker.bootstrap})
        self.addCleanup(second.cleanup)
        second.start()
        logs = {u: self.walk_events(second, u) for u in users}
        for u in users:
            self.assertEqual(logs[u][1], 9, "3 tasks x (create, patch, complete), all committed")

        def complete():
            recs = read_topic(self.broker.bootstrap, "task-events")
            if recs is None:
                return None
            grouped = by_user(recs, users)
            done = all({r["value"]["id"] for r in grouped[u]} == {e["id"] for e in logs[u][0]} for u in users)
            return grouped if done else None

        grouped = eventually(complete, 45, interval=0.2, what="the outage's events after the restart")
        for u in users:
            unique, _ = self.assertGapFreeUnique(grouped[u], logs[u][1])
            self.assertEqual(unique, logs[u][0])
            for tid in during[u]:
                self.assertIn((tid, "com.todo.task.created"), {(e["subject"], e["type"]) for e in unique})
        self.wait_ready(second, lambda s, b: b["kafka"] == "ok" and b["kafka_lag"] == 0, 20,
                        "kafka_lag 0 after the restart")
        self.assertEqual(second.stop(), 0)

    # Regression: "brokers up" once came back only with a delivery, so a
    # replica with nothing to send stayed "down" after the broker returned.
    def test_ready_recovers_after_an_idle_outage(self):
        u = new_user("idle")
        self.write(u, ["before"])
        eventually(lambda: metrics(self.server)["todo_kafka_events_delivered_total"] >= 3, 20, interval=0.1,
                   what="every event delivered: nothing left to send")
        status, body = self.ready()
        self.assertEqual((status, body["kafka"]), (200, "ok"), body)
        self.assertEqual(self.broker.control("down 1"), "ok")
        status, body = self.wait_ready(self.server, lambda s, b: b["kafka"] == "down", 30,
                                       '"kafka": "down" with nothing to send')
        self.assertEqual(status, 503, body)
        self.assertEqual(self.broker.control("up 1"), "ok")
        # The broker answers again (kcat reads the topic) ...
        self.assertIsNotNone(eventually(lambda: read_topic(self.broker.bootstrap, "task-events"), 20,
                                        what="the broker to answer kcat"))
        # ... so readiness must come back without waiting for a write.
        self.wait_ready(self.server, lambda s, b: s == 200 and b["kafka"] == "ok", 20,
                        "/ready 200 after the broker came back, with nothing written")


# ---------------------------------------------------------------------------
# Two replicas on one database and one broker: one relays, the other stands by
# and takes over when the relaying one is killed.

class KafkaReplicas(EventChecks):
    def test_standby_takes_over_after_kill_9(self):
        require_environment()
        db = PrivateDatabase("e2e_events").create()
        self.addCleanup(db.cleanup)
        broker = Broker()
        self.addCleanup(broker.cleanup)

        def replica():
            s = Server(database_url=db.url, extra_env={"KAFKA_BROKERS": broker.bootstrap})
            self.addCleanup(s.cleanup)
            return s.start()

        a = replica()
        self.wait_ready(a, lambda s, body: body["kafka"] == "ok", 20, "the first replica to relay")
        b = replica()
        status, body = self.wait_ready(b, lambda s, body: True, 5, "/ready")
        self.assertEqual((status, body["kafka"]), (200, "standby"), "one relay per database")
        u = new_user("replica")
        ids = [b.post("/api/v1/tasks", {"title": f"via b {i}"}, user=u) for i in range(3)]
        self.assertEqual([x.status for x in ids], [201] * 3)

        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        ids += [b.post("/api/v1/tasks", {"title": f"after the kill {i}"}, user=u) for i in range(3)]
        self.assertEqual([x.status for x in ids], [201] * 6)
        self.wait_ready(b, lambda s, body: body["kafka"] == "ok" and body["kafka_lag"] == 0, 30,
                        "the standby to take over the relay")
        events, last_seq = self.walk_events(b, u)
        self.assertEqual(last_seq, 6)

        def on_wire():
            recs = read_topic(broker.bootstrap, "task-events")
            mine = by_user(recs, [u])[u] if recs is not None else []
            return mine if {r["value"]["id"] for r in mine} == {e["id"] for e in events} else None

        recs = eventually(on_wire, 30, interval=0.2, what="every event on the wire")
        unique, _ = self.assertGapFreeUnique(recs, 6)
        self.assertEqual(unique, events)
        self.assertEqual(b.stop(), 0)
        self.assertEqual(broker.stop(), 0)


class SigtermFlush(EventChecks):
    """SIGTERM right after a burst of writes the relay has not read yet: the
    process exits 0 within the drain time, and every event of an acknowledged
    write is on Kafka by then."""

    def test_sigterm_flushes_committed_events_and_exits_in_time(self):
        require_environment()
        db = PrivateDatabase("e2e_sigterm").create()
        self.addCleanup(db.cleanup)
        broker = Broker()
        self.addCleanup(broker.cleanup)
        drain_s = 5
        # The relay's checkpoint save waits on the row lock below for longer
        # than the test takes, not for the statement timeout.
        server = Server(database_url=db.url, extra_env={"KAFKA_BROKERS": broker.bootstrap,
                                                        "DRAIN_TIMEOUT": f"{drain_s}s", "RATE_LIMIT": "0",
                                                        "DB_STATEMENT_TIMEOUT": "60s"})
        self.addCleanup(server.cleanup)
        server.start()
        self.wait_ready(server, lambda s, body: body["kafka"] == "ok", 20, "the relay")
        # Holds the relay back: after its first delivery it saves its
        # checkpoint, waits for this lock, and reads nothing more meanwhile.
        hold = psycopg2.connect(db.url)
        self.addCleanup(hold.close)
        hold.cursor().execute("INSERT INTO consumer_checkpoints (name, pos) VALUES ('kafka-relay', 0)"
                              " ON CONFLICT (name) DO UPDATE SET pos = consumer_checkpoints.pos")
        u = new_user("term")
        first = server.post("/api/v1/tasks", {"title": "first"}, user=u)
        self.assertEqual(first.status, 201)
        waiting = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                   " AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO consumer_checkpoints%'")
        eventually(lambda: psql(db.url, waiting).strip() == "1", 20, what="the relay waiting on the checkpoint")
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            answers = list(ex.map(lambda i: server.post("/api/v1/tasks", {"title": f"t{i}"}, user=u), range(120)))
        self.assertTrue(all(a.status == 201 for a in answers))
        acked = {a.json()["id"] for a in answers + [first]}
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        # Only once the drain has begun does the relay get on; whatever it
        # has not read by the time the server stops is lost to this run.
        eventually(lambda: server.proc.poll() is not None
                   or any(line.get("msg") == "draining" for line in server.log_lines()), 10, what="the drain")
        hold.rollback()
        code = server.proc.wait(drain_s + 10)
        took = time.monotonic() - started
        self.assertEqual(code, 0, server.read_log()[-2000:])
        self.assertLess(took, drain_s + 5, "exits within the drain time and the producer's flush")
        # Read only after the server is gone: what is on the broker now was
        # delivered before the exit.
        records = read_topic(broker.bootstrap, "task-events")
        self.assertIsNotNone(records)
        on_wire = {r["value"]["subject"] for r in records if r.get("key") == u}
        self.assertEqual(on_wire, acked, "every acknowledged create's event reached Kafka before the exit")


if __name__ == "__main__":
    unittest.main()
