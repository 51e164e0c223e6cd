"""Reminders end to end with the embedded scheduler: firing on the user's
stream, cancellation, re-timing, recurrence, the webhook and e-mail channels
with retries and the dead letter, a crash with reminders due meanwhile, and
two replicas sharing the jobs.

The webhook receiver checks signatures with Python's hmac module; the mail
goes to Debian's aiosmtpd on loopback.
"""
import base64
import datetime
import email
import email.policy
import hashlib
import hmac
import http.server
import json
import signal
import threading
import time
import unittest

from aiosmtpd.controller import Controller

import event_contract
from harness import PrivateDatabase, Server, eventually, free_port, new_user, psql, require_environment


def stamp(seconds_from_now):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds_from_now)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse(ts):
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def events(server, user, kind=None):
    r = server.get("/api/v1/events?after=0&limit=1000", user=user)
    assert r.status == 200, r
    items = r.json()["items"]
    return [e for e in items if kind is None or e["type"] == kind]


class Receiver:
    """An HTTP webhook receiver that answers 500 to the first `failures`
    requests and records every request with the time it arrived."""

    def __init__(self, failures=0, status=500):
        self.failures = failures
        self.status = status
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with outer.lock:
                    outer.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                                           "body": body, "at": time.time()})
                    failing = len(outer.requests) <= outer.failures
                self.send_response(outer.status if failing else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class MailSink:
    def __init__(self):
        self.messages = []
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                outer.messages.append(envelope)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self):
        self.controller.stop()


def verify_signature(secret, req):
    """Standard Webhooks: v1,<base64 HMAC-SHA256 over id.timestamp.body>."""
    h = req["headers"]
    signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + req["body"]
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    return h.get("webhook-signature") == f"v1,{expected}"


