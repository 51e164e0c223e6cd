"""End-to-end harness: starts the built binary and drives it with curl.

Each test gets its own server process on a free port (PORT=0, read back from
the "listening" log line) and its own user ids, so tests never share rows.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import uuid

import contract
import event_contract

BINARY = os.environ.get("TODO_BINARY", "")
DATABASE_URL = os.environ.get("TODO_TEST_DATABASE_URL", "")
PG_BIN = os.environ.get("TODO_PG_BIN", "")
SECRET = "e2e-secret-0123456789abcdefghijklmnopqrstuvwxyz"


def require_environment():
    if not BINARY or not os.path.exists(BINARY):
        raise SystemExit("TODO_BINARY must name the built todo-server (run through scripts/test.sh)")
    if not DATABASE_URL:
        raise SystemExit("TODO_TEST_DATABASE_URL must be set (run through scripts/test.sh)")


def eventually(pred, timeout=10.0, interval=0.02, what="condition"):
    """Polls pred() until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


def curl(method, url, body=None, headers=None, timeout=10, raw_body=None):
    """One request through the curl binary; returns status, headers, body."""
    with tempfile.NamedTemporaryFile() as hdr, tempfile.NamedTemporaryFile() as out:
        verb = ["-I"] if method == "HEAD" else ["-X", method]
        cmd = ["curl", "-sS", *verb, "-D", hdr.name, "-o", out.name,
               "--max-time", str(timeout), "-H", "Expect:"]
        for k, v in (headers or {}).items():
            cmd += ["-H", f"{k}: {v}"]
        data = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            cmd += ["--data-binary", "@-"]
        cmd.append(url)
        p = subprocess.run(cmd, input=data.encode() if isinstance(data, str) else data,
                           capture_output=True, timeout=timeout + 5)
        if p.returncode != 0:
            return Response(0, {}, p.stderr.decode(errors="replace"))
        with open(hdr.name, "rb") as f:
            text = f.read().decode("latin-1")
        # With pipelined 100-continue there may be several header blocks: keep the last.
        blocks = [b for b in re.split(r"\r\n\r\n", text) if b.strip()]
        lines = blocks[-1].split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        with open(out.name, "rb") as f:
            r = Response(status, headers, f.read().decode("utf-8", errors="replace"))
        contract.record(method, url, r.status, r.headers, r.body)
        return r


class Server:
    """The built binary, started with the given environment."""

    def __init__(self, database_url=None, extra_env=None):
        self.env = dict(os.environ)
        self.env.update({
            "DATABASE_URL": database_url or DATABASE_URL,
            "JWT_SECRET": SECRET,
            "PORT": "0",
            "BIND_ADDRESS": "127.0.0.1",
            "THREADS": "2",
            "LOG_LEVEL": "info",
        })
        self.env.update(extra_env or {})
        self.proc = None
        self.port = None
        self.log_path = None

    def start(self, wait_ready=True):
        fd, self.log_path = tempfile.mkstemp(prefix="todo-e2e-", suffix=".log")
        self.log = os.fdopen(fd, "w")
        self.proc = subprocess.Popen([BINARY], env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

        def listening():
            for line in self.log_lines():
                if line.get("msg") == "listening":
                    return line["port"]
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}: {self.read_log()}")
            return None

        self.port = eventually(listening, 10, what="the listening log line")
        contract.watch(self.port)
        if wait_ready:
            eventually(lambda: self.get("/ready").status == 200, 15, what="/ready")
        return self

    def read_log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def log_lines(self):
        out = []
        for raw in self.read_log().splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                pass
        return out

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def request(self, method, path, body=None, user=None, token=None, headers=None, **kw):
        h = dict(headers or {})
        if user is not None:
            h["Authorization"] = f"Bearer {self.token(user)}"
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        if (body is not None or kw.get("raw_body") is not None) and "Content-Type" not in h:
            h["Content-Type"] = "application/json"
        r = curl(method, self.url(path), body=body, headers=h, **kw)
        event_contract.check_response(method, path, r.status, r.body)
        return r

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    _tokens = {}

    def token(self, user, ttl="1h"):
        key = (user, ttl)
        if key not in Server._tokens:
            p = subprocess.run([BINARY, "token", "--user", user, "--ttl", ttl],
                               env={"JWT_SECRET": SECRET}, capture_output=True, text=True, check=True)
            Server._tokens[key] = p.stdout.strip()
        return Server._tokens[key]

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        self.stop()
        if self.log_path and os.path.exists(self.log_path):
            os.unlink(self.log_path)


