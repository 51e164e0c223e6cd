"""Every limit of the server, against the real binary: per-address rate and
connection caps, header/body deadlines against slow clients, body, header and
WebSocket message sizes, and the database pool's bounded queue."""
import asyncio
import http.client
import json
import socket
import subprocess
import threading
import time
import unittest

import websockets

from harness import PG_BIN, PrivateDatabase, Server, eventually, metrics, new_user, require_environment


def connect(port, source="127.0.0.1", timeout=10):
    """A TCP connection to the server from the given loopback source address."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))


def read_answer(sock):
    """One HTTP answer from a raw socket: (status, lower-case headers, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before an answer: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def closed_by_server(sock):
    """True once the server has closed `sock` (EOF or reset), False if still open."""
    sock.setblocking(False)
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


class Client:
    """Keep-alive HTTP from one loopback source address."""

    def __init__(self, server, source):
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10, source_address=(source, 0))
        self.server = server

    def get(self, path, user=None):
        headers = {"Authorization": f"Bearer {self.server.token(user)}"} if user else {}
        self.conn.request("GET", path, headers=headers)
        r = self.conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()

    def close(self):
        self.conn.close()


def started(extra_env, probe=True):
    """A started server, stopped again if it does not come up (a failed
    setUpClass has no tearDownClass). Without `probe`, readiness is read
    from the log: probes would spend the loopback address's tokens when
    loopback is not exempt."""
    server = Server(extra_env=extra_env)
    try:
        server.start(wait_ready=probe)
        if not probe:
            eventually(lambda: any(l.get("msg") == "schema ready" for l in server.log_lines()), 30,
                       what="schema ready")
    except BaseException:
        server.cleanup()
        raise
    return server


def stopped(server):
    code = server.stop()
    server.cleanup()
    assert code == 0, f"server exited with {code} after SIGTERM"