class Embedded(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require_environment()
        cls.mail = MailSink()
        cls.server = Server(extra_env={"WEBHOOK_ALLOW_INSECURE": "true",
                                       "SMTP_URL": f"smtp://127.0.0.1:{cls.mail.port}",
                                       "SMTP_FROM": "reminders@todo.test",
                                       "REMINDER_RETRY_BASE": "200ms",
                                       "REMINDER_MAX_ATTEMPTS": "3"}).start()

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        cls.server.cleanup()
        cls.mail.close()
        assert code == 0, code

    def create(self, user, **fields):
        r = self.server.post("/api/v1/tasks", {"title": "Water the plants", **fields}, user=user)
        self.assertEqual(r.status, 201, r)
        return r.json()

    def wait_state(self, user, task_id, state, index=0, timeout=10):
        def check():
            t = self.server.get(f"/api/v1/tasks/{task_id}", user=user).json()
            return t if t["reminders"][index]["state"] == state else None
        return eventually(check, timeout, what=f"reminder state {state}")

    def test_fires_once_on_time_on_the_stream(self):
        u = new_user()
        at = stamp(2)
        t = self.create(u, reminders=[{"at": at}])
        r = t["reminders"][0]
        self.assertEqual((r["at"], r["fire_at"], r["state"]), (at, at, "scheduled"))
        due = eventually(lambda: events(self.server, u, "com.todo.reminder.due"), 10, what="the due event")
        self.assertEqual(len(due), 1)
        self.assertEqual(due[0]["subject"], t["id"])
        self.assertEqual(due[0]["data"]["reminder"]["id"], r["id"])
        self.assertEqual(due[0]["data"]["task"]["title"], "Water the plants")
        # Never early, and well under a second late.
        fired = parse(due[0]["time"])
        self.assertGreaterEqual(fired, parse(at))
        self.assertLess((fired - parse(at)).total_seconds(), 1.0)
        self.wait_state(u, t["id"], "sent")
        scheduled = events(self.server, u, "com.todo.reminder.scheduled")
        self.assertEqual(len(scheduled), 1)
        time.sleep(1)
        self.assertEqual(len(events(self.server, u, "com.todo.reminder.due")), 1)

    def test_before_due_and_retiming(self):
        u = new_user()
        t = self.create(u, due_at=stamp(3600), reminders=[{"before": "PT1H"}, {"before": "PT30M"}])
        self.assertEqual([r["before"] for r in t["reminders"]], ["PT1H", "PT30M"])
        # Moving due_at moves `before` reminders: the first now falls due at once.
        new_due = stamp(3601)
        p = self.server.patch(f"/api/v1/tasks/{t['id']}", {"due_at": new_due}, user=u)
        self.assertEqual(p.status, 200, p)
        moved = p.json()["reminders"]
        self.assertEqual(moved[0]["id"], t["reminders"][0]["id"])
        self.assertEqual(parse(moved[0]["fire_at"]), parse(new_due) - datetime.timedelta(hours=1))
        due = eventually(lambda: events(self.server, u, "com.todo.reminder.due"), 10, what="due")
        self.assertEqual([e["data"]["reminder"]["id"] for e in due], [t["reminders"][0]["id"]])

    def test_past_reminders_are_refused_unless_within_a_minute(self):
        u = new_user()
        r = self.server.post("/api/v1/tasks", {"title": "x", "reminders": [{"at": stamp(-120)}]}, user=u)
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json()["errors"][0]["field"], "reminders[0]")
        r = self.server.post("/api/v1/tasks", {"title": "x", "reminders": [{"before": "PT5M"}]}, user=u)
        self.assertEqual(r.json()["errors"][0]["field"], "reminders[0].before")
        self.assertEqual(self.server.get("/api/v1/tasks", user=u).json()["items"], [])
        t = self.create(u, reminders=[{"at": stamp(-30)}])
        eventually(lambda: events(self.server, u, "com.todo.reminder.due"), 5, what="an immediate firing")
        self.wait_state(u, t["id"], "sent")
        # Moving a task's due date so a `before` reminder is long past is refused too.
        t2 = self.create(u, due_at=stamp(7200), reminders=[{"before": "PT1H"}])
        p = self.server.patch(f"/api/v1/tasks/{t2['id']}", {"due_at": stamp(600)}, user=u)
        self.assertEqual(p.status, 422, p)
        self.assertEqual(p.json()["errors"][0]["field"], "due_at")

    def test_delete_and_complete_cancel(self):
        u = new_user()
        a = self.create(u, reminders=[{"at": stamp(2)}])
        b = self.create(u, reminders=[{"at": stamp(2)}])
        c = self.create(u, reminders=[{"at": stamp(2)}])
        self.assertEqual(self.server.delete(f"/api/v1/tasks/{a['id']}", user=u).status, 204)
        done = self.server.post(f"/api/v1/tasks/{b['id']}/complete", user=u).json()["task"]
        self.assertEqual(done["reminders"][0]["state"], "cancelled")
        p = self.server.patch(f"/api/v1/tasks/{c['id']}", {"reminders": []}, user=u)
        self.assertEqual(p.json()["reminders"], [])
        time.sleep(4)
        self.assertEqual(events(self.server, u, "com.todo.reminder.due"), [])
        count = psql(self.server.env["DATABASE_URL"],
                     f"SELECT count(*) FROM scheduler_jobs WHERE name IN ('r-{a['reminders'][0]['id']}',"
                     f" 'r-{b['reminders'][0]['id']}', 'r-{c['reminders'][0]['id']}')")
        self.assertEqual(count.strip(), "0")

    def test_recurring_completion_shifts_reminders(self):
        u = new_user()
        t = self.create(u, due_at=stamp(3600), recurrence={"every": "day"},
                        reminders=[{"before": "PT10M"}, {"at": stamp(1800)}])
        r = self.server.post(f"/api/v1/tasks/{t['id']}/complete", user=u).json()
        nxt = r["next"]
        self.assertEqual(len(nxt["reminders"]), 2)
        step = parse(nxt["due_at"]) - parse(t["due_at"])
        for old, new in zip(t["reminders"], nxt["reminders"]):
            self.assertNotEqual(old["id"], new["id"])
            self.assertEqual(parse(new["fire_at"]) - parse(old["fire_at"]), step)
            self.assertEqual(new["state"], "scheduled")
        self.assertEqual(nxt["reminders"][0]["before"], "PT10M")
        eventually(lambda: len(events(self.server, u, "com.todo.reminder.scheduled")) == 4, 5,
                   what="the successor's reminders scheduled")

    def test_webhook_signed_retried_then_sent(self):
        u = new_user()
        rx = Receiver(failures=2)
        self.addCleanup(rx.close)
        secret = "s3cret-" + u
        s = self.server.patch("/api/v1/settings", {"webhook_url": rx.url, "webhook_secret": secret}, user=u)
        self.assertEqual(s.status, 200, s)
        t = self.create(u, reminders=[{"at": stamp(1)}])
        sent = eventually(lambda: events(self.server, u, "com.todo.reminder.sent"), 15, what="sent")
        self.assertEqual(len(rx.requests), 3)
        for req in rx.requests:
            self.assertTrue(verify_signature(secret, req), req["headers"])
            self.assertFalse(verify_signature(secret + "x", req))
        self.assertEqual(len({req["headers"]["webhook-id"] for req in rx.requests}), 1)
        body = json.loads(rx.requests[0]["body"])
        self.assertEqual(body["data"]["reminder"]["id"], t["reminders"][0]["id"])
        self.assertEqual(sent[0]["data"]["channel"], "webhook")
        self.assertEqual(sent[0]["data"]["attempts"], 3)
        # Backoff: each retry waited at least half the doubled base.
        gaps = [b["at"] - a["at"] for a, b in zip(rx.requests, rx.requests[1:])]
        self.assertGreaterEqual(gaps[0], 0.1)
        self.assertGreaterEqual(gaps[1], 0.2)
        self.wait_state(u, t["id"], "sent")
        time.sleep(0.5)
        self.assertEqual(len(rx.requests), 3)
        self.assertEqual(events(self.server, u, "com.todo.reminder.failed"), [])

    def test_webhook_dead_letter(self):
        u = new_user()
        rx = Receiver(failures=100)
        self.addCleanup(rx.close)
        self.server.patch("/api/v1/settings", {"webhook_url": rx.url}, user=u)
        t = self.create(u, reminders=[{"at": stamp(1)}])
        failed = eventually(lambda: events(self.server, u, "com.todo.reminder.failed"), 15, what="dead letter")
        self.assertEqual(len(rx.requests), 3)  # REMINDER_MAX_ATTEMPTS
        self.assertEqual(failed[0]["data"]["attempts"], 3)
        self.assertIn("500", failed[0]["data"]["error"])
        self.assertNotIn("webhook-signature", rx.requests[0]["headers"])  # no secret set
        self.wait_state(u, t["id"], "failed")
        # A permanent refusal is not retried.
        u2 = new_user()
        rx2 = Receiver(failures=100, status=410)
        self.addCleanup(rx2.close)
        self.server.patch("/api/v1/settings", {"webhook_url": rx2.url}, user=u2)
        self.create(u2, reminders=[{"at": stamp(1)}])
        eventually(lambda: events(self.server, u2, "com.todo.reminder.failed"), 15, what="dead letter")
        self.assertEqual(len(rx2.requests), 1)

    def test_email(self):
        u = new_user()
        addr = f"{u}@example.test"
        self.server.patch("/api/v1/settings", {"email": addr}, user=u)
        t = self.create(u, title="Äpfel kaufen", reminders=[{"at": stamp(1)}])
        sent = eventually(lambda: events(self.server, u, "com.todo.reminder.sent"), 15, what="mail sent")
        self.assertEqual(sent[0]["data"]["channel"], "email")
        mine = [m for m in self.mail.messages if addr in m.rcpt_tos]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0].mail_from, "reminders@todo.test")
        msg = email.message_from_bytes(mine[0].original_content, policy=email.policy.default)
        self.assertEqual(msg["subject"], "Reminder: Äpfel kaufen")
        self.assertEqual(msg["to"], addr)
        self.assertIn(t["id"], msg.get_content())
        self.assertTrue(msg["message-id"])