def new_user(prefix="u"):
    return f"{prefix}-{uuid.uuid4()}"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class PrivatePostgres:
    """A throwaway PostgreSQL cluster, for tests that stop and start it."""

    def __init__(self, settings=("fsync=off", "synchronous_commit=off")):
        if not PG_BIN:
            raise SystemExit("TODO_PG_BIN must name PostgreSQL's bin directory")
        self.dir = tempfile.mkdtemp(prefix="todo-e2e-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.settings = settings
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *args, check=True):
        cmd = list(args)
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        return subprocess.run(cmd, capture_output=True, text=True, check=check)

    @property
    def url(self):
        return f"postgresql://todo@127.0.0.1:{self.port}/postgres"

    def init(self):
        self._run(f"{PG_BIN}/initdb", "-D", self.data, "-U", "todo", "-A", "trust", "-E", "UTF8",
                  "--locale=C.UTF-8")
        return self

    def start(self):
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.dir}"
        opts += "".join(f" -c {s}" for s in self.settings)
        self._run(f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"),
                  "-o", opts, "-w", "-t", "30", "start")
        return self

    def stop(self):
        self._run(f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop", check=False)

    def crash(self):
        """Stops it the way a crash would: no checkpoint, recovery on the next start."""
        self._run(f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def psql(url, sql):
    """One SQL command through the psql binary; its unaligned output."""
    cmd = [f"{PG_BIN}/psql" if PG_BIN else "psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout


class PrivateDatabase:
    """A fresh database in the shared cluster: its own Kafka relay lock and
    checkpoint, and rows a test may delete."""

    def __init__(self, prefix="e2e"):
        self.name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        if "://" in DATABASE_URL:
            self.url = urllib.parse.urlsplit(DATABASE_URL)._replace(path="/" + self.name).geturl()
        else:  # libpq conninfo: a later keyword wins
            self.url = f"{DATABASE_URL} dbname={self.name}"

    def create(self):
        psql(DATABASE_URL, f"CREATE DATABASE {self.name}")
        return self

    def cleanup(self):
        psql(DATABASE_URL, f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def metrics(server):
    """The server's /metrics as {series: value}."""
    r = server.get("/metrics")
    assert r.status == 200, r
    values = {}
    for line in r.body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


class ServerTest(unittest.TestCase):
    """One server for the whole class; each test uses fresh users."""

    server = None

    @classmethod
    def setUpClass(cls):
        require_environment()
        cls.server = Server().start()

    @classmethod
    def tearDownClass(cls):
        if cls.server:
            code = cls.server.stop()
            cls.server.cleanup()
            assert code == 0, f"server exited with {code} after SIGTERM"

    def create(self, user, body=None, **kw):
        r = self.server.post("/api/v1/tasks", body or {"title": "a task"}, user=user, **kw)
        self.assertEqual(r.status, 201, r)
        return r.json()

    def assertProblem(self, r, status, field=None):
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("application/problem+json"), r.headers)
        p = r.json()
        self.assertEqual(p["status"], status)
        self.assertTrue(p["type"].startswith("https://todo.dev/problems/"), p)
        self.assertTrue(p["title"])
        if field is not None:
            fields = [e["field"] for e in p.get("errors", [])]
            self.assertIn(field, fields, p)
        return p