# 1. Per-address rate and connection limits. Loopback is made subject to them
#    (every test client is on loopback); each test uses its own 127.0.0.x.
class AddressLimits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require_environment()
        cls.server = started({"LIMITS_EXEMPT_LOOPBACK": "false", "RATE_LIMIT_IP": "0.01",
                              "RATE_LIMIT_IP_BURST": "20", "HTTP_MAX_CONNECTIONS": "6",
                              "HTTP_MAX_CONNECTIONS_PER_IP": "3"}, probe=False)

    @classmethod
    def tearDownClass(cls):
        stopped(cls.server)

    sources = iter(f"127.0.1.{i}" for i in range(1, 255))

    def scrape(self):
        """/metrics, each time from a fresh address so scrapes spend no test's tokens."""
        c = Client(self.server, next(self.sources))
        try:
            status, _, body = c.get("/metrics")
        finally:
            c.close()
        self.assertEqual(status, 200)
        values = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def test_rate_per_address_covers_every_route(self):
        c = Client(self.server, "127.0.0.10")
        self.addCleanup(c.close)
        statuses = [c.get("/health")[0] for _ in range(20)]
        self.assertEqual(statuses, [200] * 20)
        status, headers, body = c.get("/health")
        self.assertEqual(status, 429, body)
        self.assertEqual(headers["content-type"], "application/problem+json")
        self.assertGreaterEqual(int(headers["retry-after"]), 1)
        self.assertEqual(json.loads(body)["type"], "https://todo.dev/problems/rate-limited")
        # Before authentication: a valid token does not help, a missing one is
        # not even looked at.
        self.assertEqual(c.get("/api/v1/tasks", user=new_user())[0], 429)
        self.assertEqual(c.get("/api/v1/tasks")[0], 429)
        # WebSocket upgrades count too.
        s = connect(self.server.port, "127.0.0.10")
        self.addCleanup(s.close)
        s.sendall(b"GET /api/v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                  b"Authorization: Bearer " + self.server.token(new_user()).encode() + b"\r\n\r\n")
        self.assertEqual(read_answer(s)[0], 429)
        # Another address is not affected.
        other = Client(self.server, "127.0.0.11")
        self.addCleanup(other.close)
        self.assertEqual(other.get("/health")[0], 200)
        m = self.scrape()
        self.assertEqual(m['todo_http_rejections_total{reason="rate_ip"}'], 4)

    def test_connection_caps_in_all_and_per_address(self):
        eventually(lambda: self.scrape()["todo_http_connections"] == 1, 10, interval=0.1,
                   what="no connection but the scrape's own")
        held = []
        self.addCleanup(lambda: [s.close() for s in held])

        def hold(source):
            # A scrape's connection may linger on the server for a moment
            # after the client closed it: retry a refusal for it.
            def attempt():
                s = connect(self.server.port, source)
                try:
                    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                    if read_answer(s)[0] == 200:  # accepted and kept alive
                        held.append(s)
                        return True
                except OSError:
                    pass
                s.close()
                return False
            eventually(attempt, 10, interval=0.1, what=f"a connection from {source}")

        for _ in range(3):
            hold("127.0.0.20")
        over = connect(self.server.port, "127.0.0.20")
        status, headers, body = read_answer(over)
        self.assertEqual(status, 429, body)
        self.assertEqual(headers["content-type"], "application/problem+json")
        self.assertEqual(headers["retry-after"], "1")
        self.assertEqual(over.recv(10), b"", "closed at once")
        over.close()

        for _ in range(3):
            hold("127.0.0.21")
        full = connect(self.server.port, "127.0.0.22")
        status, headers, body = read_answer(full)
        self.assertEqual(status, 503, body)
        self.assertEqual(headers["content-type"], "application/problem+json")
        self.assertIn("retry-after", headers)
        self.assertEqual(full.recv(10), b"", "closed at once")
        full.close()

        # One goes away: a newcomer is served again.
        held.pop().close()
        newcomers = iter(f"127.0.2.{i}" for i in range(1, 255))

        def served():
            try:
                s = connect(self.server.port, next(newcomers))
                try:
                    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    return read_answer(s)[0] == 200
                finally:
                    s.close()
            except (ConnectionError, OSError):
                return False
        eventually(served, 10, interval=0.1, what="a free connection slot")
        for s in held:
            s.close()
        held.clear()
        eventually(lambda: self.scrape()["todo_http_connections"] == 1, 10, interval=0.1, what="the caps released")
        m = self.scrape()
        self.assertEqual(m['todo_http_rejections_total{reason="connections_per_ip"}'], 1)
        self.assertGreaterEqual(m['todo_http_rejections_total{reason="connections"}'], 1)


# 2. Deadlines and sizes, on one I/O thread: slow clients must not hold it.
class SlowClientsAndSizes(unittest.TestCase):
    HEADER_TIMEOUT = 4

    @classmethod
    def setUpClass(cls):
        require_environment()
        cls.server = started({
            "THREADS": "1", "HTTP_HEADER_TIMEOUT": f"{cls.HEADER_TIMEOUT}s", "HTTP_BODY_TIMEOUT": f"{cls.HEADER_TIMEOUT}s",
            "HTTP_IDLE_TIMEOUT": "60s", "HTTP_MAX_BODY": "64KiB", "HTTP_MAX_HEADER": "8KiB", "WS_MAX_MESSAGE": "1KiB",
            "RATE_LIMIT": "0"})

    @classmethod
    def tearDownClass(cls):
        stopped(cls.server)

    def test_slowloris_is_cut_at_the_header_timeout_and_holds_no_worker(self):
        port = self.server.port
        before = metrics(self.server)
        slow = []  # [socket, deadline anchor]
        for _ in range(16):
            s = connect(port)
            s.sendall(b"GET /health HTTP/1.1\r\n")
            slow.append([s, time.monotonic()])
        # A keep-alive connection whose second request trickles: cut at the
        # header timeout from its first byte, not at the idle timeout.
        ka = connect(port)
        ka.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(read_answer(ka)[0], 200)
        ka.sendall(b"G")
        slow.append([ka, time.monotonic()])
        # A body that trickles: cut at the body timeout.
        body = connect(port)
        body.sendall(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        slow.append([body, time.monotonic()])
        for s, _ in slow:
            self.addCleanup(s.close)

        closed_at = {}
        stop = threading.Event()

        def trickle():
            # One byte per socket every 0.5 s: a per-byte timeout would never fire.
            while not stop.is_set() and len(closed_at) < len(slow):
                for i, (s, _) in enumerate(slow):
                    if i in closed_at:
                        continue
                    if closed_by_server(s):
                        closed_at[i] = time.monotonic()
                        continue
                    try:
                        s.sendall(b"a")
                    except OSError:
                        closed_at[i] = time.monotonic()
                stop.wait(0.5)
        t = threading.Thread(target=trickle)
        t.start()
        try:
            # Meanwhile ordinary requests are answered at once.
            for _ in range(10):
                begun = time.monotonic()
                r = self.server.get("/health")
                self.assertEqual(r.status, 200)
                self.assertLess(time.monotonic() - begun, 2.5, "an ordinary request waited for the slow clients")
                time.sleep(0.2)
            try:
                eventually(lambda: len(closed_at) == len(slow), self.HEADER_TIMEOUT + 8, interval=0.1)
            except AssertionError:
                alive = sorted(set(range(len(slow))) - set(closed_at))
                raise AssertionError(f"slow clients still open (16: keep-alive, 17: body): {alive}") from None
        finally:
            stop.set()
            t.join(10)
        for i, (_, anchor) in enumerate(slow):
            lived = closed_at[i] - anchor
            self.assertGreater(lived, self.HEADER_TIMEOUT - 0.5, f"client {i} cut before its deadline")
            self.assertLess(lived, self.HEADER_TIMEOUT + 6, f"client {i} kept alive by trickling")
        after = metrics(self.server)
        key = 'todo_http_rejections_total{reason="%s"}'
        self.assertEqual(after[key % "header_timeout"] - before[key % "header_timeout"], 17)
        self.assertEqual(after[key % "body_timeout"] - before[key % "body_timeout"], 1)

    def test_413_problem_over_the_configured_body_limit(self):
        u = new_user()
        before = metrics(self.server)
        big = json.dumps({"title": "x", "description": "y" * (65 * 1024)})
        r = self.server.post("/api/v1/tasks", raw_body=big, user=u)
        self.assertEqual(r.status, 413, r)
        self.assertEqual(r.headers["content-type"], "application/problem+json")
        self.assertIn("64 KiB", r.json()["detail"])
        chunked = self.server.post("/api/v1/tasks", raw_body=big, user=u, headers={"Transfer-Encoding": "chunked"})
        self.assertEqual(chunked.status, 413, chunked)
        # Refused from Content-Length alone, before a byte of the body.
        s = connect(self.server.port)
        self.addCleanup(s.close)
        s.sendall(b"POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 70000\r\n\r\n")
        status, headers, _ = read_answer(s)
        self.assertEqual(status, 413)
        # Under the limit the body is read and judged on its merits.
        under = self.server.post("/api/v1/tasks", raw_body=json.dumps({"title": "x" * 60_000}), user=u)
        self.assertEqual(under.status, 422, under)
        after = metrics(self.server)
        key = 'todo_http_rejections_total{reason="body_too_large"}'
        self.assertEqual(after[key] - before[key], 3)

    def test_headers_over_the_configured_limit_are_400(self):
        r = self.server.get("/health", headers={"X-Big": "z" * 9000})
        self.assertEqual(r.status, 400, r)
        self.assertIn("8 KiB", r.json()["detail"])
        self.assertEqual(self.server.get("/health", headers={"X-Big": "z" * 6000}).status, 200)

    def test_websocket_message_over_the_limit_closes_1009(self):
        before = metrics(self.server)
        url = f"ws://127.0.0.1:{self.server.port}/api/v1/ws"
        token = self.server.token(new_user("ws"))

        async def run():
            async with websockets.connect(url, extra_headers={"Authorization": f"Bearer {token}"},
                                          ping_interval=None, close_timeout=2) as ws:
                await ws.send("x" * 1000)  # under the limit: answered as a bad command
                answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
                await ws.send("x" * 2000)
                try:
                    await asyncio.wait_for(ws.recv(), 10)
                except websockets.ConnectionClosed:
                    pass
                return answer, ws.close_code
        answer, code = asyncio.run(run())
        self.assertEqual(answer["type"], "error")
        self.assertEqual(code, 1009)
        after = metrics(self.server)
        key = 'todo_http_rejections_total{reason="ws_message_too_big"}'
        self.assertEqual(after.get(key, 0) - before.get(key, 0), 1)


# 3. The database pool: a bounded queue sheds excess load with 503 at once.
class PoolQueue(unittest.TestCase):
    def test_waiters_are_bounded_and_excess_gets_503_at_once(self):
        require_environment()
        db = PrivateDatabase("limits").create()
        self.addCleanup(db.cleanup)
        # Two connections: the Kafka relay holds one for its lock, requests share
        # the other. Waiters never time out here: only the queue bound sheds.
        server = Server(database_url=db.url, extra_env={
            "DB_POOL_SIZE": "2", "DB_MAX_WAITERS": "2", "DB_ACQUIRE_TIMEOUT": "30s", "DB_STATEMENT_TIMEOUT": "30s",
            "RATE_LIMIT": "0"})
        self.addCleanup(server.cleanup)
        server.start()
        before = metrics(server)

        # Hold the tasks table from another session: the request on the pool's
        # free connection waits on the lock, and every one after it on the pool.
        locker = subprocess.Popen([f"{PG_BIN}/psql", db.url, "-qAt"], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, text=True)
        self.addCleanup(lambda: (locker.kill(), locker.wait(), locker.stdin.close()))
        locker.stdin.write("BEGIN; LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE;\n")
        locker.stdin.flush()
        from harness import psql
        eventually(lambda: psql(db.url, "SELECT count(*) FROM pg_locks WHERE relation = 'tasks'::regclass "
                                        "AND mode = 'AccessExclusiveLock' AND granted").strip() == "1",
                   10, what="the table lock")

        n = 12
        results = {}

        def call(i):
            results[i] = server.get("/api/v1/tasks", user=new_user(), timeout=40)
        threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        # One request holds the connection, two wait; the others are answered
        # while the lock is still held.
        eventually(lambda: len(results) >= n - 3, 20, interval=0.05, what="the excess to be refused")
        waiting = metrics(server)["todo_db_pool_waiting"]
        self.assertLessEqual(waiting, 2)
        shed = [r for r in results.values() if r.status == 503]
        self.assertGreaterEqual(len(shed), n - 3, list(results.values()))
        for r in shed:
            self.assertEqual(r.headers["content-type"], "application/problem+json")
            self.assertEqual(r.headers["retry-after"], "1")

        locker.stdin.write("COMMIT;\n")
        locker.stdin.flush()
        for t in threads:
            t.join(45)
        statuses = sorted(r.status for r in results.values())
        self.assertEqual(len(statuses), n)
        self.assertTrue(set(statuses) <= {200, 503}, statuses)
        self.assertGreaterEqual(statuses.count(200), 1, "the queued requests were served once the lock went")
        # Recovered: the pool serves everyone again.
        for _ in range(5):
            self.assertEqual(server.get("/api/v1/tasks", user=new_user()).status, 200)
        after = metrics(server)
        self.assertGreaterEqual(after["todo_db_pool_rejected_total"] - before["todo_db_pool_rejected_total"],
                                len([s for s in statuses if s == 503]))
        self.assertEqual(after["todo_db_pool_waiting"], 0)


if __name__ == "__main__":
    unittest.main()