class Wire(unittest.TestCase):
    """The due event as clients and Kafka consumers see it: a WebSocket frame,
    and a record on the `reminders` topic read back by kcat."""

    def test_websocket_frame_and_kafka_record(self):
        require_environment()
        import asyncio
        import websockets
        from test_events import Broker, read_topic
        broker = Broker()
        self.addCleanup(broker.cleanup)
        db = PrivateDatabase().create()
        self.addCleanup(db.cleanup)
        s = Server(database_url=db.url, extra_env={"KAFKA_BROKERS": broker.bootstrap}).start()
        self.addCleanup(s.cleanup)
        u = new_user()

        frames = []

        async def listen():
            async with websockets.connect(f"ws://127.0.0.1:{s.port}/api/v1/ws?access_token={s.token(u)}") as ws:
                t = s.post("/api/v1/tasks", {"title": "ring", "reminders": [{"at": stamp(1)}]}, user=u).json()
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    frames.append(frame)
                    if frame["type"] == "com.todo.reminder.due":
                        return t, frame

        t, frame = asyncio.run(listen())
        event_contract.check_frames(frames)
        self.assertEqual(frame["subject"], t["id"])
        self.assertEqual(frame["data"]["reminder"]["id"], t["reminders"][0]["id"])

        def on_topic():
            recs = read_topic(broker.bootstrap, "reminders") or []
            return [r for r in recs if r["value"]["type"] == "com.todo.reminder.due" and r["key"] == u]
        recs = eventually(on_topic, 20, interval=0.5, what="the due event on the reminders topic")
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0]["value"]["id"], frame["id"])
        self.assertIn(("content-type", "application/cloudevents+json"), recs[0]["header_pairs"])
        self.assertEqual(s.stop(), 0)


