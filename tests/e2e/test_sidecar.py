"""Conformance tests of the stand-in Dapr sidecar (tests/support/dapr_sidecar.py).

Each test starts the sidecar as a subprocess next to a small threaded HTTP
app that records what the sidecar sends it, and checks the daprd 1.16
behaviour the server relies on: job and state status codes and bodies,
trigger shape, timing and retries, staging, persistence, auth and shutdown.

Run: cd tests/e2e && /usr/bin/python3 -m unittest -v test_sidecar
With TODO_TEST_DATABASE_URL set, the state tests also run against the
state.postgresql v2 table in that database.
"""
import datetime as dt
import http.client
import http.server
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SIDECAR = os.path.normpath(os.path.join(HERE, "..", "support", "dapr_sidecar.py"))
PYTHON = "/usr/bin/python3"
DATABASE_URL = os.environ.get("TODO_TEST_DATABASE_URL", "")
NS = 10**9
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
RFC3339_SECONDS_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")
VALUE_TYPE = "type.googleapis.com/google.protobuf.Value"
DEFAULT_POLICY = {"constant": {"interval": "1s", "maxRetries": 3}}


def eventually(pred, timeout=5.0, interval=0.02, what="condition"):
    """Polls pred() until it returns something truthy or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def wait_until_ns(t_ns):
    """Blocks until the wall clock passes t_ns (a deadline, not a guess)."""
    while time.time_ns() <= t_ns:
        time.sleep(min(0.05, max(0.001, (t_ns - time.time_ns()) / NS)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def due_in(seconds, offset_hours=0):
    """An RFC 3339 dueTime `seconds` from now with millisecond precision: (text, ns)."""
    ms = (time.time_ns() + int(seconds * NS)) // 10**6
    sec, rem = divmod(ms, 1000)
    zone = dt.timezone(dt.timedelta(hours=offset_hours))
    t = dt.datetime.fromtimestamp(sec, zone)
    suffix = "Z" if offset_hours == 0 else t.strftime("%z")[:3] + ":" + t.strftime("%z")[3:]
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{rem:03d}" + suffix, ms * 10**6


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class Received:
    def __init__(self, method, path, headers, body, time_ns):
        self.method, self.path, self.headers, self.body, self.time_ns = method, path, headers, body, time_ns

    def __repr__(self):
        return f"<{self.method} {self.path} {self.body[:80]!r}>"


class App:
    """The app behind the sidecar: records every request and answers as told.

    `statuses[name]` is the list of statuses for /job/<name> (the last one
    repeats); `delays[name]` holds its answer back; `health` answers probes.
    """

    def __init__(self, port=0):
        self.port = port
        self.lock = threading.Lock()
        self.requests = []
        self.statuses = {}
        self.delays = {}
        self.health = 200
        self.server = None

    def start(self):
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                received = time.time_ns()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                with app.lock:
                    app.requests.append(Received(self.command, self.path, headers, body, received))
                    if self.path.startswith("/job/"):
                        name = self.path[len("/job/"):]
                        queue = app.statuses.get(name, [200])
                        status = queue.pop(0) if len(queue) > 1 else queue[0]
                        delay = app.delays.get(name, 0)
                    else:
                        status, delay = app.health, 0
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass

            do_POST = do_GET

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def jobs(self, name=None):
        with self.lock:
            return [r for r in self.requests if r.path.startswith("/job/")
                    and (name is None or r.path == "/job/" + name)]

    def probes(self):
        with self.lock:
            return [r for r in self.requests if not r.path.startswith("/job/")]


class Sidecar:
    """The sidecar subprocess and a keep-alive client for it."""

    def __init__(self, args):
        self.args = list(args)
        self.proc = None
        self.port = None
        self.conn = None
        self.log_path = None

    def start(self):
        fd, self.log_path = tempfile.mkstemp(prefix="dapr-sidecar-", suffix=".log")
        env = {k: v for k, v in os.environ.items() if k not in ("DAPR_API_TOKEN", "APP_API_TOKEN")}
        with os.fdopen(fd, "w") as log:
            self.proc = subprocess.Popen([PYTHON, SIDECAR, "--port", "0", *self.args],
                                         stdout=subprocess.PIPE, stderr=log, env=env)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline().decode() if ready else ""
        m = re.fullmatch(r"dapr-sidecar listening on 127\.0\.0\.1:([0-9]+)\n", line)
        if not m:
            self.stop()
            raise AssertionError(f"sidecar did not start (stdout {line!r}):\n{self.log()}")
        self.port = int(m.group(1))
        return self

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def request(self, method, path, body=None, raw=None, headers=None, token=None):
        h = dict(headers or {})
        if token is not None:
            h["dapr-api-token"] = token
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                self.conn.request(method, path, body=data, headers=h)
                resp = self.conn.getresponse()
                payload = resp.read()
                return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload)
            except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise

    # Dapr routes
    def post_job(self, name, body, **kw):
        return self.request("POST", f"/v1.0-alpha1/jobs/{name}", body, **kw)

    def get_job(self, name, **kw):
        return self.request("GET", f"/v1.0-alpha1/jobs/{name}", **kw)

    def delete_job(self, name, **kw):
        return self.request("DELETE", f"/v1.0-alpha1/jobs/{name}", **kw)

    # control routes
    def control(self, what):
        return self.request("GET", f"/__control/{what}").json()

    def jobs(self):
        return {j["name"]: j for j in self.control("jobs")}

    def triggers(self, name=None):
        return [t for t in self.control("triggers") if name is None or t["name"] == name]

    def disconnect(self):
        assert self.request("POST", "/__control/disconnect").status == 204

    def connect(self):
        assert self.request("POST", "/__control/connect").status == 204

    def job_gone(self, name):
        return name not in self.jobs() and self.get_job(name).status == 500

    def stop(self, sig=signal.SIGTERM, timeout=5):
        if self.conn:
            self.conn.close()
            self.conn = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        rc = self.stop()
        if self.log_path and os.path.exists(self.log_path):
            if rc not in (0, None):
                sys.stderr.write(f"\n--- sidecar exited with {rc}; its log:\n{self.log()}\n")
            os.unlink(self.log_path)


class SidecarCase(unittest.TestCase):
    def start_app(self, **kw):
        app = App(**kw).start()
        self.addCleanup(app.stop)
        return app

    def start_sidecar(self, *args, app=None):
        sc = Sidecar(([f"--app-port={app.port}"] if app else []) + list(args))
        self.addCleanup(sc.cleanup)
        return sc.start()

    def assert_error(self, reply, status, code):
        self.assertEqual(reply.status, status, reply)
        self.assertEqual(reply.headers.get("content-type"), "application/json", reply)
        body = reply.json()
        self.assertEqual(body["errorCode"], code, reply)
        self.assertIsInstance(body["message"], str)
        return body

    def assert_no_content(self, reply):
        self.assertEqual((reply.status, reply.body), (204, b""), reply)


# ----------------------------------------------------------------- process

class ProcessTest(SidecarCase):
    def test_healthz_waits_for_the_app_port_and_jobs_wait_with_it(self):
        port = free_port()
        sc = self.start_sidecar(f"--app-port={port}")
        body = self.assert_error(sc.request("GET", "/v1.0/healthz"), 500, "ERR_HEALTH_NOT_READY")
        self.assertIn("message", body)
        self.assert_no_content(sc.request("GET", "/v1.0/healthz/outbound"))
        due, due_ns = due_in(0)
        self.assert_no_content(sc.post_job("r-early", {"dueTime": due, "data": {"n": 1}}))

        app = self.start_app(port=port)
        eventually(lambda: sc.request("GET", "/v1.0/healthz").status == 204, what="healthz 204")
        # The job was staged, not tried against the closed port.
        received = eventually(lambda: app.jobs("r-early"), what="the staged trigger")
        self.assertGreaterEqual(received[0].time_ns, due_ns)
        self.assertEqual([t["attempt"] for t in sc.triggers("r-early")], [1])

    def test_api_token_guards_everything_but_get_healthz(self):
        app = self.start_app()
        sc = self.start_sidecar("--api-token=s3cret", app=app)
        self.assert_no_content(sc.request("GET", "/v1.0/healthz"))
        self.assert_no_content(sc.request("GET", "/v1.0/healthz/outbound"))
        cases = [("POST", "/v1.0-alpha1/jobs/r-1", {"dueTime": "2030-01-01T00:00:00Z", "data": 1}),
                 ("GET", "/v1.0-alpha1/jobs/r-1", None),
                 ("DELETE", "/v1.0-alpha1/jobs/r-1", None),
                 ("POST", "/v1.0/state/statestore", [{"key": "k", "value": 1}]),
                 ("GET", "/v1.0/state/statestore/k", None),
                 ("POST", "/v1.0/healthz", None)]
        for method, path, body in cases:
            for token in (None, "wrong", ""):
                with self.subTest(method=method, path=path, token=token):
                    r = sc.request(method, path, body, token=token)
                    self.assertEqual((r.status, r.body), (401, b"invalid api token"), r)
                    self.assertTrue(r.headers["content-type"].startswith("text/plain"), r.headers)
        self.assert_no_content(sc.post_job("r-1", {"dueTime": "2030-01-01T00:00:00Z", "data": 1}, token="s3cret"))
        self.assertEqual(sc.get_job("r-1", token="s3cret").status, 200)
        self.assert_no_content(sc.request("POST", "/v1.0/state/statestore", [{"key": "k", "value": 1}],
                                          token="s3cret"))
        self.assertEqual(sc.request("GET", "/v1.0/state/statestore/k", token="s3cret").body, b"1")
        self.assertIn("r-1", sc.jobs())  # control routes need no token
        statuses = [c["status"] for c in sc.control("calls") if c["path"] == "/v1.0-alpha1/jobs/r-1"]
        self.assertEqual(statuses.count(401), 9)
        self.assertEqual(statuses[-2:], [204, 200])

    def test_keep_alive_and_content_length(self):
        app = self.start_app()
        sc = self.start_sidecar(app=app)
        conn = http.client.HTTPConnection("127.0.0.1", sc.port, timeout=5)
        self.addCleanup(conn.close)
        steps = [("POST", "/v1.0-alpha1/jobs/r-ka", {"dueTime": "2030-01-01T00:00:00Z", "data": {"a": 1}}, 204),
                 ("GET", "/v1.0-alpha1/jobs/r-ka", None, 200),
                 ("POST", "/v1.0-alpha1/jobs/r-ka", {"dueTime": "2030-01-01T00:00:00Z", "data": 2}, 409),
                 ("POST", "/v1.0-alpha1/jobs/r-bad", "{not json", 400),
                 ("GET", "/v1.0-alpha1/jobs/r-none", None, 500),
                 ("DELETE", "/v1.0-alpha1/jobs/r-ka", None, 204),
                 ("POST", "/v1.0/state/statestore", [{"key": "k", "value": "v"}], 204),
                 ("GET", "/v1.0/state/statestore/k", None, 200),
                 ("GET", "/v1.0/state/statestore/absent", None, 204),
                 ("POST", "/v1.0/state/statestore/bulk", {"keys": ["k"]}, 200),
                 ("GET", "/v1.0/healthz", None, 204)]
        sock = None
        for method, path, body, want in steps:
            with self.subTest(method=method, path=path):
                data = body if isinstance(body, str) else (json.dumps(body) if body is not None else None)
                conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                payload = resp.read()
                self.assertEqual(resp.status, want, payload)
                self.assertFalse(resp.will_close)
                if want == 204:
                    self.assertEqual(payload, b"")
                else:
                    self.assertEqual(resp.getheader("Content-Length"), str(len(payload)))
                sock = sock or conn.sock
                self.assertIs(conn.sock, sock, "the connection was not kept alive")
        calls = [(c["method"], c["path"], c["status"]) for c in sc.control("calls")]
        self.assertEqual(calls, [(m, p, s) for m, p, _, s in steps])

    def test_signals_stop_it_quickly_even_with_a_trigger_in_flight(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=sig.name):
                app = self.start_app()
                app.delays["r-hang"] = 5
                sc = self.start_sidecar(app=app)
                self.assert_no_content(sc.post_job("r-hang", {"dueTime": "0s", "data": 1}))
                eventually(lambda: app.jobs("r-hang"), what="the trigger to be in flight")
                sc.proc.send_signal(sig)
                self.assertEqual(sc.proc.wait(timeout=1.0), 0)


# -------------------------------------------------------------------- jobs

class JobsApiTest(SidecarCase):
    def setUp(self):
        self.app = self.start_app()
        self.sc = self.start_sidecar(app=self.app)

    def test_get_shape_with_any_wrapped_data_and_the_stored_policy(self):
        sc = self.sc
        cases = {
            "r-1": ({"dueTime": "2030-03-02T16:45:00Z", "data": {"task": "t1"}, "overwrite": True},
                    {"name": "r-1", "dueTime": "2030-03-02T16:45:00Z",
                     "data": {"@type": VALUE_TYPE, "value": {"task": "t1"}}, "failurePolicy": DEFAULT_POLICY}),
            "r-every": ({"schedule": "@every 1h", "repeats": 5, "ttl": "2h", "data": "x",
                         "failurePolicy": {"constant": {"interval": "2.5s"}}},
                        {"name": "r-every", "schedule": "@every 1h", "repeats": 5, "ttl": "2h",
                         "data": {"@type": VALUE_TYPE, "value": "x"},
                         "failurePolicy": {"constant": {"interval": "2.500s"}}}),
            "r-drop": ({"due_time": "90s", "data": [1, 2.5, None], "failurePolicy": {"drop": {}}},
                       {"name": "r-drop", "dueTime": "90s", "data": {"@type": VALUE_TYPE, "value": [1, 2.5, None]},
                        "failurePolicy": {"drop": {}}}),
            "r-nodata": ({"dueTime": "2030-03-02T16:45:00+02:00", "unknownField": {"x": 1}},
                         {"name": "r-nodata", "dueTime": "2030-03-02T16:45:00+02:00",
                          "failurePolicy": DEFAULT_POLICY}),
        }
        for name, (body, want) in cases.items():
            with self.subTest(name=name):
                self.assert_no_content(sc.post_job(name, body))
                r = sc.get_job(name)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.headers["content-type"], "application/json")
                self.assertEqual(r.json(), want)
        self.assert_no_content(sc.delete_job("r-1"))
        self.assert_error(sc.get_job("r-1"), 500, "DAPR_SCHEDULER_GET_JOB")
        self.assert_no_content(sc.delete_job("r-1"))
        self.assert_no_content(sc.delete_job("never-existed"))
        self.assert_error(sc.get_job("never-existed"), 500, "DAPR_SCHEDULER_GET_JOB")

    def test_existing_name_is_409_unless_overwrite(self):
        sc = self.sc
        self.assert_no_content(sc.post_job("r-1", {"dueTime": "2030-01-01T00:00:00Z", "data": {"v": 1}}))
        for extra in ({}, {"overwrite": False}):
            with self.subTest(extra=extra):
                body = self.assert_error(sc.post_job("r-1", {"dueTime": "2031-01-01T00:00:00Z", "data": {"v": 2},
                                                             **extra}), 409, "DAPR_SCHEDULER_SCHEDULE_JOB")
                self.assertEqual(body["details"][0]["reason"], "DAPR_SCHEDULER_SCHEDULE_JOB")
                got = sc.get_job("r-1").json()
                self.assertEqual((got["dueTime"], got["data"]["value"]), ("2030-01-01T00:00:00Z", {"v": 1}))
        self.assert_no_content(sc.post_job("r-1", {"dueTime": "2031-01-01T00:00:00Z", "data": {"v": 2},
                                                   "overwrite": True}))
        got = sc.get_job("r-1").json()
        self.assertEqual((got["dueTime"], got["data"]["value"]), ("2031-01-01T00:00:00Z", {"v": 2}))
        self.assertEqual(list(sc.jobs()), ["r-1"])

    def test_bad_requests(self):
        far = "2030-01-01T00:00:00Z"
        cases = [
            ("{not json", 400, "ERR_MALFORMED_REQUEST"),
            ("[]", 400, "ERR_MALFORMED_REQUEST"),
            ({"dueTime": 5, "data": 1}, 400, "ERR_MALFORMED_REQUEST"),
            ({"dueTime": far, "due_time": far, "data": 1}, 400, "ERR_MALFORMED_REQUEST"),
            ({"dueTime": far, "overwrite": "yes", "data": 1}, 400, "ERR_MALFORMED_REQUEST"),
            ({"dueTime": far, "repeats": -1, "data": 1}, 400, "ERR_MALFORMED_REQUEST"),
            ({"dueTime": far, "data": 1, "failurePolicy": {"drop": {}, "constant": {}}}, 400, "ERR_MALFORMED_REQUEST"),
            ({"dueTime": far, "data": 1, "failurePolicy": {"constant": {"interval": "1m"}}}, 400,
             "ERR_MALFORMED_REQUEST"),
            ({"data": {"task": "t1"}}, 400, "DAPR_SCHEDULER_SCHEDULE_EMPTY"),
            ("", 400, "DAPR_SCHEDULER_SCHEDULE_EMPTY"),
            ({"name": "r-x", "dueTime": far, "data": 1}, 400, "DAPR_SCHEDULER_JOB_NAME"),
            ({"dueTime": "tomorrow", "data": 1}, 500, "DAPR_SCHEDULER_SCHEDULE_JOB"),
            ({"dueTime": "2030-13-01T00:00:00Z", "data": 1}, 500, "DAPR_SCHEDULER_SCHEDULE_JOB"),
            ({"dueTime": "2030-01-01 00:00:00Z", "data": 1}, 500, "DAPR_SCHEDULER_SCHEDULE_JOB"),
            ({"dueTime": "R2/PT1S", "data": 1}, 500, "DAPR_SCHEDULER_SCHEDULE_JOB"),
            ({"dueTime": far, "ttl": "1h", "data": 1}, 500, "DAPR_SCHEDULER_SCHEDULE_JOB"),
            ({"dueTime": far, "repeats": 2, "data": 1}, 500, "DAPR_SCHEDULER_SCHEDULE_JOB"),
            ({"schedule": "@every 1s", "repeats": 0, "data": 1}, 500, "DAPR_SCHEDULER_SCHEDULE_JOB"),
            ({"schedule": "not a cron", "data": 1}, 500, "DAPR_SCHEDULER_SCHEDULE_JOB"),
            ({"schedule": "0 30 * * *", "data": 1}, 500, "DAPR_SCHEDULER_SCHEDULE_JOB"),
            ({"schedule": "0 61 * * * *", "data": 1}, 500, "DAPR_SCHEDULER_SCHEDULE_JOB"),
            ({"schedule": "@every", "data": 1}, 500, "DAPR_SCHEDULER_SCHEDULE_JOB"),
            ({"schedule": "@every 1h", "dueTime": "2030-01-02T00:00:00Z", "ttl": "2030-01-01T00:00:00Z",
              "data": 1}, 500, "DAPR_SCHEDULER_SCHEDULE_JOB"),
            ({"schedule": "@every 1h", "ttl": "soon", "data": 1}, 500, "DAPR_SCHEDULER_SCHEDULE_JOB"),
        ]
        for body, status, code in cases:
            with self.subTest(body=body):
                raw = body.encode() if isinstance(body, str) else None
                r = self.sc.post_job("r-bad", body if raw is None else None, raw=raw)
                err = self.assert_error(r, status, code)
                if code.startswith("DAPR_"):
                    self.assertEqual(err["details"][0]["reason"], code)
        self.assertEqual(self.sc.jobs(), {})

    def test_names(self):
        sc = self.sc
        body = {"dueTime": "2030-01-01T00:00:00Z", "data": 1}
        # From 1.16.17 on, anything but / \ # ?, control characters, "." and "..".
        for good in ("a|b", "R-1_x:y", "a.b", "Upper"):
            with self.subTest(name=good):
                self.assert_no_content(sc.post_job(good.replace("|", "%7C"), body))
                self.assertEqual(sc.get_job(good.replace("|", "%7C")).json()["name"], good)
        for bad in ("%2E", "%2E%2E", "a%23b", "a%3Fb", "a%5Cb", "a%2Fb", "a%01b", "a%7Fb"):
            with self.subTest(name=bad):
                self.assert_error(sc.post_job(bad, body), 500, "DAPR_SCHEDULER_SCHEDULE_JOB")
                self.assert_error(sc.get_job(bad), 500, "DAPR_SCHEDULER_GET_JOB")
        self.assert_error(sc.post_job("", body), 400, "DAPR_SCHEDULER_JOB_NAME_EMPTY")
        self.assertEqual(sorted(sc.jobs()), sorted(["a|b", "R-1_x:y", "a.b", "Upper"]))

    def test_relative_due_times_count_from_the_current_second(self):
        # go-etcd-cron truncates "now" to the second before adding a duration.
        sc = self.sc
        cases = {"r-go": ("1m30s", 90 * NS), "r-ms": ("90500ms", 90_500_000_000),
                 "r-iso": ("PT15M", 900 * NS), "r-iso-day": ("P1DT1S", 86401 * NS)}
        before = time.time_ns() // NS * NS
        for name, (due, _) in cases.items():
            self.assert_no_content(sc.post_job(name, {"dueTime": due, "data": 1}))
        after = time.time_ns() // NS * NS
        jobs = sc.jobs()
        for name, (due, delta) in cases.items():
            with self.subTest(dueTime=due):
                self.assertEqual(sc.get_job(name).json()["dueTime"], due)
                base = jobs[name]["nextNs"] - delta
                self.assertIn(base, (before, after))

    def test_recurring_schedules(self):
        sc, app = self.sc, self.app
        due, due_ns = due_in(0.3)
        self.assert_no_content(sc.post_job("r-every", {"schedule": "@every 1s", "repeats": 2, "data": "e"}))
        self.assert_no_content(sc.post_job("r-cron", {"schedule": "* * * * * *", "repeats": 2, "data": "c"}))
        self.assert_no_content(sc.post_job("r-due", {"schedule": "@every 1s", "dueTime": due, "repeats": 2,
                                                     "data": "d"}))
        self.assert_no_content(sc.post_job("r-ttl", {"schedule": "@every 1s", "ttl": "1500ms", "data": "t"}))
        for name in ("r-every", "r-cron", "r-due", "r-ttl"):
            eventually(lambda: sc.job_gone(name), 5, what=f"{name} to finish")
        for name in ("r-every", "r-cron", "r-due"):
            with self.subTest(name=name):
                times = [r.time_ns for r in app.jobs(name)]
                self.assertEqual(len(times), 2, name)
                self.assertGreater(times[1] - times[0], 0.8 * NS)
                self.assertLess(times[1] - times[0], 1.3 * NS)
        self.assertEqual([t["scheduledNs"] % NS for t in sc.triggers("r-cron")], [0, 0])
        self.assertGreaterEqual(app.jobs("r-due")[0].time_ns, due_ns)
        self.assertEqual(sc.triggers("r-due")[1]["scheduledNs"] - due_ns, NS)
        self.assertEqual(len(app.jobs("r-ttl")), 1, "ttl ends the schedule")


def load_sidecar_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("dapr_sidecar", SIDECAR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TimeRulesTest(unittest.TestCase):
    """The Go parsing and cron rules behind dueTime, ttl and schedule (no sockets)."""

    @classmethod
    def setUpClass(cls):
        cls.ds = load_sidecar_module()

    def at(self, text):
        ns = self.ds.parse_rfc3339(text)
        self.assertIsNotNone(ns, text)
        return ns

    def test_cron_next(self):
        cases = [("0 30 9 * * 1-5", "2026-03-06T10:00:00Z", ["2026-03-09T09:30:00Z", "2026-03-10T09:30:00Z"]),
                 ("0 30 * * * *", "2026-03-02T16:45:00Z", ["2026-03-02T17:30:00Z", "2026-03-02T18:30:00Z"]),
                 ("*/15 * * * * *", "2026-03-02T16:45:07.5Z", ["2026-03-02T16:45:15Z", "2026-03-02T16:45:30Z"]),
                 ("0 0 12 * * SUN", "2026-03-02T16:45:00Z", ["2026-03-08T12:00:00Z", "2026-03-15T12:00:00Z"]),
                 ("0 0 0 29 2 *", "2026-03-01T00:00:00Z", ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]),
                 ("0 0 0 1 jan-mar/2 *", "2026-02-15T00:00:00Z", ["2026-03-01T00:00:00Z", "2027-01-01T00:00:00Z"]),
                 ("@monthly", "2026-01-31T12:00:00Z", ["2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"]),
                 ("@weekly", "2026-03-02T16:45:00Z", ["2026-03-08T00:00:00Z", "2026-03-15T00:00:00Z"]),
                 ("@yearly", "2026-03-02T16:45:00Z", ["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"]),
                 # Rome leaves DST on 2026-10-25: 09:00 local moves from 07:00Z to 08:00Z.
                 ("CRON_TZ=Europe/Rome 0 0 9 * * *", "2026-10-24T00:00:00Z",
                  ["2026-10-24T07:00:00Z", "2026-10-25T08:00:00Z"]),
                 ("@every 1h30m", "2026-03-02T16:45:00.123456789Z",
                  ["2026-03-02T18:15:00.123Z", "2026-03-02T19:45:00.123Z"])]
        for spec, start, want in cases:
            with self.subTest(spec=spec):
                schedule = self.ds.parse_schedule(spec)
                t, got = self.at(start), []
                for _ in want:
                    t = schedule.next(t)
                    got.append(t)
                self.assertEqual(got, [self.at(w) for w in want])
        self.assertIsNone(self.ds.parse_schedule("0 0 0 31 2 *").next(self.at("2026-01-01T00:00:00Z")))
        for bad in ("", "0 30 * * *", "0 60 * * * *", "0 0 0 0 * *", "* * * * * 7", "@every", "@every 1d",
                    "@often", "TZ=Nowhere/City * * * * * *", "5-1 * * * * *", "*/0 * * * * *", "2h45m"):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                self.ds.parse_schedule(bad)

    def test_go_durations(self):
        good = {"90s": 90 * NS, "1m30s": 90 * NS, "500ms": NS // 2, "1.5h": 5400 * NS, "-1s": -NS, "0": 0,
                "5.s": 5 * NS, "1us": 1000, "1\u00b5s": 1000, "2h45m": 9900 * NS}
        for text, ns in good.items():
            with self.subTest(text=text):
                self.assertEqual(self.ds.parse_go_duration(text), ns)
        for bad in ("", ".s", "1d", "1h-2m", "s", "1", "PT1S", "9999999999h"):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                self.ds.parse_go_duration(bad)

    def test_points_in_time(self):
        now = self.at("2026-01-31T10:00:00Z")
        cases = {"2026-03-02T16:45:00Z": "2026-03-02T16:45:00Z",
                 "2026-03-02T18:45:00.5+02:00": "2026-03-02T16:45:00.5Z",
                 "2026-03-02T16:45:00.123456789-01:30": "2026-03-02T18:15:00.123456789Z",
                 "90s": "2026-01-31T10:01:30Z", "PT15M": "2026-01-31T10:15:00Z",
                 "P1M": "2026-03-03T10:00:00Z",  # Go's AddDate normalises Feb 31
                 "P1Y2M3DT4H5M6S": "2027-04-03T14:05:06Z", "P1W": "2026-02-07T10:00:00Z"}
        for text, want in cases.items():
            with self.subTest(text=text):
                self.assertEqual(self.ds.parse_point_in_time(text, now), self.at(want))
        for bad in ("tomorrow", "2026-03-02T16:45:00", "2026-02-30T00:00:00Z", "2026-03-02t16:45:00z",
                    "2026-03-02 16:45:00Z", "R3/PT1S", "P", "PT1.5S"):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                self.ds.parse_point_in_time(bad, now)

    def test_json_numbers_as_float64(self):
        cases = {1: "1", 2.5: "2.5", 1e21: "1e+21", 1e20: "100000000000000000000", 1.5e-7: "1.5e-7",
                 12345678901234567890: "12345678901234567000", -0.0: "-0", 1e-6: "0.000001"}
        for value, want in cases.items():
            with self.subTest(value=value):
                self.assertEqual(self.ds.format_go_float(float(value)), want)


# ---------------------------------------------------------------- triggers

class TriggerTest(SidecarCase):
    def test_trigger_request_shape_never_early(self):
        app = self.start_app()
        sc = self.start_sidecar("--app-token=app-s3cret", app=app)
        data = {"task": "t1", "n": 2, "nested": {"z": [1, "two", None], "a": True}, "html": "<&>"}
        due_z, ns_z = due_in(0.5)
        due_off, ns_off = due_in(0.6, offset_hours=2)
        self.assert_no_content(sc.post_job("r-z", {"dueTime": due_z, "data": data, "overwrite": True}))
        self.assert_no_content(sc.post_job("r-off", {"dueTime": due_off, "data": data}))
        for name, due_ns in (("r-z", ns_z), ("r-off", ns_off)):
            with self.subTest(name=name):
                got = eventually(lambda: app.jobs(name), what=f"the trigger of {name}")[0]
                self.assertEqual((got.method, got.path), ("POST", f"/job/{name}"))
                self.assertEqual(got.headers["content-type"], "application/json")
                self.assertEqual(got.headers["dapr-api-token"], "app-s3cret")
                self.assertEqual(json.loads(got.body), data)
                keys = [k for k, _ in json.loads(got.body, object_pairs_hook=lambda p: p)]
                self.assertEqual(keys, sorted(keys), "protojson sorts Struct keys")
                self.assertNotIn(b"@type", got.body)
                self.assertGreaterEqual(got.time_ns, due_ns, "fired early")
                self.assertLess(got.time_ns - due_ns, 0.5 * NS, "fired late")
                eventually(lambda: sc.job_gone(name), what=f"{name} to be deleted once delivered")
                [t] = sc.triggers(name)
                self.assertEqual((t["attempt"], t["status"], t["delivered"], t["scheduledNs"]), (1, 200, True, due_ns))
                self.assertEqual(len(app.jobs(name)), 1)

    def test_without_app_token_no_token_header(self):
        app = self.start_app()
        sc = self.start_sidecar(app=app)
        self.assert_no_content(sc.post_job("r-1", {"dueTime": "0s", "data": "s"}))
        got = eventually(lambda: app.jobs("r-1"))[0]
        self.assertNotIn("dapr-api-token", got.headers)
        self.assertEqual(got.body, b'"s"')

    def test_default_policy_four_attempts_one_second_apart_then_deleted(self):
        app = self.start_app()
        app.statuses["r-fail"] = [500]
        sc = self.start_sidecar(app=app)
        due, due_ns = due_in(0.2)
        self.assert_no_content(sc.post_job("r-fail", {"dueTime": due, "data": {"x": 1}}))
        eventually(lambda: sc.job_gone("r-fail"), 8, what="the job to be dropped after its last attempt")
        times = [r.time_ns for r in app.jobs("r-fail")]
        self.assertEqual(len(times), 4, "4 attempts, then the job is gone")
        self.assertGreaterEqual(times[0], due_ns)
        for a, b in zip(times, times[1:]):
            self.assertGreater(b - a, 0.9 * NS)
            self.assertLess(b - a, 1.3 * NS)
        log = sc.triggers("r-fail")
        self.assertEqual([(t["attempt"], t["status"], t["delivered"]) for t in log],
                         [(n, 500, False) for n in (1, 2, 3, 4)])
        self.assertEqual([t["scheduledNs"] - due_ns for t in log], [0, NS, 2 * NS, 3 * NS])

    def test_refused_connection_is_a_failed_attempt(self):
        # Without app health checks a dead app burns all attempts.
        app = self.start_app()
        sc = self.start_sidecar(app=app)
        eventually(lambda: sc.request("GET", "/v1.0/healthz").status == 204)
        app.stop()
        self.assert_no_content(sc.post_job("r-dead", {"dueTime": "0s", "data": 1}))
        eventually(lambda: sc.job_gone("r-dead"), 8, what="the job to be dropped")
        log = sc.triggers("r-dead")
        self.assertEqual([t["attempt"] for t in log], [1, 2, 3, 4])
        self.assertTrue(all(t["status"] is None and "Refused" in t["error"] for t in log), log)

    def test_404_counts_as_delivered(self):
        app = self.start_app()
        app.statuses["r-404"] = [404]
        sc = self.start_sidecar(app=app)
        self.assert_no_content(sc.post_job("r-404", {"dueTime": "0s", "data": 1}))
        eventually(lambda: sc.job_gone("r-404"))
        self.assertEqual(len(app.jobs("r-404")), 1)
        self.assertEqual([(t["status"], t["delivered"]) for t in sc.triggers("r-404")], [(404, True)])

    def test_retry_then_success(self):
        app = self.start_app()
        app.statuses["r-flaky"] = [503, 200]
        sc = self.start_sidecar(app=app)
        self.assert_no_content(sc.post_job("r-flaky", {"dueTime": "0s", "data": 1}))
        eventually(lambda: sc.job_gone("r-flaky"), 4)
        self.assertEqual([(t["attempt"], t["status"]) for t in sc.triggers("r-flaky")], [(1, 503), (2, 200)])
        self.assertEqual(len(app.jobs("r-flaky")), 2)

    def test_drop_and_constant_policies(self):
        app = self.start_app()
        for name in ("r-drop", "r-twice", "r-forever"):
            app.statuses[name] = [500]
        sc = self.start_sidecar(app=app)
        self.assert_no_content(sc.post_job("r-drop", {"dueTime": "0s", "data": 1, "failurePolicy": {"drop": {}}}))
        due, due_ns = due_in(0.1)
        self.assert_no_content(sc.post_job("r-twice", {"dueTime": due, "data": 1, "failurePolicy": {
            "constant": {"interval": "0.2s", "maxRetries": 1}}}))
        self.assert_no_content(sc.post_job("r-forever", {"dueTime": "0s", "data": 1, "failurePolicy": {
            "constant": {"interval": "0.05s"}}}))
        eventually(lambda: sc.job_gone("r-drop") and sc.job_gone("r-twice"), what="drop and twice to end")
        self.assertEqual(len(app.jobs("r-drop")), 1, "drop never retries")
        twice = [r.time_ns for r in app.jobs("r-twice")]
        self.assertEqual(len(twice), 2)
        self.assertGreater(twice[1] - twice[0], 0.15 * NS)
        self.assertEqual([t["scheduledNs"] - due_ns for t in sc.triggers("r-twice")], [0, NS // 5])
        # constant without maxRetries retries until the job is deleted
        eventually(lambda: len(app.jobs("r-forever")) >= 8, what="many retries")
        self.assertGreaterEqual(sc.jobs()["r-forever"]["attempts"], 7)
        self.assert_no_content(sc.delete_job("r-forever"))
        self.assertTrue(sc.job_gone("r-forever"))

    def test_slow_app_times_out_as_a_failure(self):
        app = self.start_app()
        app.delays["r-slow"] = 1.0
        sc = self.start_sidecar("--trigger-timeout=0.3", app=app)
        self.assert_no_content(sc.post_job("r-slow", {"dueTime": "0s", "data": 1, "failurePolicy": {"drop": {}}}))
        eventually(lambda: sc.job_gone("r-slow"), what="the timed-out job to be dropped")
        [t] = sc.triggers("r-slow")
        self.assertIsNone(t["status"])
        self.assertIn("timed out", t["error"])

    def test_missing_data_fails_every_attempt_and_null_is_data(self):
        app = self.start_app()
        sc = self.start_sidecar(app=app)
        policy = {"constant": {"interval": "0.1s", "maxRetries": 2}}
        self.assert_no_content(sc.post_job("r-nodata", {"dueTime": "0s", "failurePolicy": policy}))
        self.assert_no_content(sc.post_job("r-null", {"dueTime": "0s", "data": None}))
        eventually(lambda: sc.job_gone("r-nodata") and sc.job_gone("r-null"))
        self.assertEqual(app.jobs("r-nodata"), [], "an empty Value is never sent")
        log = sc.triggers("r-nodata")
        self.assertEqual([(t["attempt"], t["delivered"]) for t in log], [(1, False), (2, False), (3, False)])
        self.assertTrue(all(t["error"] for t in log))
        self.assertEqual(app.jobs("r-null")[0].body, b"null")

    def test_triggers_run_concurrently(self):
        app = self.start_app()
        names = ["r-c1", "r-c2", "r-c3"]
        for name in names:
            app.delays[name] = 0.8
        sc = self.start_sidecar(app=app)
        due, _ = due_in(0.3)
        for name in names:
            self.assert_no_content(sc.post_job(name, {"dueTime": due, "data": name}))
        eventually(lambda: all(app.jobs(n) for n in names), what="all three triggers")
        starts = [app.jobs(n)[0].time_ns for n in names]
        self.assertLess(max(starts) - min(starts), 0.4 * NS, "triggers were serialised")


# ----------------------------------------------------------------- staging

class StagingTest(SidecarCase):
    def assert_nothing_tried(self, sc, app, name, until_ns):
        wait_until_ns(until_ns)
        self.assertEqual(app.jobs(name), [])
        self.assertEqual(sc.triggers(name), [])
        self.assertEqual(sc.jobs()[name]["attempts"], 0)

    def test_disconnected_sidecar_stages_due_jobs(self):
        app = self.start_app()
        sc = self.start_sidecar(app=app)
        sc.disconnect()
        due, due_ns = due_in(0.1)
        self.assert_no_content(sc.post_job("r-staged", {"dueTime": due, "data": 1}))
        self.assert_nothing_tried(sc, app, "r-staged", due_ns + int(0.6 * NS))
        connected = time.time_ns()
        sc.connect()
        got = eventually(lambda: app.jobs("r-staged"), what="delivery after reconnecting")[0]
        self.assertGreaterEqual(got.time_ns, connected)
        self.assertLess(got.time_ns - connected, 0.5 * NS)
        self.assertEqual([t["attempt"] for t in sc.triggers("r-staged")], [1])
        eventually(lambda: sc.job_gone("r-staged"))

    def test_retries_wait_while_disconnected(self):
        app = self.start_app()
        app.statuses["r-retry"] = [500, 200]
        sc = self.start_sidecar(app=app)
        # An exact dueTime keeps the retry a full second after the first attempt.
        self.assert_no_content(sc.post_job("r-retry", {"dueTime": due_in(0.1)[0], "data": 1}))
        eventually(lambda: sc.jobs().get("r-retry", {}).get("attempts") == 1, what="the first failed attempt")
        sc.disconnect()
        retry_ns = sc.jobs()["r-retry"]["nextNs"]
        wait_until_ns(retry_ns + int(0.5 * NS))
        self.assertEqual(len(app.jobs("r-retry")), 1)
        self.assertEqual(sc.jobs()["r-retry"]["attempts"], 1)
        sc.connect()
        eventually(lambda: sc.job_gone("r-retry"), what="the retry after reconnecting")
        self.assertEqual([(t["attempt"], t["status"]) for t in sc.triggers("r-retry")], [(1, 500), (2, 200)])

    def test_unhealthy_app_stages_due_jobs(self):
        app = self.start_app()
        app.health = 503
        sc = self.start_sidecar("--app-health-check", "--app-health-interval=0.05", app=app)
        eventually(lambda: app.probes(), what="a health probe")
        due, due_ns = due_in(0.1)
        self.assert_no_content(sc.post_job("r-sick", {"dueTime": due, "data": 1}))
        self.assert_nothing_tried(sc, app, "r-sick", due_ns + int(0.6 * NS))
        healthy = time.time_ns()
        app.health = 200
        got = eventually(lambda: app.jobs("r-sick"), what="delivery after recovery")[0]
        self.assertGreaterEqual(got.time_ns, healthy)
        self.assertEqual([t["attempt"] for t in sc.triggers("r-sick")], [1])
        self.assertTrue(all((p.method, p.path) == ("GET", "/health") for p in app.probes()))

    def test_health_path_is_configurable(self):
        app = self.start_app()
        sc = self.start_sidecar("--app-health-check", "--app-health-path=/ready", "--app-health-interval=0.05",
                                app=app)
        eventually(lambda: len(app.probes()) >= 2)
        self.assertEqual({p.path for p in app.probes()}, {"/ready"})
        self.assert_no_content(sc.post_job("r-1", {"dueTime": "0s", "data": 1}))
        eventually(lambda: app.jobs("r-1"))

    def test_no_probes_without_the_flag(self):
        app = self.start_app()
        sc = self.start_sidecar(app=app)
        self.assert_no_content(sc.post_job("r-1", {"dueTime": "0s", "data": 1}))
        eventually(lambda: sc.job_gone("r-1"))
        self.assertEqual(app.probes(), [])


# ------------------------------------------------------------- persistence

class PersistenceTest(SidecarCase):
    def test_jobs_survive_a_restart(self):
        data_dir = tempfile.mkdtemp(prefix="dapr-sidecar-data-")
        self.addCleanup(shutil.rmtree, data_dir, True)
        app = self.start_app()
        app.statuses["r-retry"] = [500]
        sc1 = self.start_sidecar(f"--data-dir={data_dir}", app=app)
        due, due_ns = due_in(0.8)
        self.assert_no_content(sc1.post_job("r-soon", {"dueTime": due, "data": {"task": "t1"}}))
        self.assert_no_content(sc1.post_job("r-later", {"dueTime": "2030-01-01T00:00:00Z", "data": [1],
                                                        "failurePolicy": {"drop": {}}}))
        self.assert_no_content(sc1.post_job("r-retry", {"dueTime": due_in(0.1)[0], "data": 1}))
        later = sc1.get_job("r-later").json()
        eventually(lambda: sc1.jobs()["r-retry"]["attempts"] == 1, what="the first attempt of r-retry")
        self.assertEqual(sc1.stop(), 0)
        tried = len(app.jobs("r-retry"))
        with open(os.path.join(data_dir, "jobs.json"), encoding="utf-8") as f:
            self.assertEqual({j["name"] for j in json.load(f)["jobs"]}, {"r-soon", "r-later", "r-retry"})

        wait_until_ns(due_ns + int(0.2 * NS))  # r-soon falls due while no sidecar runs
        self.assertEqual(app.jobs("r-soon"), [])
        started = time.time_ns()
        sc2 = self.start_sidecar(f"--data-dir={data_dir}", app=app)
        got = eventually(lambda: app.jobs("r-soon"), what="the overdue job after the restart")[0]
        self.assertLess(got.time_ns - started, 1 * NS, "an overdue job fires at once after a restart")
        self.assertEqual(json.loads(got.body), {"task": "t1"})
        self.assertEqual(sc2.get_job("r-later").json(), later)
        # attempts are durable: the restarted sidecar goes on counting
        first = eventually(lambda: sc2.triggers("r-retry"), what="r-retry after the restart")[0]
        self.assertEqual(first["attempt"], tried + 1)
        eventually(lambda: sc2.job_gone("r-soon"))


# ------------------------------------------------------------------- state

class StateContract:
    """The state API rules; subclasses start the sidecar on a store."""

    sc = None
    store_args = ()

    @classmethod
    def setUpClass(cls):
        cls.sc = Sidecar(cls.store_args)
        cls.addClassCleanup(cls.sc.cleanup)
        cls.sc.start()

    def k(self, name):
        return f"{self._testMethodName}-{name}"

    def save(self, items, query=""):
        return self.sc.request("POST", f"/v1.0/state/statestore{query}", items)

    def get(self, key):
        return self.sc.request("GET", f"/v1.0/state/statestore/{key}")

    def etag_of(self, key):
        r = self.get(key)
        self.assertEqual(r.status, 200, r)
        return r.headers["etag"]

    def test_save_and_get(self):
        k, s = self.k("obj"), self.k("str")
        value = {"b": 1, "a": [1, 2.5, "x<y&z"], "c": None, "big": 12345678901234567890, "u": "\u00e9"}
        self.assert_no_content(self.save([{"key": k, "value": value}, {"key": s, "value": "hello"}]))
        r = self.get(k)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertRegex(r.headers["etag"], UUID_RE)
        self.assertNotIn("metadata.ttlexpiretime", r.headers)
        # re-serialised by encoding/json: compact, sorted, float64, HTML-escaped
        self.assertEqual(r.body, '{"a":[1,2.5,"x\\u003cy\\u0026z"],"b":1,"big":12345678901234567000,'
                                 '"c":null,"u":"\u00e9"}'.encode())
        self.assertEqual(self.get(s).body, b'"hello"')
        first = r.headers["etag"]
        self.assert_no_content(self.save([{"key": k, "value": 2}]))
        self.assertNotEqual(self.etag_of(k), first, "every write gets a new ETag")

    def test_missing_key_is_204(self):
        self.assert_no_content(self.get(self.k("absent")))

    def test_validation(self):
        self.assert_no_content(self.save([]))
        cases = [([{"value": 1}], 400, "ERR_MALFORMED_REQUEST"),
                 ([{"key": "a||b", "value": 1}], 400, "ERR_MALFORMED_REQUEST"),
                 ({"key": "k", "value": 1}, 400, "ERR_MALFORMED_REQUEST"),
                 ([{"key": "k", "value": 1, "metadata": {"ttlInSeconds": 1}}], 400, "ERR_MALFORMED_REQUEST"),
                 ([{"key": "k", "value": 1, "metadata": {"ttlInSeconds": "soon"}}], 500, "ERR_STATE_SAVE"),
                 ([{"key": "k", "value": 1, "options": {"concurrency": "lock"}}], 500, "ERR_STATE_SAVE")]
        for body, status, code in cases:
            with self.subTest(body=body):
                self.assert_error(self.save(body), status, code)
        self.assert_error(self.sc.request("POST", "/v1.0/state/statestore", raw=b"[{"), 400, "ERR_MALFORMED_REQUEST")
        self.assert_error(self.sc.request("POST", "/v1.0/state/other", [{"key": "k", "value": 1}]), 400,
                          "ERR_STATE_STORE_NOT_FOUND")
        self.assert_error(self.sc.request("GET", "/v1.0/state/other/k"), 400, "ERR_STATE_STORE_NOT_FOUND")
        self.assert_error(self.get("a||b"), 400, "ERR_MALFORMED_REQUEST")
        self.assert_error(self.sc.request("DELETE", "/v1.0/state/statestore/a||b"), 400, "ERR_MALFORMED_REQUEST")
        self.assert_no_content(self.get("k"))

    def test_etag_rules(self):
        k = self.k("k")
        self.assert_no_content(self.save([{"key": k, "value": 1}]))
        e1 = self.etag_of(k)
        self.assert_no_content(self.save([{"key": k, "value": 2, "etag": e1}]))
        e2 = self.etag_of(k)
        self.assertNotEqual(e1, e2)
        self.assert_error(self.save([{"key": k, "value": 3, "etag": e1}]), 409, "ERR_STATE_SAVE")
        self.assertEqual(self.get(k).body, b"2", "a 409 leaves the value")
        self.assert_error(self.save([{"key": self.k("absent"), "value": 1, "etag": e2}]), 409, "ERR_STATE_SAVE")
        self.assert_no_content(self.get(self.k("absent")))
        self.assert_no_content(self.save([{"key": k, "value": 4, "etag": ""}]))  # empty = no ETag

    def test_first_write(self):
        k = self.k("k")
        fw = {"concurrency": "first-write"}
        self.assert_no_content(self.save([{"key": k, "value": 1, "options": fw}]))
        err = self.assert_error(self.save([{"key": k, "value": 2, "options": fw}]), 500, "ERR_STATE_SAVE")
        self.assertIn("no item was updated", err["message"])
        self.assertEqual(self.get(k).body, b"1")
        self.assert_no_content(self.save([{"key": k, "value": 3, "options": fw, "etag": self.etag_of(k)}]))
        self.assert_no_content(self.save([{"key": k, "value": 4, "options": {"concurrency": "last-write"}}]))
        self.assertEqual(self.get(k).body, b"4")

    def test_delete_if_match(self):
        k, absent = self.k("k"), self.k("absent")
        delete = lambda key, **h: self.sc.request("DELETE", f"/v1.0/state/statestore/{key}", headers=h)  # noqa: E731
        self.assert_no_content(delete(absent))
        self.assert_error(delete(absent, **{"If-Match": str(uuid.uuid4())}), 409, "ERR_STATE_DELETE")
        self.assert_no_content(self.save([{"key": k, "value": 1}]))
        self.assert_error(delete(k, **{"If-Match": str(uuid.uuid4())}), 409, "ERR_STATE_DELETE")
        self.assertEqual(self.get(k).status, 200)
        self.assert_no_content(delete(k, **{"If-Match": self.etag_of(k)}))
        self.assert_no_content(self.get(k))

    def test_bulk(self):
        k1, k2, k3 = self.k("1"), self.k("2"), self.k("3")
        self.assert_no_content(self.save([{"key": k1, "value": {"v": 1}}, {"key": k2, "value": "two"}]))
        r = self.sc.request("POST", "/v1.0/state/statestore/bulk", {"keys": [k1, k2, k3], "parallelism": 10})
        self.assertEqual(r.status, 200, r)
        items = {i["key"]: i for i in r.json()}
        self.assertEqual(set(items), {k1, k2, k3}, "bare keys, one item per key")
        self.assertEqual(items[k1], {"key": k1, "data": {"v": 1}, "etag": self.etag_of(k1)})
        self.assertEqual(items[k2]["data"], "two")
        self.assertEqual(items[k3], {"key": k3})
        r = self.sc.request("POST", "/v1.0/state/statestore/bulk", {"keys": []})
        self.assertEqual((r.status, r.json()), (200, []))
        self.assert_error(self.sc.request("POST", "/v1.0/state/statestore/bulk", {"keys": ["a||b"]}), 400,
                          "ERR_MALFORMED_REQUEST")

    def test_transaction_is_all_or_nothing(self):
        k1, k2, k3 = self.k("1"), self.k("2"), self.k("3")
        tx = lambda ops: self.sc.request("POST", "/v1.0/state/statestore/transaction",  # noqa: E731
                                         {"operations": ops})
        self.assert_no_content(self.save([{"key": k1, "value": 1}]))
        e1 = self.etag_of(k1)
        self.assert_error(tx([{"operation": "upsert", "request": {"key": k2, "value": 2}},
                              {"operation": "delete", "request": {"key": k1, "etag": str(uuid.uuid4())}}]),
                          500, "ERR_STATE_TRANSACTION")
        self.assert_no_content(self.get(k2))
        self.assertEqual(self.etag_of(k1), e1)
        self.assert_error(tx([{"operation": "upsert", "request": {"key": k2, "value": 2}},
                              {"operation": "upsert", "request": {"key": k3, "value": 3, "etag": e1}}]),
                          500, "ERR_STATE_TRANSACTION")
        self.assert_no_content(self.get(k2))
        self.assert_no_content(tx([{"operation": "upsert", "request": {"key": k2, "value": {"b": 2, "a": 1}}},
                                   {"operation": "upsert", "request": {"key": k1, "value": 11, "etag": e1}},
                                   {"operation": "delete", "request": {"key": k3}}]))
        self.assertEqual(self.get(k2).body, b'{"a":1,"b":2}')
        self.assertEqual(self.get(k1).body, b"11")
        self.assertNotEqual(self.etag_of(k1), e1)
        self.assert_error(tx([{"operation": "merge", "request": {"key": k1, "value": 1}}]), 400,
                          "ERR_NOT_SUPPORTED_STATE_OPERATION")
        self.assert_error(tx([{"operation": "upsert", "request": {"key": "a||b", "value": 1}}]), 400,
                          "ERR_MALFORMED_REQUEST")
        self.assert_no_content(tx([]))
        self.assertEqual(self.get(k1).body, b"11")

    def test_array_save_is_not_atomic(self):
        a, b = self.k("a"), self.k("b")
        self.assert_error(self.save([{"key": a, "value": 1}, {"key": b, "value": 2, "etag": str(uuid.uuid4())}]),
                          409, "ERR_STATE_SAVE")
        self.assertEqual(self.get(a).body, b"1")
        self.assert_no_content(self.get(b))

    def test_ttl(self):
        k, q, never = self.k("ttl"), self.k("query"), self.k("never")
        self.assert_no_content(self.save([{"key": k, "value": 1, "metadata": {"ttlInSeconds": "1"}}]))
        self.assert_no_content(self.save([{"key": q, "value": 1}], "?metadata.ttlInSeconds=1"))
        self.assert_no_content(self.save([{"key": never, "value": 1, "metadata": {"ttlInSeconds": "-1"}}]))
        r = self.get(k)
        expires = r.headers["metadata.ttlexpiretime"]
        self.assertRegex(expires, RFC3339_SECONDS_RE)
        at = dt.datetime.strptime(expires, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc).timestamp()
        self.assertLess(abs(at - time.time()), 3)
        etag = r.headers["etag"]
        self.assertIn("metadata.ttlexpiretime", self.get(q).headers)
        self.assertNotIn("metadata.ttlexpiretime", self.get(never).headers)
        eventually(lambda: self.get(k).status == 204 and self.get(q).status == 204, 4, what="expiry")
        r = self.sc.request("POST", "/v1.0/state/statestore/bulk", {"keys": [k]})
        self.assertEqual(r.json(), [{"key": k}])
        self.assert_error(self.save([{"key": k, "value": 2, "etag": etag}]), 409, "ERR_STATE_SAVE")
        # first-write may take an expired key; a write without TTL clears it
        self.assert_no_content(self.save([{"key": k, "value": 3, "options": {"concurrency": "first-write"}}]))
        r = self.get(k)
        self.assertEqual((r.status, r.body), (200, b"3"))
        self.assertNotIn("metadata.ttlexpiretime", r.headers)


class MemoryStateTest(StateContract, SidecarCase):
    store_args = ()


@unittest.skipUnless(DATABASE_URL, "TODO_TEST_DATABASE_URL is not set")
class PostgresStateTest(StateContract, SidecarCase):
    app_id = "sidecar-test-" + uuid.uuid4().hex[:8]
    store_args = (f"--pg-dsn={DATABASE_URL}", f"--app-id={app_id}")

    @classmethod
    def setUpClass(cls):
        import psycopg2
        cls.db = psycopg2.connect(DATABASE_URL, connect_timeout=5, options="-c statement_timeout=5000")
        cls.db.autocommit = True
        cls.addClassCleanup(cls.db.close)
        super().setUpClass()
        cls.addClassCleanup(cls.sql, "DELETE FROM state WHERE key LIKE %s", (cls.app_id + "||%",))

    @classmethod
    def sql(cls, query, args=()):
        with cls.db.cursor() as cur:
            cur.execute(query, args)
            return cur.fetchall() if cur.description else None

    def test_rows_in_the_v2_table(self):
        k = self.k("row")
        self.assert_no_content(self.save([{"key": k, "value": {"b": [1], "a": "x"}}]))
        r = self.get(k)
        [(value, etag, updated, expires)] = self.sql(
            "SELECT value, etag::text, updated_at, expires_at FROM state WHERE key = %s", (f"{self.app_id}||{k}",))
        self.assertEqual(bytes(value), r.body)
        self.assertEqual(etag, r.headers["etag"])
        self.assertIsNone(updated)
        self.assertIsNone(expires)
        self.assert_no_content(self.save([{"key": k, "value": 2, "metadata": {"ttlInSeconds": "60"}}]))
        [(updated, ttl)] = self.sql("SELECT updated_at, extract(epoch FROM expires_at - now()) FROM state "
                                    "WHERE key = %s", (f"{self.app_id}||{k}",))
        self.assertIsNotNone(updated)
        self.assertTrue(55 < ttl <= 60, ttl)
        # a row written by another writer (the direct store) reads back through the API
        other = self.k("direct")
        [(direct_etag,)] = self.sql("INSERT INTO state (key, value) VALUES (%s, %s) RETURNING etag::text",
                                    (f"{self.app_id}||{other}", b'{"from":"direct"}'))
        r = self.get(other)
        self.assertEqual((r.status, r.body, r.headers["etag"]), (200, b'{"from":"direct"}', direct_etag))
        self.assertEqual(self.sql("SELECT value FROM dapr_metadata WHERE key = 'migrations-state-v2-'"), [("1",)])


if __name__ == "__main__":
    unittest.main()
