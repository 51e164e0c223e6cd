"""Tenant isolation over the server's whole route table, the WebSocket included.

The route table comes from the binary itself (`todo-server --print-routes`,
built by the same install functions the server runs). Every route must have
an entry in PROBES, keyed by method and pattern, naming the access it must
have and how user B tries to reach user A's data through it. A route added
without a probe, or a probe whose route is gone, fails the test.

Beside it: a webhook URL stored while the address guard was off is judged
again, and refused, when a reminder is delivered to it.
"""
import json
import subprocess
import unittest
import urllib.parse
import uuid

from harness import BINARY, Server, ServerTest, eventually, new_user, require_environment
from test_reminders import Receiver, events, stamp
from test_websocket import WsCase

APP_API_TOKEN = "app-api-token-" + uuid.uuid4().hex
UNKNOWN_ID = "01890000-0000-7000-8000-000000000000"


def route_table(env):
    """[(method, pattern, access)] as the binary prints them."""
    p = subprocess.run([BINARY, "--print-routes"], env=env, capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError(f"--print-routes exited with {p.returncode}: {p.stderr}")
    routes = [tuple(line.split(" ")) for line in p.stdout.splitlines() if line.strip()]
    for r in routes:
        assert len(r) == 3, r
    return routes


class World:
    """What user A owns before B starts probing."""

    def __init__(self, test):
        s = test.server
        self.a, self.b = new_user("alice"), new_user("bob")
        self.word = "alicew" + uuid.uuid4().hex[:10]  # one search term only A's tasks contain
        self.tag = "alice-" + uuid.uuid4().hex[:8]
        self.email = f"{self.a}@alice.example"
        self.key = "key-" + uuid.uuid4().hex
        self.body = {"title": f"{self.word} plans", "tags": [self.tag], "due_at": "2020-01-01T09:00:00Z",
                     "reminders": [{"at": "2099-01-01T09:00:00Z"}]}
        r = s.post("/api/v1/tasks", self.body, user=self.a, headers={"Idempotency-Key": self.key})
        test.assertEqual(r.status, 201, r)
        created = r.json()
        done = test.create(self.a, {"title": f"{self.word} done", "tags": [self.tag]})
        test.assertEqual(s.post(f"/api/v1/tasks/{done['id']}/complete", user=self.a).status, 200)
        self.done = s.get(f"/api/v1/tasks/{done['id']}", user=self.a).json()
        # The reminder's scheduling settles before the snapshot B's probes compare with.
        eventually(lambda: [e for e in s.get("/api/v1/events?after=0&limit=100", user=self.a).json()["items"]
                            if e["type"] == "com.todo.reminder.scheduled"], 10, what="A's reminder scheduled")
        self.open = s.get(f"/api/v1/tasks/{created['id']}", user=self.a).json()
        self.ids = {self.open["id"], self.done["id"]}
        r = s.patch("/api/v1/settings", {"email": self.email, "webhook_url": "https://93.184.216.34/alice",
                                         "webhook_secret": "alice-webhook-secret-0123"}, user=self.a)
        test.assertEqual(r.status, 200, r)
        self.settings = r.json()
        page = s.get("/api/v1/tasks?status=all&limit=1", user=self.a).json()
        self.cursor = page["next_cursor"]
        test.assertTrue(self.cursor)
        self.reminder = self.open["reminders"][0]["id"]
        # What B must never see in any answer.
        self.marks = [self.a, self.word, self.tag, self.email, *self.ids, self.reminder]

    def unchanged(self, test):
        s = test.server
        test.assertEqual(s.get(f"/api/v1/tasks/{self.open['id']}", user=self.a).json(), self.open)
        test.assertEqual(s.get(f"/api/v1/tasks/{self.done['id']}", user=self.a).json(), self.done)
        test.assertEqual(s.get("/api/v1/settings", user=self.a).json(), self.settings)

    def assertHidden(self, test, text):
        for mark in self.marks:
            test.assertNotIn(mark, text)


# Each probe is B's attempt through one route; `w` is A's world.

def probe_create(t, w):
    # A's idempotency key: B's key space is its own, so B's create is neither
    # A's stored answer replayed nor a 409 for a different body.
    mine = {"title": "bob's own"}
    r = t.server.post("/api/v1/tasks", mine, user=w.b, headers={"Idempotency-Key": w.key})
    t.assertEqual(r.status, 201, r)
    t.assertNotIn("idempotent-replayed", r.headers)
    t.assertNotIn(r.json()["id"], w.ids)
    again = t.server.post("/api/v1/tasks", mine, user=w.b, headers={"Idempotency-Key": w.key})
    t.assertEqual((again.status, again.headers.get("idempotent-replayed")), (201, "true"), again)
    t.assertEqual(again.json()["id"], r.json()["id"])
    w.assertHidden(t, r.body)


def probe_list(t, w):
    for query in ["status=all", "status=completed", f"q={w.word}", f"tag={w.tag}", f"any_tag={w.tag}",
                  "overdue=true", f"status=all&q={w.word}&sort=-priority"]:
        r = t.server.get(f"/api/v1/tasks?{query}", user=w.b)
        t.assertEqual(r.status, 200, r)
        t.assertFalse({i["id"] for i in r.json()["items"]} & w.ids, query)
        w.assertHidden(t, r.body)
    # A's cursor is bound to A: refused, never read as B's.
    t.assertProblem(t.server.get(f"/api/v1/tasks?status=all&limit=1&cursor={w.cursor}", user=w.b), 400)


def task_probe(method, suffix="", body=None):
    def probe(t, w):
        unknown = t.server.request(method, f"/api/v1/tasks/{UNKNOWN_ID}{suffix}", body, user=w.b)
        for task_id in w.ids:
            r = t.server.request(method, f"/api/v1/tasks/{task_id}{suffix}", body, user=w.b)
            t.assertProblem(r, 404)
            t.assertEqual((r.json()["title"], r.json()["detail"]), (unknown.json()["title"], unknown.json()["detail"]),
                          "indistinguishable from an unknown id")
            w.assertHidden(t, r.body)
        w.unchanged(t)
    return probe


def probe_tags(t, w):
    r = t.server.get("/api/v1/tags", user=w.b)
    t.assertEqual(r.status, 200, r)
    t.assertNotIn(w.tag, [i["tag"] for i in r.json()["items"]])
    w.assertHidden(t, r.body)


def probe_get_settings(t, w):
    r = t.server.get("/api/v1/settings", user=w.b)
    t.assertEqual(r.status, 200, r)
    t.assertEqual(r.json(), {"timezone": "UTC", "email": None, "webhook_url": None, "webhook_secret_set": False})


def probe_patch_settings(t, w):
    r = t.server.patch("/api/v1/settings", {"email": f"{w.b}@bob.example"}, user=w.b)
    t.assertEqual(r.status, 200, r)
    t.assertEqual(r.json()["webhook_url"], None)
    w.assertHidden(t, r.body)
    w.unchanged(t)


def probe_activity(t, w):
    for query in ["", "?limit=200", f"?task_id={w.open['id']}", f"?task_id={w.done['id']}"]:
        r = t.server.get(f"/api/v1/activity{query}", user=w.b)
        t.assertEqual(r.status, 200, r)
        t.assertFalse({i["task_id"] for i in r.json()["items"]} & w.ids, query)
        if query.startswith("?task_id"):
            t.assertEqual(r.json()["items"], [])
        w.assertHidden(t, r.body)


def probe_events(t, w):
    r = t.server.get("/api/v1/events?after=0&limit=1000", user=w.b)
    t.assertEqual(r.status, 200, r)
    t.assertEqual({e["userid"] for e in r.json()["items"]} - {w.b}, set())
    w.assertHidden(t, r.body)


def probe_websocket(t, w):
    # B listens on both ways in (header and ?access_token=) while A writes;
    # B's own write afterwards comes later in the log, so once it has
    # arrived anything of A's would have arrived before it.
    b_sockets = [t.synced(t.server, w.b), t.synced(t.server, w.b, how="query")]
    a_socket = t.synced(t.server, w.a)
    a_api, b_api = t.api(t.server, w.a), t.api(t.server, w.b)
    a_task = a_api.create(f"{w.word} live")
    a_api.patch(a_task["id"], {"tags": [w.tag]})
    a_socket.wait_seq(a_api.last_seq())
    b_api.create("bob live")
    last = b_api.last_seq()
    for ws in b_sockets:
        ws.wait_seq(last)
        ws.resume(0)  # the durable log, replayed from the start, is B's alone too
        eventually(lambda: ws.seqs().count(last) == 2, 10, what="B's replay")
        t.assertEqual({e["userid"] for e in ws.events()}, {w.b})
        t.assertNotIn(a_task["id"], json.dumps(ws.frames))
        w.assertHidden(t, json.dumps(ws.frames))


def probe_ops(path):
    def probe(t, w):
        # No token at all, and B's: neither shows anything of A.
        for user in (None, w.b):
            r = t.server.get(path, user=user)
            t.assertIn(r.status, (200, 503), r)
            w.assertHidden(t, r.body)
    return probe


def probe_job(t, w):
    # B fires A's reminder job: B's JWT is no sidecar token, in either header.
    name = "r-" + w.reminder
    for headers in [{"Authorization": f"Bearer {t.server.token(w.b)}"},
                    {"dapr-api-token": t.server.token(w.b)},
                    {"dapr-api-token": APP_API_TOKEN + "x"}]:
        r = t.server.post(f"/job/{urllib.parse.quote(name)}", {"data": {}}, headers=headers)
        t.assertProblem(r, 401)
        w.assertHidden(t, r.body)
    due = [e for e in t.server.get("/api/v1/events?after=0&limit=1000", user=w.a).json()["items"]
           if e["type"] == "com.todo.reminder.due"]
    t.assertEqual(due, [])
    w.unchanged(t)


# "METHOD pattern" -> (the access it must have, the probe).
PROBES = {
    "POST /api/v1/tasks": ("user", probe_create),
    "GET /api/v1/tasks": ("user", probe_list),
    "GET /api/v1/tasks/{id}": ("user", task_probe("GET")),
    "PATCH /api/v1/tasks/{id}": ("user", task_probe("PATCH", "", {"title": "bob was here"})),
    "DELETE /api/v1/tasks/{id}": ("user", task_probe("DELETE")),
    "POST /api/v1/tasks/{id}/complete": ("user", task_probe("POST", "/complete")),
    "POST /api/v1/tasks/{id}/reopen": ("user", task_probe("POST", "/reopen")),
    "GET /api/v1/tags": ("user", probe_tags),
    "GET /api/v1/settings": ("user", probe_get_settings),
    "PATCH /api/v1/settings": ("user", probe_patch_settings),
    "GET /api/v1/activity": ("user", probe_activity),
    "GET /api/v1/events": ("user", probe_events),
    "GET /api/v1/ws": ("user", probe_websocket),
    "GET /health": ("ops", probe_ops("/health")),
    "GET /ready": ("ops", probe_ops("/ready")),
    "GET /metrics": ("ops", probe_ops("/metrics")),
    "GET /openapi.json": ("ops", probe_ops("/openapi.json")),
    "POST /job/{name}": ("sidecar", probe_job),
}


class RouteTable(ServerTest, WsCase):
    @classmethod
    def setUpClass(cls):
        require_environment()
        cls.server = Server(extra_env={"APP_API_TOKEN": APP_API_TOKEN, "RATE_LIMIT": "0"}).start()

    def test_every_route_keeps_users_apart(self):
        routes = route_table(self.server.env)
        keys = [f"{m} {p}" for m, p, _ in routes]
        self.assertEqual(len(keys), len(set(keys)), "each route once")
        self.assertEqual(sorted(set(keys) - PROBES.keys()), [],
                         "routes without an isolation probe: add one to PROBES in tests/e2e/test_security.py")
        self.assertEqual(sorted(PROBES.keys() - set(keys)), [], "probes for routes the server no longer has")
        w = World(self)
        for method, pattern, access in routes:
            key = f"{method} {pattern}"
            with self.subTest(key):
                want, probe = PROBES[key]
                self.assertEqual(access, want, "the route's access")
                if pattern.startswith("/api/"):
                    self.assertEqual(access, "user", "everything under /api/ authenticates")
                if access == "user":
                    concrete = pattern.replace("{id}", w.open["id"])
                    self.assertProblem(self.server.request(method, concrete), 401)
                probe(self, w)
        w.unchanged(self)


class WebhookGuardAtDelivery(unittest.TestCase):
    """A webhook URL accepted once is judged again at every delivery, by the
    address its host resolves to then: a name that has come to point at a
    private address (DNS rebinding) gets nothing delivered."""

    def test_a_stored_url_now_resolving_to_loopback_is_refused_at_delivery(self):
        require_environment()
        rx = Receiver()
        self.addCleanup(rx.close)
        u = new_user("rebind")
        url = rx.url.replace("http://127.0.0.1", "https://localhost")
        # Accepted while the check was off (the name "was public" then).
        lax = Server(extra_env={"WEBHOOK_ALLOW_INSECURE": "true"}).start()
        self.addCleanup(lax.cleanup)
        r = lax.patch("/api/v1/settings", {"webhook_url": url}, user=u)
        self.assertEqual((r.status, r.json().get("webhook_url")), (200, url), r)
        self.assertEqual(lax.stop(), 0)
        # The guarded server refuses the same URL at the settings check ...
        strict = Server(extra_env={"REMINDER_RETRY_BASE": "100ms", "REMINDER_MAX_ATTEMPTS": "2"}).start()
        self.addCleanup(strict.cleanup)
        self.assertEqual(strict.patch("/api/v1/settings", {"webhook_url": url}, user=new_user()).status, 422)
        # ... and at delivery, where the stored one is judged again.
        r = strict.post("/api/v1/tasks", {"title": "t", "reminders": [{"at": stamp(1)}]}, user=u)
        self.assertEqual(r.status, 201, r)
        failed = eventually(lambda: events(strict, u, "com.todo.reminder.failed"), 15, what="the dead letter")
        self.assertEqual(failed[0]["data"]["channel"], "webhook")
        self.assertTrue(failed[0]["data"]["error"].startswith("refused: resolves to a loopback address"), failed)
        self.assertEqual(failed[0]["data"]["attempts"], 1, "a refused target is not retried")
        self.assertEqual(rx.requests, [])


if __name__ == "__main__":
    unittest.main()