class Crash(unittest.TestCase):
    """kill -9 with reminders falling due while the server is down: each
    fires exactly once after the restart."""

    def test_reminders_due_during_downtime_fire_once(self):
        require_environment()
        db = PrivateDatabase().create()
        self.addCleanup(db.cleanup)
        s = Server(database_url=db.url).start()
        self.addCleanup(s.cleanup)
        u = new_user()
        ids = []
        for i in range(20):
            r = s.post("/api/v1/tasks", {"title": f"t{i}", "reminders": [{"at": stamp(3 + i % 3)}]}, user=u)
            ids.append(r.json()["reminders"][0]["id"])
        eventually(lambda: len(events(s, u, "com.todo.reminder.scheduled")) == 20, 10, what="scheduled")
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait()
        time.sleep(6)
        s2 = Server(database_url=db.url).start()
        self.addCleanup(s2.cleanup)
        eventually(lambda: len(events(s2, u, "com.todo.reminder.due")) >= 20, 10, what="all fired")
        time.sleep(1.5)
        due = events(s2, u, "com.todo.reminder.due")
        self.assertEqual(sorted(e["data"]["reminder"]["id"] for e in due), sorted(ids))
        self.assertEqual(s2.stop(), 0)


class TwoReplicas(unittest.TestCase):
    def test_each_reminder_fires_once(self):
        require_environment()
        db = PrivateDatabase().create()
        self.addCleanup(db.cleanup)
        a = Server(database_url=db.url).start()
        self.addCleanup(a.cleanup)
        b = Server(database_url=db.url).start()
        self.addCleanup(b.cleanup)
        users = [new_user() for _ in range(4)]
        ids = []
        for i in range(40):
            srv = a if i % 2 else b
            r = srv.post("/api/v1/tasks", {"title": f"t{i}", "reminders": [{"at": stamp(2)}]}, user=users[i % 4])
            self.assertEqual(r.status, 201, r)
            ids.append(r.json()["reminders"][0]["id"])

        def fired():
            return [e for u in users for e in events(a, u, "com.todo.reminder.due")]
        eventually(lambda: len(fired()) >= 40, 10, what="all fired")
        time.sleep(1.5)
        self.assertEqual(sorted(e["data"]["reminder"]["id"] for e in fired()), sorted(ids))
        self.assertEqual(a.stop(), 0)
        self.assertEqual(b.stop(), 0)


if __name__ == "__main__":
    unittest.main()


