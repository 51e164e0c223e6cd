"""The tasks API end to end: every route, every field rule, every error."""
import concurrent.futures
import json
import subprocess
import unittest

from harness import SECRET, ServerTest, curl, new_user


class TaskCrud(ServerTest):
    def test_create_read_update_complete_reopen_delete(self):
        u = new_user()
        r = self.server.post("/api/v1/tasks", {
            "title": "  Water the plants  ", "description": "the ficus too", "priority": "high",
            "tags": ["Home", "weekly"], "due_at": "2026-03-02T18:00:00+01:00", "timezone": "Europe/Berlin",
        }, user=u)
        self.assertEqual(r.status, 201, r)
        t = r.json()
        self.assertEqual(r.headers["location"], f"/api/v1/tasks/{t['id']}")
        self.assertEqual(r.headers["etag"], '"1"')
        self.assertEqual(t["title"], "Water the plants")
        self.assertEqual(t["tags"], ["home", "weekly"])
        self.assertEqual(t["due_at"], "2026-03-02T17:00:00Z")
        self.assertEqual(t["timezone"], "Europe/Berlin")
        self.assertEqual((t["priority"], t["completed"], t["completed_at"], t["version"]), ("high", False, None, 1))
        self.assertRegex(t["id"], r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        self.assertTrue(t["created_at"].endswith("Z"))
        for k in ("recurrence", "series_id", "reminders", "updated_at"):
            self.assertIn(k, t)

        g = self.server.get(f"/api/v1/tasks/{t['id']}", user=u)
        self.assertEqual(g.status, 200)
        self.assertEqual(g.json(), t)
        self.assertEqual(g.headers["etag"], '"1"')

        p = self.server.patch(f"/api/v1/tasks/{t['id']}", {"description": None, "due_at": None, "priority": "low"},
                              user=u, headers={"Content-Type": "application/merge-patch+json"})
        self.assertEqual(p.status, 200, p)
        pt = p.json()
        self.assertEqual((pt["description"], pt["due_at"], pt["priority"], pt["version"]), ("", None, "low", 2))
        self.assertEqual(pt["title"], "Water the plants")  # untouched by the patch
        self.assertEqual(p.headers["etag"], '"2"')

        same = self.server.patch(f"/api/v1/tasks/{t['id']}", {"priority": "low"}, user=u)
        self.assertEqual(same.json()["version"], 2, "a patch that changes nothing is not a change")

        c = self.server.post(f"/api/v1/tasks/{t['id']}/complete", user=u)
        self.assertEqual(c.status, 200, c)
        body = c.json()
        self.assertIsNone(body["next"])
        self.assertTrue(body["task"]["completed"])
        self.assertTrue(body["task"]["completed_at"].endswith("Z"))
        self.assertEqual(body["task"]["version"], 3)

        again = self.server.post(f"/api/v1/tasks/{t['id']}/complete", user=u)
        self.assertEqual(again.status, 200)
        self.assertEqual(again.json()["task"]["version"], 3, "completing a completed task is a no-op")

        o = self.server.post(f"/api/v1/tasks/{t['id']}/reopen", user=u)
        self.assertEqual(o.status, 200)
        self.assertEqual((o.json()["completed"], o.json()["completed_at"], o.json()["version"]), (False, None, 4))

        d = self.server.delete(f"/api/v1/tasks/{t['id']}", user=u)
        self.assertEqual(d.status, 204)
        self.assertEqual(d.body, "")
        self.assertProblem(self.server.get(f"/api/v1/tasks/{t['id']}", user=u), 404)
        self.assertProblem(self.server.delete(f"/api/v1/tasks/{t['id']}", user=u), 404)

    def test_defaults(self):
        t = self.create(new_user(), {"title": "x"})
        self.assertEqual((t["description"], t["priority"], t["tags"], t["due_at"], t["timezone"]),
                         ("", "none", [], None, "UTC"))

    def test_list_pages_and_status(self):
        u = new_user()
        ids = [self.create(u, {"title": f"t{i}"})["id"] for i in range(5)]
        self.server.post(f"/api/v1/tasks/{ids[0]}/complete", user=u)
        seen, cursor = [], None
        while True:
            path = "/api/v1/tasks?limit=2" + (f"&cursor={cursor}" if cursor else "")
            r = self.server.get(path, user=u)
            self.assertEqual(r.status, 200, r)
            page = r.json()
            self.assertLessEqual(len(page["items"]), 2)
            seen += [t["id"] for t in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        self.assertEqual(seen, ids[1:], "open tasks, each exactly once, in creation order")
        done = self.server.get("/api/v1/tasks?status=completed", user=u).json()["items"]
        self.assertEqual([t["id"] for t in done], ids[:1])
        self.assertEqual(len(self.server.get("/api/v1/tasks?status=all", user=u).json()["items"]), 5)

    def test_if_none_match(self):
        u = new_user()
        t = self.create(u)
        r = self.server.get(f"/api/v1/tasks/{t['id']}", user=u, headers={"If-None-Match": '"1"'})
        self.assertEqual(r.status, 304)
        self.assertEqual(r.headers["etag"], '"1"')
        self.assertEqual(r.body, "")
        r = self.server.get(f"/api/v1/tasks/{t['id']}", user=u, headers={"If-None-Match": '"7"'})
        self.assertEqual(r.status, 200)

    def test_if_match(self):
        u = new_user()
        t = self.create(u)
        path = f"/api/v1/tasks/{t['id']}"
        self.assertProblem(self.server.patch(path, {"title": "y"}, user=u, headers={"If-Match": '"9"'}), 412)
        self.assertEqual(self.server.get(path, user=u).json()["title"], "a task", "a 412 changes nothing")
        self.assertEqual(self.server.patch(path, {"title": "y"}, user=u, headers={"If-Match": '"1"'}).status, 200)
        self.assertProblem(self.server.delete(path, user=u, headers={"If-Match": '"1"'}), 412)
        self.assertProblem(self.server.post(path + "/complete", user=u, headers={"If-Match": '"1"'}), 412)
        self.assertProblem(self.server.patch(path, {"title": "z"}, user=u, headers={"If-Match": "nope"}), 400)
        self.assertEqual(self.server.delete(path, user=u, headers={"If-Match": '"2"'}).status, 204)

    def test_if_match_race_one_wins(self):
        u = new_user()
        for _ in range(5):
            t = self.create(u)
            path = f"/api/v1/tasks/{t['id']}"

            def patch(title):
                return self.server.patch(path, {"title": title}, user=u, headers={"If-Match": '"1"'})

            with concurrent.futures.ThreadPoolExecutor(2) as ex:
                results = list(ex.map(patch, ["first", "second"]))
            statuses = sorted(r.status for r in results)
            self.assertEqual(statuses, [200, 412], results)
            winner = next(r for r in results if r.status == 200).json()
            final = self.server.get(path, user=u).json()
            self.assertEqual((final["title"], final["version"]), (winner["title"], 2))

    def test_concurrent_patches_without_if_match_all_apply(self):
        u = new_user()
        t = self.create(u)
        path = f"/api/v1/tasks/{t['id']}"
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            results = list(ex.map(lambda i: self.server.patch(path, {"description": f"d{i}"}, user=u), range(8)))
        self.assertTrue(all(r.status == 200 for r in results), results)
        versions = sorted(r.json()["version"] for r in results)
        self.assertEqual(versions, list(range(2, 10)), "each patch is its own version, none lost")


class Idempotency(ServerTest):
    def test_replay_and_conflict(self):
        u = new_user()
        h = {"Idempotency-Key": "create-1"}
        first = self.server.post("/api/v1/tasks", {"title": "once"}, user=u, headers=h)
        self.assertEqual(first.status, 201)
        self.assertNotIn("idempotent-replayed", first.headers)
        second = self.server.post("/api/v1/tasks", {"title": "once"}, user=u, headers=h)
        self.assertEqual(second.status, 201)
        self.assertEqual(second.headers.get("idempotent-replayed"), "true")
        self.assertEqual(second.body, first.body)
        self.assertEqual(second.headers["location"], first.headers["location"])
        self.assertEqual(second.headers["etag"], first.headers["etag"])
        items = self.server.get("/api/v1/tasks", user=u).json()["items"]
        self.assertEqual(len(items), 1, "the replay created nothing")
        self.assertProblem(self.server.post("/api/v1/tasks", {"title": "other"}, user=u, headers=h), 409)
        self.assertEqual(len(self.server.get("/api/v1/tasks", user=u).json()["items"]), 1)

    def test_keys_are_per_user(self):
        a, b = new_user(), new_user()
        h = {"Idempotency-Key": "shared"}
        ta = self.server.post("/api/v1/tasks", {"title": "same"}, user=a, headers=h).json()
        rb = self.server.post("/api/v1/tasks", {"title": "same"}, user=b, headers=h)
        self.assertEqual(rb.status, 201)
        self.assertNotIn("idempotent-replayed", rb.headers)
        self.assertNotEqual(rb.json()["id"], ta["id"])

    def test_concurrent_same_key_creates_once(self):
        u = new_user()
        h = {"Idempotency-Key": "race"}
        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            results = list(ex.map(lambda _: self.server.post("/api/v1/tasks", {"title": "r"}, user=u, headers=h),
                                  range(6)))
        self.assertTrue(all(r.status == 201 for r in results), results)
        self.assertEqual(len({r.json()["id"] for r in results}), 1)
        self.assertEqual(len(self.server.get("/api/v1/tasks", user=u).json()["items"]), 1)

    def test_on_patch_and_complete(self):
        u = new_user()
        t = self.create(u)
        path = f"/api/v1/tasks/{t['id']}"
        p1 = self.server.patch(path, {"title": "p"}, user=u, headers={"Idempotency-Key": "p"})
        p2 = self.server.patch(path, {"title": "p"}, user=u, headers={"Idempotency-Key": "p"})
        self.assertEqual((p1.status, p2.status), (200, 200))
        self.assertEqual(p2.headers.get("idempotent-replayed"), "true")
        self.assertEqual(p1.body, p2.body)
        c1 = self.server.post(path + "/complete", user=u, headers={"Idempotency-Key": "c"})
        c2 = self.server.post(path + "/complete", user=u, headers={"Idempotency-Key": "c"})
        self.assertEqual(c1.body, c2.body)
        self.assertEqual(c2.headers.get("idempotent-replayed"), "true")

    def test_bad_key(self):
        self.assertProblem(self.server.post("/api/v1/tasks", {"title": "x"}, user=new_user(),
                                            headers={"Idempotency-Key": "x" * 256}), 400)


class Isolation(ServerTest):
    def test_other_users_task_is_404_everywhere(self):
        owner, other = new_user("owner"), new_user("other")
        t = self.create(owner)
        path = f"/api/v1/tasks/{t['id']}"
        unknown = "/api/v1/tasks/01890000-0000-7000-8000-000000000000"
        for method, suffix, body in [("GET", "", None), ("PATCH", "", {"title": "mine"}), ("DELETE", "", None),
                                     ("POST", "/complete", None), ("POST", "/reopen", None)]:
            r = self.server.request(method, path + suffix, body, user=other)
            u = self.server.request(method, unknown + suffix, body, user=other)
            self.assertProblem(r, 404)
            self.assertEqual(r.json()["detail"], u.json()["detail"], "indistinguishable from an unknown id")
        self.assertEqual(self.server.get("/api/v1/tasks", user=other).json()["items"], [])
        after = self.server.get(path, user=owner).json()
        self.assertEqual(after, t, "nothing the other user sent changed the task")


class Errors(ServerTest):
    def test_401(self):
        for headers in [{}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer nope"},
                        {"Authorization": "Bearer a.b.c"}]:
            r = curl("GET", self.server.url("/api/v1/tasks"), headers=headers)
            self.assertProblem(r, 401)
            self.assertIn("Bearer", r.headers["www-authenticate"])
        # Unknown routes under /api/ do not reveal themselves without a token.
        self.assertProblem(curl("GET", self.server.url("/api/v1/nothing-here")), 401)

    def test_401_expired_wrong_key_alg_none(self):
        import base64
        import hashlib
        import hmac
        import time

        def b64(d):
            return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

        def sign(payload, secret=SECRET, alg="HS256"):
            head = b64({"alg": alg, "typ": "JWT"}) + "." + b64(payload)
            if alg == "none":
                return head + "."
            mac = hmac.new(secret.encode(), head.encode(), hashlib.sha256).digest()
            return head + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

        now = int(time.time())
        good = sign({"sub": "someone", "exp": now + 600})
        self.assertEqual(self.server.get("/api/v1/tasks", token=good).status, 200, "independent HMAC is accepted")
        cases = {
            "expired": sign({"sub": "someone", "exp": now - 120}),
            "wrong key": sign({"sub": "someone", "exp": now + 600}, secret="x" * 40),
            "alg none": sign({"sub": "someone", "exp": now + 600}, alg="none"),
            "no exp": sign({"sub": "someone"}),
            "not yet": sign({"sub": "someone", "exp": now + 600, "nbf": now + 300}),
            "empty sub": sign({"sub": "", "exp": now + 600}),
        }
        for name, token in cases.items():
            with self.subTest(name):
                self.assertProblem(self.server.get("/api/v1/tasks", token=token), 401)
        within_leeway = sign({"sub": "someone", "exp": now - 30})
        self.assertEqual(self.server.get("/api/v1/tasks", token=within_leeway).status, 200)

    def test_404_and_405(self):
        u = new_user()
        self.assertProblem(self.server.get("/nope"), 404)
        self.assertProblem(self.server.get("/api/v1/tasks/not-a-uuid", user=u), 404)
        self.assertProblem(self.server.get("/api/v1/tasks/01890000-0000-7000-8000-000000000000", user=u), 404)
        r = self.server.request("PUT", "/api/v1/tasks", {"title": "x"}, user=u)
        self.assertProblem(r, 405)
        self.assertEqual(r.headers["allow"], "GET, HEAD, POST")
        r = self.server.request("POST", "/health")
        self.assertProblem(r, 405)

    def test_400_not_json_and_too_deep(self):
        u = new_user()
        self.assertProblem(self.server.post("/api/v1/tasks", raw_body="{nope", user=u), 400)
        self.assertProblem(self.server.post("/api/v1/tasks", raw_body=b"{\"title\": \"\xff\xfe\"}", user=u), 400)
        deep = '{"title": "x", "description": ' + "[" * 70 + "]" * 70 + "}"
        p = self.assertProblem(self.server.post("/api/v1/tasks", raw_body=deep, user=u), 400)
        self.assertIn("64", p["detail"])
        self.assertProblem(self.server.get("/api/v1/tasks?limit=0", user=u), 400)
        self.assertProblem(self.server.get("/api/v1/tasks?limit=201", user=u), 400)
        self.assertProblem(self.server.get("/api/v1/tasks?status=done", user=u), 400)
        self.assertProblem(self.server.get("/api/v1/tasks?cursor=garbage", user=u), 400)
        p = self.assertProblem(self.server.get("/api/v1/tasks?colour=red", user=u), 400)
        self.assertIn("colour", p["detail"])

    def test_413_body_over_1_mib(self):
        u = new_user()
        big = json.dumps({"title": "x", "description": "y" * (1024 * 1024)})
        self.assertProblem(self.server.post("/api/v1/tasks", raw_body=big, user=u), 413)
        # Chunked, so the server cannot know the size before reading.
        r = curl("POST", self.server.url("/api/v1/tasks"), raw_body=big,
                 headers={"Authorization": f"Bearer {self.server.token(u)}", "Content-Type": "application/json",
                          "Transfer-Encoding": "chunked"})
        self.assertProblem(r, 413)
        self.assertEqual(self.server.get("/api/v1/tasks", user=u).json()["items"], [])

    def test_415(self):
        u = new_user()
        r = self.server.post("/api/v1/tasks", raw_body='{"title":"x"}', user=u, headers={"Content-Type": "text/plain"})
        self.assertProblem(r, 415)
        t = self.create(u)
        r = self.server.patch(f"/api/v1/tasks/{t['id']}", raw_body='{"title":"x"}', user=u,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertProblem(r, 415)
        ok = self.server.post("/api/v1/tasks", raw_body='{"title":"x"}', user=u,
                              headers={"Content-Type": "application/json; charset=utf-8"})
        self.assertEqual(ok.status, 201)

    def test_422_lists_every_field_and_changes_nothing(self):
        u = new_user()
        r = self.server.post("/api/v1/tasks", {
            "title": " ", "priority": "extreme", "tags": ["ok", "not ok"], "due_at": "tomorrow",
            "timezone": "Mars/Olympus", "colour": "red", "id": "x", "version": 3, "completed": True,
        }, user=u)
        p = self.assertProblem(r, 422)
        fields = {e["field"] for e in p["errors"]}
        self.assertEqual(fields, {"title", "priority", "tags", "due_at", "timezone", "colour", "id", "version",
                                  "completed"})
        self.assertEqual(p["detail"], "9 fields are invalid")
        prio = next(e for e in p["errors"] if e["field"] == "priority")
        self.assertEqual(prio["message"], "must be one of none, low, medium, high, urgent")
        self.assertEqual(self.server.get("/api/v1/tasks?status=all", user=u).json()["items"], [])
        self.assertProblem(self.server.post("/api/v1/tasks", {"description": "no title"}, user=u), 422, "title")
        self.assertProblem(self.server.post("/api/v1/tasks", ["not", "an", "object"], user=u), 422)
        for field, value in [("title", "x" * 501), ("description", "y" * 20001), ("tags", [f"t{i}" for i in range(21)]),
                             ("tags", ["a" * 51]), ("tags", ["dup", "DUP"]), ("description", "nul\u0000char"),
                             ("recurrence", {"rrule": "FREQ=DAILY"}), ("reminders", [{"before": "PT5M"}] * 11)]:
            with self.subTest(field=field):
                self.assertProblem(self.server.post("/api/v1/tasks", {"title": "x", field: value}, user=u), 422, field)
        t = self.create(u)
        r = self.server.patch(f"/api/v1/tasks/{t['id']}", {"title": None, "priority": "low"}, user=u)
        self.assertProblem(r, 422, "title")
        self.assertEqual(self.server.get(f"/api/v1/tasks/{t['id']}", user=u).json(), t)

    def test_limits_accepted_at_the_edge(self):
        u = new_user()
        t = self.create(u, {"title": "é" * 500, "description": "ü" * 20000,
                            "tags": [f"t{i}" for i in range(19)] + ["a" * 50]})
        self.assertEqual(len(t["title"]), 500)

    def test_request_id(self):
        r = self.server.get("/health", headers={"X-Request-Id": "trace-abc.123"})
        self.assertEqual(r.headers["x-request-id"], "trace-abc.123")
        r = self.server.get("/health", headers={"X-Request-Id": "bad id with spaces"})
        self.assertNotEqual(r.headers["x-request-id"], "bad id with spaces")
        self.assertTrue(r.headers["x-request-id"])
        logged = [l for l in self.server.log_lines() if l.get("request_id") == "trace-abc.123"]
        self.assertTrue(logged, "the request id reaches the log")


class RateLimit(unittest.TestCase):
    def test_429_with_retry_after_per_user(self):
        from harness import Server, require_environment
        require_environment()
        server = Server(extra_env={"RATE_LIMIT": "0.5", "RATE_LIMIT_BURST": "3"}).start()
        self.addCleanup(server.cleanup)
        u, other = new_user(), new_user()
        statuses = [server.get("/api/v1/tasks", user=u).status for _ in range(4)]
        self.assertEqual(statuses, [200, 200, 200, 429])
        r = server.post("/api/v1/tasks", {"title": "refused"}, user=u)
        self.assertEqual(r.status, 429)
        self.assertEqual(r.headers["content-type"], "application/problem+json")
        self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
        self.assertEqual(server.get("/api/v1/tasks", user=other).status, 200, "limits are per user")
        self.assertEqual(server.get("/health").status, 200, "probes are not limited")
        from harness import eventually
        listing = eventually(lambda: (lambda r: r if r.status == 200 else None)(
            server.get("/api/v1/tasks?status=all", user=u)), 10, interval=0.5, what="the bucket to refill")
        self.assertEqual(listing.json()["items"], [], "a 429 changes nothing")


class Operations(ServerTest):
    def test_health_ready_metrics(self):
        self.assertEqual(self.server.get("/health").status, 200)
        r = self.server.get("/ready")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["postgres"], "ok")
        self.server.get("/api/v1/tasks", user=new_user())
        m = self.server.get("/metrics")
        self.assertEqual(m.status, 200)
        self.assertTrue(m.headers["content-type"].startswith("text/plain"))
        self.assertIn('todo_http_requests_total{route="/api/v1/tasks",method="GET",status="200"}', m.body)
        self.assertIn('todo_http_request_duration_seconds_bucket{route="/api/v1/tasks",method="GET",le="+Inf"}', m.body)
        self.assertIn('todo_db_pool_connections{state="idle"}', m.body)
        self.assertIn("todo_db_pool_size", m.body)

    def test_head(self):
        r = self.server.request("HEAD", "/health")
        self.assertEqual(r.status, 200)

    def test_keep_alive_and_pipelining(self):
        import socket
        s = socket.create_connection(("127.0.0.1", self.server.port))
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 3 + b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        s.settimeout(5)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        self.assertEqual(data.count(b"HTTP/1.1 200 OK"), 4, data)
        self.assertLess(data.index(b'"status":"ok"'), data.index(b'"postgres"'), "answered in order")

    def test_token_command(self):
        from harness import BINARY
        p = subprocess.run([BINARY, "token", "--user", "bob", "--ttl", "5m"], env={"JWT_SECRET": SECRET},
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(self.server.get("/api/v1/tasks", token=p.stdout.strip()).status, 200)
        p = subprocess.run([BINARY, "token", "--user", "bob"], env={"JWT_SECRET": "short"}, capture_output=True,
                           text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("JWT_SECRET", p.stderr)


if __name__ == "__main__":
    unittest.main()
