"""PostgreSQL outages and graceful shutdown, against the real binary."""
import re
import signal
import socket
import subprocess
import threading
import unittest

from harness import PG_BIN, PrivatePostgres, Server, eventually, free_port, new_user, psql, require_environment


class PostgresOutage(unittest.TestCase):
    def setUp(self):
        require_environment()
        self.pg = PrivatePostgres().init().start()
        self.addCleanup(self.pg.cleanup)

    def test_stop_then_recover_without_restart(self):
        server = Server(database_url=self.pg.url, extra_env={"DB_CONNECT_TIMEOUT": "1s"}).start()
        self.addCleanup(server.cleanup)
        u = new_user()
        t = server.post("/api/v1/tasks", {"title": "before the outage"}, user=u)
        self.assertEqual(t.status, 201)

        self.pg.stop()
        w = server.post("/api/v1/tasks", {"title": "during"}, user=u, timeout=15)
        self.assertEqual(w.status, 503, w)
        self.assertEqual(w.headers["content-type"], "application/problem+json")
        self.assertIn("retry-after", w.headers)
        r = server.get(f"/api/v1/tasks/{t.json()['id']}", user=u, timeout=15)
        self.assertEqual(r.status, 503, r)
        ready = server.get("/ready", timeout=15)
        self.assertEqual(ready.status, 503)
        self.assertEqual(ready.json()["postgres"], "down")
        self.assertEqual(server.get("/health").status, 200, "liveness does not depend on PostgreSQL")

        self.pg.start()
        eventually(lambda: server.get("/ready").status == 200, 20, what="/ready after PostgreSQL returns")
        again = server.post("/api/v1/tasks", {"title": "after"}, user=u)
        self.assertEqual(again.status, 201, again)
        titles = sorted(x["title"] for x in server.get("/api/v1/tasks", user=u).json()["items"])
        self.assertEqual(titles, ["after", "before the outage"], "the 503 left nothing behind")
        self.assertIsNone(server.proc.poll(), "the same process recovered")

    def test_start_while_postgres_is_down(self):
        self.pg.stop()
        server = Server(database_url=self.pg.url, extra_env={"DB_CONNECT_TIMEOUT": "1s"}).start(wait_ready=False)
        self.addCleanup(server.cleanup)
        self.assertEqual(server.get("/health").status, 200)
        self.assertEqual(server.get("/ready").status, 503)
        self.assertEqual(server.get("/api/v1/tasks", user=new_user()).status, 503)
        self.pg.start()
        eventually(lambda: server.get("/ready").status == 200, 30, what="migrations once PostgreSQL is up")
        self.assertEqual(server.post("/api/v1/tasks", {"title": "x"}, user=new_user()).status, 201)


class DeadDatabase(unittest.TestCase):
    def test_dead_dsn_answers_503_not_a_hang(self):
        require_environment()
        dead = f"postgresql://todo@127.0.0.1:{free_port()}/todo"
        server = Server(database_url=dead, extra_env={"DB_CONNECT_TIMEOUT": "1s"}).start(wait_ready=False)
        self.addCleanup(server.cleanup)
        r = server.post("/api/v1/tasks", {"title": "x"}, user=new_user(), timeout=15)
        self.assertEqual(r.status, 503, r)
        self.assertEqual(server.get("/ready", timeout=15).json()["postgres"], "down")


class Drain(unittest.TestCase):
    def setUp(self):
        require_environment()
        self.pg = PrivatePostgres().init().start()
        self.addCleanup(self.pg.cleanup)

    def psql(self, sql):
        return psql(self.pg.url, sql)

    def test_sigterm_finishes_in_flight_requests_then_exits_0(self):
        server = Server(database_url=self.pg.url, extra_env={"DB_STATEMENT_TIMEOUT": "20s"}).start()
        self.addCleanup(server.cleanup)
        u = new_user()
        t = server.post("/api/v1/tasks", {"title": "slow"}, user=u).json()

        # Hold the row lock from another session so the PATCH stays in flight.
        locker = subprocess.Popen([f"{PG_BIN}/psql", self.pg.url, "-qAt"], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, text=True)
        self.addCleanup(lambda: (locker.kill(), locker.wait(), locker.stdin.close()))
        locker.stdin.write(f"BEGIN; SELECT 1 FROM tasks WHERE id = '{t['id']}' FOR UPDATE;\n")
        locker.stdin.flush()
        eventually(lambda: self.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'tuple' OR mode = 'RowShareLock'")
                   .strip() != "0", 10, what="the row lock")

        result = {}
        patcher = threading.Thread(target=lambda: result.update(
            r=server.patch(f"/api/v1/tasks/{t['id']}", {"title": "finished"}, user=u, timeout=30)))
        patcher.start()
        eventually(lambda: self.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                   .strip() != "0", 10, what="the PATCH to wait on the lock")

        # An idle keep-alive client, after one answered request: the server has
        # accepted it (a connection still in the listen backlog would be reset
        # when the listener closes, which says nothing about the drain).
        idle = socket.create_connection(("127.0.0.1", server.port))
        self.addCleanup(idle.close)
        idle.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        idle.settimeout(5)
        while b"\r\n\r\n" not in answer:
            answer += idle.recv(4096)
        head, _, body = answer.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *([0-9]+)", head).group(1))
        while len(body) < length:
            body += idle.recv(4096)
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        server.proc.send_signal(signal.SIGTERM)
        eventually(lambda: any(l.get("msg") == "draining" for l in server.log_lines()), 5, what="the drain")
        refused = eventually(lambda: self._refused(server.port), 5, what="the listener to close")
        self.assertTrue(refused)
        self.assertIsNone(server.proc.poll(), "still running while a request is in flight")

        locker.stdin.write("COMMIT;\n")
        locker.stdin.flush()
        patcher.join(30)
        self.assertEqual(result["r"].status, 200, result)
        self.assertEqual(result["r"].json()["title"], "finished")
        self.assertEqual(result["r"].headers.get("connection"), "close")
        self.assertEqual(server.proc.wait(15), 0)
        idle.settimeout(5)
        self.assertEqual(idle.recv(100), b"", "the idle connection was closed by the drain")

    @staticmethod
    def _refused(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return False
        except OSError:
            return True


if __name__ == "__main__":
    unittest.main()