class DaprSidecar(unittest.TestCase):
    """DAPR_HTTP_PORT set: reminders are Dapr jobs on the stand-in sidecar
    (tests/support/dapr_sidecar.py, which follows shared DAPR.md), fired
    through POST /job/{name}; delivery records and the subscriber checkpoint
    go through the sidecar's state API."""

    def setUp(self):
        require_environment()
        from test_sidecar import Sidecar
        import tempfile
        self.Sidecar = Sidecar
        self.data_dir = tempfile.mkdtemp(prefix="dapr-jobs-")
        self.app_port = free_port()
        self.sidecar_port = free_port()
        self.db = PrivateDatabase().create()
        self.addCleanup(self.db.cleanup)
        self.sidecar = self.start_sidecar()
        self.server = Server(database_url=self.db.url, extra_env={
            "PORT": str(self.app_port), "DAPR_HTTP_PORT": str(self.sidecar_port), "APP_API_TOKEN": "app-token-1",
            "DAPR_API_TOKEN": "dapr-token-1", "REMINDER_RECONCILE_INTERVAL": "500ms",
            "WEBHOOK_ALLOW_INSECURE": "true", "REMINDER_RETRY_BASE": "200ms"}).start()
        self.addCleanup(self.server.cleanup)

    def start_sidecar(self):
        s = self.Sidecar(["--port", str(self.sidecar_port), "--app-port", str(self.app_port),
                          "--app-token", "app-token-1", "--api-token", "dapr-token-1",
                          "--data-dir", self.data_dir, "--pg-dsn", self.db.url]).start()
        self.addCleanup(s.cleanup)
        return s

    def test_reminder_is_a_dapr_job_and_fires_through_the_app(self):
        u = new_user()
        rx = Receiver(failures=1)
        self.addCleanup(rx.close)
        s = self.server.patch("/api/v1/settings", {"webhook_url": rx.url, "webhook_secret": "k" * 20}, user=u)
        self.assertEqual(s.status, 200, s)
        at = stamp(2)
        t = self.server.post("/api/v1/tasks", {"title": "t", "reminders": [{"at": at}]}, user=u).json()
        rid = t["reminders"][0]["id"]
        job = eventually(lambda: self.sidecar.jobs().get(f"r-{rid}"), 5, what="the job on the sidecar")
        self.assertEqual(parse(job["dueTime"]), parse(at))
        self.assertEqual(json.loads(json.dumps(job["data"]))["reminder"], rid)
        due = eventually(lambda: events(self.server, u, "com.todo.reminder.due"), 10, what="due")
        self.assertEqual(len(due), 1)
        trig = [x for x in self.sidecar.triggers(f"r-{rid}")]
        self.assertEqual([x["status"] for x in trig], [200])
        self.assertGreaterEqual(parse(due[0]["time"]), parse(at))
        # The webhook failed once, was retried through a second Dapr job, then sent.
        try:
            eventually(lambda: events(self.server, u, "com.todo.reminder.sent"), 15, what="sent")
        except AssertionError:
            print([l for l in self.server.log_lines() if l.get("level") in ("warn", "error")][-10:])
            print(rx.requests, [l for l in self.server.log_lines() if l.get("module") == "reminders"])
            raise
        self.assertEqual(len(rx.requests), 2)
        self.assertTrue(any(x["name"].startswith(f"d-{rid}-webhook-2") for x in self.sidecar.triggers()))
        # The delivery record is in the Dapr state store.
        key = f"delivery-{rid}-{int(parse(at).timestamp() * 1000)}"
        rec = self.sidecar.request("GET", f"/v1.0/state/statestore/{key}", token="dapr-token-1")
        self.assertEqual(rec.status, 200, rec)
        self.assertEqual(rec.json()["channels"]["webhook"]["attempts"], 2)
        self.assertEqual(rec.json()["channels"]["webhook"]["state"], "sent")
        stored = psql(self.db.url, f"SELECT count(*) FROM state WHERE key = 'todo-server||{key}'")
        self.assertEqual(stored.strip(), "1")

    def test_a_job_delivered_twice_fires_once(self):
        u = new_user()
        t = self.server.post("/api/v1/tasks", {"title": "t", "reminders": [{"at": stamp(1)}]}, user=u).json()
        name = f"r-{t['reminders'][0]['id']}"
        job = eventually(lambda: self.sidecar.jobs().get(name), 5, what="job")
        eventually(lambda: events(self.server, u, "com.todo.reminder.due"), 10, what="due")
        # The sidecar delivers at least once: the same trigger again, twice.
        for _ in range(2):
            again = self.server.post(f"/job/{name}", job["data"], headers={"dapr-api-token": "app-token-1"})
            self.assertEqual(again.status, 200, again)
        time.sleep(0.5)
        self.assertEqual(len(events(self.server, u, "com.todo.reminder.due")), 1)

    def test_an_early_trigger_fires_nothing(self):
        u = new_user()
        t = self.server.post("/api/v1/tasks", {"title": "t", "reminders": [{"at": stamp(60)}]}, user=u).json()
        name = f"r-{t['reminders'][0]['id']}"
        job = eventually(lambda: self.sidecar.jobs().get(name), 5, what="job")
        early = self.server.post(f"/job/{name}", job["data"], headers={"dapr-api-token": "app-token-1"})
        self.assertEqual(early.status, 200, early)
        time.sleep(0.5)
        self.assertEqual(events(self.server, u, "com.todo.reminder.due"), [])
        got = self.server.get(f"/api/v1/tasks/{t['id']}", user=u).json()
        self.assertEqual(got["reminders"][0]["state"], "scheduled")

    def test_a_slightly_early_trigger_waits_for_fire_at(self):
        # A sidecar whose clock runs fast triggers a little ahead: the
        # reminder still fires at fire_at, not when the trigger came.
        u = new_user()
        at = stamp(3)
        t = self.server.post("/api/v1/tasks", {"title": "t", "reminders": [{"at": at}]}, user=u).json()
        name = f"r-{t['reminders'][0]['id']}"
        job = eventually(lambda: self.sidecar.jobs().get(name), 5, what="job")
        ahead = (parse(at) - datetime.datetime.now(datetime.timezone.utc)).total_seconds() - 0.6
        self.assertGreater(ahead, 0)
        time.sleep(ahead)
        early = self.server.post(f"/job/{name}", job["data"], headers={"dapr-api-token": "app-token-1"})
        self.assertEqual(early.status, 200, early)
        due = eventually(lambda: events(self.server, u, "com.todo.reminder.due"), 5, what="due")
        self.assertEqual(len(due), 1)
        self.assertGreaterEqual(parse(due[0]["time"]), parse(at))

    def test_job_route_needs_the_app_token(self):
        r = self.server.post("/job/r-x", {"kind": "fire"})
        self.assertEqual(r.status, 401, r)
        r = self.server.post("/job/r-x", {"kind": "fire"}, headers={"dapr-api-token": "wrong"})
        self.assertEqual(r.status, 401, r)

    def test_delete_cancels_the_job(self):
        u = new_user()
        t = self.server.post("/api/v1/tasks", {"title": "t", "reminders": [{"at": stamp(60)}]}, user=u).json()
        name = f"r-{t['reminders'][0]['id']}"
        eventually(lambda: name in self.sidecar.jobs(), 5, what="job")
        self.assertEqual(self.server.delete(f"/api/v1/tasks/{t['id']}", user=u).status, 204)
        eventually(lambda: name not in self.sidecar.jobs(), 5, what="job deleted")

    def test_sidecar_down_then_back(self):
        u = new_user()
        self.sidecar.stop()
        eventually(lambda: self.server.get("/ready").status == 503, 10, what="/ready 503")
        self.assertEqual(self.server.get("/ready").json()["scheduler"], "down")
        t = self.server.post("/api/v1/tasks", {"title": "t", "reminders": [{"at": stamp(1)}]}, user=u)
        self.assertEqual(t.status, 201, t)
        time.sleep(2)
        self.sidecar = self.start_sidecar()
        eventually(lambda: self.server.get("/ready").status == 200, 10, what="/ready 200")
        eventually(lambda: events(self.server, u, "com.todo.reminder.due"), 10, what="due after the sidecar returned")
        time.sleep(1.5)
        self.assertEqual(len(events(self.server, u, "com.todo.reminder.due")), 1)

    def test_a_dropped_job_is_fired_by_reconciliation(self):
        u = new_user()
        t = self.server.post("/api/v1/tasks", {"title": "t", "reminders": [{"at": stamp(2)}]}, user=u).json()
        name = f"r-{t['reminders'][0]['id']}"
        eventually(lambda: name in self.sidecar.jobs(), 5, what="job")
        # As if Dapr had dropped it after its last failed try.
        self.assertEqual(self.sidecar.delete_job(name, token="dapr-token-1").status, 204)
        due = eventually(lambda: events(self.server, u, "com.todo.reminder.due"), 10, what="reconciled firing")
        self.assertEqual(len(due), 1)
        self.assertEqual(self.sidecar.triggers(name), [])
