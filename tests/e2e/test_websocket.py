"""WebSocket sync end to end: GET /api/v1/ws driven by a real third-party client
(the python3-websockets package) and, where a client must misbehave (never
answer a ping, never read), by a WebSocket client written by hand over a plain
socket.

The tests stay synchronous: the websockets clients live on an asyncio loop in a
thread of its own and record what they receive; the test thread writes through
the REST API and waits with harness.eventually.

A client that connects and then needs to know exactly where its stream starts
(every test that compares whole streams) first resumes from just before the
user's newest event and waits for that event to come back: from then on the
stream must be exactly the following sequence numbers. What a plain connection
does without a resume is tested on its own.
"""
import asyncio
import base64
import concurrent.futures
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
import unittest
import urllib.parse

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatusCode

import event_contract
from harness import (BINARY, SECRET, PrivateDatabase, Server, ServerTest, curl, eventually,
                     metrics, new_user, psql, require_environment)

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# ---------------------------------------------------------------------------
# Helpers: REST writes over keep-alive, metrics, a private database.

class Api:
    """One user's REST calls over one keep-alive connection (a curl per write is too slow for bursts)."""

    def __init__(self, server, user, token=None):
        self.server = server
        self.user = user
        self.token = token or server.token(user)
        self.conn = None

    def call(self, method, path, body=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=15)
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=data, headers=headers)
            r = self.conn.getresponse()
            raw = r.read()
        except (http.client.HTTPException, OSError):
            self.close()
            raise
        if r.getheader("connection", "").lower() == "close":
            self.close()
        event_contract.check_response(method, path, r.status, raw)
        return r.status, (json.loads(raw) if raw else None)

    def create(self, title="a task", **fields):
        status, task = self.call("POST", "/api/v1/tasks", {"title": title, **fields})
        assert status == 201, (status, task)
        return task

    def patch(self, task_id, body):
        status, task = self.call("PATCH", f"/api/v1/tasks/{task_id}", body)
        assert status == 200, (status, task)
        return task

    def events(self, after=0):
        """Every event of the user after `after`, walking the pages."""
        out = []
        while True:
            status, page = self.call("GET", f"/api/v1/events?after={after}&limit=1000")
            assert status == 200, (status, page)
            out += page["items"]
            if not page["items"]:
                return out, page["last_seq"]
            after = page["items"][-1]["sequence"]

    def last_seq(self):
        status, page = self.call("GET", "/api/v1/events?after=0&limit=1")
        assert status == 200, (status, page)
        return page["last_seq"]

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_token(user, exp):
    """An HS256 token signed with the harness secret, with any exp (the CLI takes only a TTL)."""
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": user, "iat": int(time.time()), "exp": exp}).encode())
    sig = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


def jwt_exp(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]


# ---------------------------------------------------------------------------
# The websockets client on a background asyncio loop.

class Loop:
    """An asyncio loop on its own thread, so that the tests stay synchronous."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ws-loop", daemon=True)
        self.thread.start()

    def run(self, coro, timeout=15):
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise AssertionError(f"timed out after {timeout}s") from None

    def close(self):
        async def cancel_all():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.run(cancel_all(), 10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            if not self.thread.is_alive():
                self.loop.close()


class Client:
    """A websockets connection whose reader task records every frame it receives.
    Closing it checks every event among them against the event contract."""

    def __init__(self, loop, ws):
        self.loop = loop
        self.ws = ws
        self.frames = []  # parsed JSON of each text frame, in arrival order
        self.closed = None  # the ConnectionClosed that ended the stream
        self.done = threading.Event()
        self.task = None

    @classmethod
    def open(cls, loop, url, read=True, **kw):
        kw.setdefault("ping_interval", None)  # the server pings; the client only answers
        kw.setdefault("close_timeout", 2)
        kw.setdefault("max_size", 2 ** 22)

        async def connect():
            return await websockets.connect(url, **kw)

        c = cls(loop, loop.run(connect()))
        if read:
            c.start_reading()
        return c

    def start_reading(self):
        async def spawn():
            self.task = asyncio.get_running_loop().create_task(self._read())

        self.loop.run(spawn())

    async def _read(self):
        try:
            while True:
                msg = await self.ws.recv()
                self.frames.append(json.loads(msg) if isinstance(msg, str) else msg)
        except ConnectionClosed as e:
            self.closed = e
        finally:
            self.done.set()

    def send(self, data):
        self.loop.run(self.ws.send(data))

    def resume(self, after):
        self.send(json.dumps({"type": "resume", "after": after}))

    def events(self):
        return [f for f in self.frames if isinstance(f, dict) and "sequence" in f]

    def seqs(self):
        return [f["sequence"] for f in self.events()]

    def controls(self):
        return [f for f in self.frames if not (isinstance(f, dict) and "sequence" in f)]

    def wait_seq(self, seq, timeout=10):
        eventually(lambda: seq in self.seqs(), timeout, what=f"sequence {seq} (have {self.seqs()[-5:]})")

    def wait_frames(self, n, timeout=10):
        eventually(lambda: len(self.frames) >= n, timeout, what=f"{n} frames (have {self.frames[-3:]})")

    def wait_closed(self, timeout=10):
        eventually(self.done.is_set, timeout, what="the connection to close")
        return self.closed

    @property
    def close_code(self):
        """The code of the close frame the server sent, or None if none came."""
        return self.closed.rcvd.code if self.closed is not None and self.closed.rcvd else None

    def is_open(self):
        return not self.done.is_set() and self.ws.open

    def close(self):
        async def close():
            try:
                await asyncio.wait_for(self.ws.close(), 5)
            except Exception:  # already gone
                pass
            if self.task is not None:
                try:
                    await asyncio.wait_for(self.task, 5)
                except Exception:
                    pass

        try:
            self.loop.run(close(), 15)
        except Exception:
            pass
        event_contract.check_frames(self.frames)


# ---------------------------------------------------------------------------
# A WebSocket client by hand: it never answers a ping and reads only when told.

class RawClient:
    def __init__(self, port, token=None, rcvbuf=None, headers=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET /api/v1/ws HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if token:
            lines.append(f"Authorization: Bearer {token}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = self.sock.recv(4096)
            if not d:
                raise AssertionError(f"connection closed during the handshake: {buf!r}")
            buf += d
        head, self.buf = buf.split(b"\r\n\r\n", 1)
        self.status = int(head.split(b" ")[1])
        self.headers = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        if self.status == 101:
            want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            assert self.headers.get("sec-websocket-accept") == want, self.headers
        self.frames = []  # (opcode, payload) of each complete message
        self.partial = None
        self.ended = None  # "eof" or "reset" once the server dropped the TCP connection

    def send_frame(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = bytes([0x80 | opcode, 0x80 | n])
        elif n < 65536:
            head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _parse(self):
        while len(self.buf) >= 2:
            fin, op, n, off = self.buf[0] & 0x80, self.buf[0] & 0x0F, self.buf[1] & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    return
                n, off = int.from_bytes(self.buf[2:4], "big"), 4
            elif n == 127:
                if len(self.buf) < 10:
                    return
                n, off = int.from_bytes(self.buf[2:10], "big"), 10
            if len(self.buf) < off + n:
                return
            payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
            if op >= 8:  # control frames are never fragmented
                self.frames.append((op, payload))
            elif op == 0:
                self.partial = (self.partial[0], self.partial[1] + payload)
            else:
                self.partial = (op, payload)
            if op < 8 and fin:
                self.frames.append(self.partial)
                self.partial = None

    def read_available(self):
        """Reads what has arrived without blocking. False once the server dropped the connection."""
        if self.ended:
            return False
        self.sock.setblocking(False)
        try:
            while True:
                d = self.sock.recv(1 << 20)
                if not d:
                    self.ended = "eof"
                    return False
                self.buf += d
        except BlockingIOError:
            return True
        except (ConnectionResetError, BrokenPipeError):
            self.ended = "reset"
            return False
        finally:
            self._parse()

    def texts(self):
        return [json.loads(p) for op, p in self.frames if op == 1]

    def close_code(self):
        for op, p in self.frames:
            if op == 8:
                return int.from_bytes(p[:2], "big") if len(p) >= 2 else None
        return None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        event_contract.check_frames(self.texts(), "WebSocket (raw client)")


# ---------------------------------------------------------------------------
# The shape of every test: a loop for the clients, and ways to connect.

class WsCase(unittest.TestCase):
    def setUp(self):
        require_environment()
        self.loop = Loop()
        self.addCleanup(self.loop.close)

    def connect(self, server, user=None, token=None, how="header", read=True, **kw):
        token = token or server.token(user)
        url = f"ws://127.0.0.1:{server.port}/api/v1/ws"
        if how == "header":
            kw["extra_headers"] = {"Authorization": f"Bearer {token}"}
        elif how == "query":
            url += "?access_token=" + urllib.parse.quote(token)
        elif how == "subprotocol":
            kw["subprotocols"] = [f"bearer.{token}"]
        c = Client.open(self.loop, url, read, **kw)
        self.addCleanup(c.close)
        return c

    def api(self, server, user):
        a = Api(server, user)
        self.addCleanup(a.close)
        return a

    def synced(self, server, user, **kw):
        """A client whose stream is known to continue right after the user's newest event.

        The user gets a first event if it has none; the client resumes from just
        before the newest one and waits for it to come back."""
        api = self.api(server, user)
        last = api.last_seq()
        if last == 0:
            api.create("seed")
            last = 1
        c = self.connect(server, user, **kw)
        c.resume(last - 1)
        c.wait_seq(last)
        # The newest event may also have arrived live before the resume (the
        # stream starts where the log follower was at the upgrade): keep only
        # the resumed copy, after which the stream is known.
        self.assertTrue(all(e.get("sequence") == last for e in c.events()), c.frames)
        del c.frames[:-1]
        self.assertEqual(c.seqs(), [last])
        return c

    def raw(self, server, **kw):
        r = RawClient(server.port, **kw)
        self.addCleanup(r.close)
        return r

    def assertContiguous(self, seqs, first, last, what="the stream"):
        self.assertEqual(seqs, list(range(first, last + 1)), f"{what}: every sequence once, in order")


def upgrade_headers(token=None, **extra):
    h = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
         "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()}
    if token:
        h["Authorization"] = f"Bearer {token}"
    h.update(extra)
    return h


# ---------------------------------------------------------------------------
# 1. One server with the default limits: streams, auth, resume, client frames.

class Sync(ServerTest, WsCase):
    @classmethod
    def setUpClass(cls):
        require_environment()
        cls.server = Server(extra_env={"RATE_LIMIT": "0"}).start()

    def test_three_tabs_see_identical_streams(self):
        u = new_user("tabs")
        tabs = [self.synced(self.server, u) for _ in range(3)]
        api = self.api(self.server, u)
        first = tabs[0].seqs()[0]
        ids = [api.create(f"task {i}")["id"] for i in range(8)]
        for i, t in enumerate(ids[:4]):
            api.patch(t, {"priority": "high", "title": f"renamed {i}"})
        self.assertEqual(api.call("POST", f"/api/v1/tasks/{ids[0]}/complete")[0], 200)
        self.assertEqual(api.call("POST", f"/api/v1/tasks/{ids[0]}/reopen")[0], 200)
        self.assertEqual(api.call("DELETE", f"/api/v1/tasks/{ids[1]}")[0], 204)
        last = first + 15
        self.assertEqual(api.last_seq(), last)
        for t in tabs:
            t.wait_seq(last)
        logged, _ = api.events(first - 1)
        for i, t in enumerate(tabs):
            self.assertContiguous(t.seqs(), first, last, f"tab {i}")
            self.assertEqual(t.controls(), [], f"tab {i} got only events")
            self.assertEqual(t.events(), logged, f"tab {i} carries the same events as GET /events")
            self.assertTrue(all(e["userid"] == u for e in t.events()))
        self.assertEqual([e["type"].rsplit(".", 1)[1] for e in tabs[0].events()[-4:]],
                         ["updated", "completed", "reopened", "deleted"])

    def test_other_users_events_never_arrive(self):
        alice, bob = new_user("alice"), new_user("bob")
        a_ws, b_ws = self.synced(self.server, alice), self.synced(self.server, bob)
        a_api, b_api = self.api(self.server, alice), self.api(self.server, bob)
        for i in range(6):
            a_api.create(f"alice {i}")
            b_api.create(f"bob {i}")
            b_api.create(f"bob again {i}")
        a_ws.wait_seq(7)
        b_ws.wait_seq(13)
        self.assertContiguous(a_ws.seqs(), 1, 7, "alice")
        self.assertContiguous(b_ws.seqs(), 1, 13, "bob")
        self.assertEqual({e["userid"] for e in a_ws.events()}, {alice})
        self.assertEqual({e["userid"] for e in b_ws.events()}, {bob})
        self.assertFalse({e["id"] for e in a_ws.events()} & {e["id"] for e in b_ws.events()})
        # A resume never reaches into another user's log either.
        a_ws.resume(0)
        a_ws.wait_frames(len(a_ws.frames) + 7)
        self.assertEqual({e["userid"] for e in a_ws.events()}, {alice})

    def test_token_in_header_query_or_subprotocol(self):
        for how in ("header", "query", "subprotocol"):
            with self.subTest(how=how):
                u = new_user(f"auth-{how}")
                c = self.synced(self.server, u, how=how)
                tok = self.server.token(u)
                if how == "subprotocol":
                    self.assertEqual(c.ws.subprotocol, f"bearer.{tok}", "the bearer subprotocol is echoed")
                else:
                    self.assertIsNone(c.ws.subprotocol)
                self.api(self.server, u).create("hello")
                c.wait_seq(2)
                self.assertEqual(c.seqs(), [1, 2])
                self.assertEqual(c.events()[-1]["userid"], u, "the token named the user")
        # The subprotocol among others: only the bearer entry is selected.
        u = new_user("auth-multi")
        tok = self.server.token(u)
        c = Client.open(self.loop, f"ws://127.0.0.1:{self.server.port}/api/v1/ws",
                        subprotocols=["chat.v1", f"bearer.{tok}"])
        self.addCleanup(c.close)
        self.assertEqual(c.ws.subprotocol, f"bearer.{tok}")

    def test_refused_before_the_upgrade(self):
        u = new_user("refused")
        good = self.server.token(u)
        expired = mint_token(u, int(time.time()) - 3600)
        forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
        url = f"ws://127.0.0.1:{self.server.port}/api/v1/ws"
        for name, kw in [("no token", {}),
                         ("forged header", {"extra_headers": {"Authorization": f"Bearer {forged}"}}),
                         ("forged query", {"url": url + "?access_token=" + forged}),
                         ("forged subprotocol", {"subprotocols": [f"bearer.{forged}"]}),
                         ("garbage header", {"extra_headers": {"Authorization": "Bearer not-a-jwt"}}),
                         ("basic auth", {"extra_headers": {"Authorization": "Basic dTpw"}})]:
            with self.subTest(name):
                target = kw.pop("url", url)
                with self.assertRaises(InvalidStatusCode) as cm:
                    Client.open(self.loop, target, **kw)
                self.assertEqual(cm.exception.status_code, 401)
        # The refusals are problem+json, with the Bearer challenge for a bad token.
        p = self.assertProblem(curl("GET", self.server.url("/api/v1/ws"), headers=upgrade_headers()), 401)
        self.assertIn("access_token", p["detail"])
        r = curl("GET", self.server.url("/api/v1/ws"), headers=upgrade_headers(forged))
        self.assertProblem(r, 401)
        self.assertIn("invalid_token", r.headers.get("www-authenticate", ""))
        # An expired token (past the verifier's leeway) is refused too; the
        # same claims with a future exp are accepted, so the minting is right.
        self.assertProblem(curl("GET", self.server.url("/api/v1/ws"), headers=upgrade_headers(expired)), 401)
        with self.assertRaises(InvalidStatusCode) as cm:
            Client.open(self.loop, url + "?access_token=" + expired)
        self.assertEqual(cm.exception.status_code, 401)
        fine = self.connect(self.server, token=mint_token(u, int(time.time()) + 600))
        self.assertTrue(fine.is_open())
        # A plain GET with a good token but no upgrade is a 400 problem.
        r = self.server.get("/api/v1/ws", user=u)
        self.assertProblem(r, 400)
        self.assertEqual(r.headers.get("upgrade", "").lower(), "websocket")

    def test_stream_starts_at_the_newest_event(self):
        u = new_user("head")
        api = self.api(self.server, u)
        for i in range(3):
            api.create(f"before {i}")
        c = self.connect(self.server, u)
        for i in range(3):
            api.create(f"after {i}")
        c.wait_seq(6)
        seqs = c.seqs()
        self.assertTrue(seqs and seqs[0] >= 4, f"no replay of what came before the connection: {seqs}")
        self.assertContiguous(seqs, seqs[0], 6)
        self.assertEqual(c.controls(), [])

    # An event committed right after the handshake completed must arrive. The
    # stream's start (the user's newest sequence) is fixed in hub::prepare(),
    # before the 101 is written; when it was read later, by the catch-up
    # after opened(), an event committed in between was taken for history
    # and never sent. It is a race: the test tries many times (a few seconds
    # at most).
    def test_event_committed_right_after_the_handshake_arrives(self):
        deadline = time.monotonic() + 8
        attempt = 0
        while attempt < 1500 and time.monotonic() < deadline:
            if attempt % 10 == 0:  # a fresh user now and then: closes are seen asynchronously
                u = new_user("race")
                token = mint_token(u, int(time.time()) + 600)
                api = Api(self.server, u, token)
                self.addCleanup(api.close)
                api.create("warm the connection")
                last = 1
            r = RawClient(self.server.port, token)
            self.addCleanup(r.close)
            self.assertEqual(r.status, 101)
            api.create(f"right after connect {attempt}")  # the 101 has been read: this commit is later
            api.create(f"and one more {attempt}")
            last += 2

            def first_text():
                r.read_available()
                return r.texts() or r.ended

            try:
                eventually(first_text, 3, interval=0.002, what="a frame")
            except AssertionError:
                pass
            got = r.texts()[0]["sequence"] if r.texts() else None
            self.assertEqual(got, last - 1, f"attempt {attempt}: the first write after the handshake is delivered")
            r.close()
            attempt += 1

    def test_resume_at_the_seam_of_a_burst(self):
        u = new_user("seam")
        apis = [self.api(self.server, u) for _ in range(2)]
        per_writer = 150
        total = 2 * per_writer
        written = []
        errors = []

        def write(api, k):
            try:
                for i in range(per_writer):
                    api.create(f"w{k} {i}")
                    written.append(1)
            except Exception as e:  # reported by the test thread
                errors.append(e)

        threads = [threading.Thread(target=write, args=(a, k), daemon=True) for k, a in enumerate(apis)]
        for t in threads:
            t.start()
        self.addCleanup(lambda: [t.join(30) for t in threads])
        clients = []
        for n in (5, 40, 120, 200):
            eventually(lambda: len(written) >= n + 10 or errors, 20, interval=0.002, what=f"{n + 10} writes")
            c = self.connect(self.server, u)
            c.resume(n)
            clients.append((n, c))
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(apis[0].last_seq(), total)
        for n, c in clients:
            c.wait_seq(total, 20)
            self.assertEqual(c.controls(), [], "a resume inside the retained log is no reset")
            seqs = c.seqs()
            # Live frames may precede the resume (they all come after n + 10); from
            # the first replayed event on, the stream is exactly n+1..total.
            self.assertIn(n + 1, seqs, f"resume after {n}")
            cut = seqs.index(n + 1)
            before, after = seqs[:cut], seqs[cut:]
            if before:
                self.assertGreater(before[0], n + 1)
                self.assertContiguous(before, before[0], before[-1], f"live frames before the resume after {n}")
            self.assertContiguous(after, n + 1, total, f"resume after {n}")
        logged, _ = apis[0].events(0)
        for n, c in clients:
            self.assertEqual(c.events()[n - total:], logged[n:], "the replayed and live frames are the logged events")

    def test_resume_after_zero_replays_everything_retained(self):
        u = new_user("zero")
        api = self.api(self.server, u)
        for i in range(5):
            api.create(f"t{i}")
        c = self.connect(self.server, u)
        c.resume(0)
        c.wait_seq(5)
        self.assertEqual(c.controls(), [], "after=0 with the whole log retained is not a reset")
        self.assertContiguous(c.seqs(), 1, 5)
        api.create("live")
        c.wait_seq(6)
        self.assertContiguous(c.seqs(), 1, 6, "live after the replay, no gap, no duplicate")
        self.assertEqual(c.events(), api.events(0)[0])
        # Resuming at the newest sequence replays nothing and is not a reset.
        c.resume(6)
        api.create("live again")
        c.wait_seq(7)
        self.assertContiguous(c.seqs(), 1, 7)
        self.assertEqual(c.controls(), [])

    def test_resume_ahead_of_the_log_answers_reset(self):
        u = new_user("reset")
        api = self.api(self.server, u)
        for i in range(3):
            api.create(f"t{i}")
        for ahead in (4, 1000):
            with self.subTest(after=ahead):
                c = self.connect(self.server, u)
                c.resume(ahead)
                c.wait_frames(1)
                last = api.last_seq()
                self.assertEqual(c.frames, [{"type": "reset", "last_seq": last}])
                api.create("after the reset")
                c.wait_seq(last + 1)
                self.assertEqual(c.frames[1:], api.events(last)[0], "the stream continues after last_seq")
        # A user with no events at all: a resume after 0 is simply the empty log.
        c = self.connect(self.server, new_user("empty"))
        c.resume(0)
        c.resume(3)
        c.wait_frames(1)
        self.assertEqual(c.frames, [{"type": "reset", "last_seq": 0}])

    def test_malformed_and_binary_frames_get_error_frames(self):
        u = new_user("malformed")
        c = self.synced(self.server, u)
        before = metrics(self.server).get("todo_ws_malformed_frames_total", 0)
        bad = ["not json", "{\"type\": \"resume\", \"after\": 1", "[1, 2]", "42",
               json.dumps({"type": "subscribe"}), json.dumps({"after": 1}), json.dumps({"type": "resume"}),
               json.dumps({"type": "resume", "after": -1}), json.dumps({"type": "resume", "after": "0"}),
               json.dumps({"type": "resume", "after": 1.5})]
        for i, text in enumerate(bad):
            c.send(text)
            c.wait_frames(2 + i)
        c.send(b"\x00\x01binary")
        c.wait_frames(2 + len(bad))
        errors = c.frames[1:]
        self.assertEqual(len(errors), len(bad) + 1)
        for f in errors:
            self.assertEqual(set(f), {"type", "message"}, f)
            self.assertEqual(f["type"], "error")
            self.assertIsInstance(f["message"], str)
            self.assertTrue(f["message"])
        self.assertTrue(c.is_open(), "malformed frames below the flood limit do not close")
        self.api(self.server, u).create("still delivered")
        c.wait_seq(2)
        self.assertEqual(c.seqs(), [1, 2])
        self.assertGreaterEqual(metrics(self.server)["todo_ws_malformed_frames_total"] - before, len(bad))

    def test_flood_of_malformed_frames_closes_1008(self):
        u = new_user("flood")
        c = self.synced(self.server, u)
        for i in range(20):
            c.send("nope")
        c.wait_frames(21)
        self.assertEqual([f["type"] for f in c.frames[1:]], ["error"] * 20)
        self.api(self.server, u).create("twenty is still allowed")
        c.wait_seq(2)
        self.assertTrue(c.is_open())
        c.send("one too many")
        closed = c.wait_closed()
        self.assertEqual(c.close_code, 1008, closed)
        self.assertEqual(len(c.controls()), 20, "no error frame for the frame that closed it")

    def test_frames_over_64_kib_close_1009(self):
        u = new_user("big")
        c = self.synced(self.server, u)
        exact = json.dumps({"type": "resume", "after": 0})
        c.send(exact + " " * (65536 - len(exact)))  # exactly 64 KiB: accepted
        c.wait_frames(2)
        self.assertEqual(c.seqs(), [1, 1], "the 64 KiB resume was obeyed")
        c.send(exact + " " * (65537 - len(exact)))
        closed = c.wait_closed()
        self.assertEqual(c.close_code, 1009, closed)
        self.assertEqual(len(c.frames), 2)

    def test_token_expiry_closes_1008(self):
        u = new_user("expiry")
        short = subprocess.run([BINARY, "token", "--user", u, "--ttl", "3s"], env={"JWT_SECRET": SECRET},
                               capture_output=True, text=True, check=True).stdout.strip()
        exp = jwt_exp(short)
        control = self.synced(self.server, u)  # the same user with a long token
        c = self.connect(self.server, token=short)
        c.resume(0)
        c.wait_seq(1)
        closed = c.wait_closed(exp - time.time() + 5)
        closed_at = time.time()
        self.assertEqual(c.close_code, 1008, closed)
        self.assertGreaterEqual(closed_at, exp - 0.5, "not closed before the token expired")
        self.assertLessEqual(closed_at, exp + 2.5, "closed about when the token expired")
        self.assertTrue(control.is_open(), "a connection with a valid token stays")
        self.api(self.server, u).create("after expiry")
        control.wait_seq(2)
        self.assertEqual(c.seqs(), [1])

    def test_metrics_move(self):
        eventually(lambda: metrics(self.server)["todo_ws_connections"] == 0, 10,
                   what="the connections of earlier tests to be gone")
        before = metrics(self.server)
        u = new_user("metrics")
        a, b = self.synced(self.server, u), self.synced(self.server, u)
        self.assertEqual(metrics(self.server)["todo_ws_connections"], 2)
        api = self.api(self.server, u)
        for i in range(5):
            api.create(f"t{i}")
        a.wait_seq(6)
        b.wait_seq(6)
        after = metrics(self.server)
        received = len(a.frames) + len(b.frames)
        self.assertGreaterEqual(after["todo_ws_frames_sent_total"] - before["todo_ws_frames_sent_total"],
                                received)
        self.assertGreater(after["todo_ws_delivery_seconds_count"] - before["todo_ws_delivery_seconds_count"], 0)
        self.assertLessEqual(after["todo_ws_delivery_seconds_count"] - before["todo_ws_delivery_seconds_count"],
                             10, "one observation per live frame at most")
        self.assertEqual(after["todo_ws_slow_consumer_closes_total"], before["todo_ws_slow_consumer_closes_total"])
        b.close()
        eventually(lambda: metrics(self.server)["todo_ws_connections"] == 1, 10, what="the gauge to drop")
        a.close()
        eventually(lambda: metrics(self.server)["todo_ws_connections"] == 0, 10, what="the gauge to drop")


# ---------------------------------------------------------------------------
# 2. Pings: a client that answers none is dropped, one that answers stays.

class Pings(WsCase):
    def test_silent_client_is_dropped_and_answering_client_stays(self):
        s = Server(extra_env={"WS_PING_INTERVAL": "200ms", "WS_PONG_TIMEOUT": "1s"})
        self.addCleanup(s.cleanup)
        s.start()
        u = new_user("ping")
        good = self.synced(s, u)
        t0 = time.monotonic()
        silent = self.raw(s, token=s.token(u))
        self.assertEqual(silent.status, 101)
        eventually(lambda: not silent.read_available(), 6, interval=0.05, what="the silent client to be dropped")
        dropped_after = time.monotonic() - t0
        self.assertIn(silent.ended, ("eof", "reset"))
        self.assertGreaterEqual(dropped_after, 0.9, "not before WS_PONG_TIMEOUT")
        self.assertLess(dropped_after, 4, "soon after WS_PONG_TIMEOUT")
        pings = [p for op, p in silent.frames if op == 9]
        self.assertGreaterEqual(len(pings), 3, "pinged every WS_PING_INTERVAL")
        # A second silent client outlives the first by another timeout; the
        # answering one is still open after both, well past two timeouts.
        second = self.raw(s, token=s.token(u))
        eventually(lambda: not second.read_available(), 6, interval=0.05, what="the second silent client to go")
        self.assertGreater(time.monotonic() - t0, 2.0)
        self.assertTrue(good.is_open(), f"the answering client stays open: {good.closed!r}")
        self.api(s, u).create("still here")
        good.wait_seq(2)
        self.assertEqual(good.seqs(), [1, 2])
        self.assertEqual(s.stop(), 0)


# ---------------------------------------------------------------------------
# 3. A slow consumer is closed; a fast one of the same user misses nothing.

class SlowConsumer(WsCase):
    def setUp(self):
        super().setUp()
        self.server = Server(extra_env={"WS_SEND_QUEUE": "8", "RATE_LIMIT": "0"})
        self.addCleanup(self.server.cleanup)
        self.server.start()

    def test_slow_consumer_closed_fast_consumer_complete(self):
        s = self.server
        u = new_user("slow")
        api = self.api(s, u)
        fast = self.synced(s, u)
        slow = self.raw(s, token=s.token(u), rcvbuf=4096)  # never reads until the end
        self.assertEqual(slow.status, 101)
        slow.send_frame(1, json.dumps({"type": "resume", "after": 1}).encode())
        before = metrics(s)["todo_ws_slow_consumer_closes_total"]
        task = api.create("big")["id"]
        # ~60 kB a frame (the task and the change carry the description twice).
        written = 2
        for i in range(400):
            api.patch(task, {"description": ("ab"[i % 2] * 19000) + str(i)})
            written += 1
            if i >= 20 and i % 4 == 0 and metrics(s)["todo_ws_slow_consumer_closes_total"] > before:
                break
        self.assertEqual(metrics(s)["todo_ws_slow_consumer_closes_total"], before + 1,
                         "the slow consumer, and only it, was closed")
        for i in range(5):
            api.create(f"after the close {i}")
            written += 1
        self.assertEqual(api.last_seq(), written)
        fast.wait_seq(written, 20)
        self.assertContiguous(fast.seqs(), 1, written, "the fast consumer")
        self.assertTrue(fast.is_open())
        # The slow one now reads: a gap-free prefix, then the 1008 close (or,
        # had it waited longer, the dropped connection).
        eventually(lambda: not slow.read_available() or slow.close_code() is not None, 15, interval=0.05,
                   what="the slow consumer's end")
        seqs = [f["sequence"] for f in slow.texts()]
        self.assertTrue(seqs, "it got some events before falling behind")
        self.assertContiguous(seqs, 2, seqs[-1], "the slow consumer's prefix")
        self.assertLess(seqs[-1], written, "it was cut off")
        if slow.ended is None:
            self.assertEqual(slow.close_code(), 1008)
        else:
            self.assertIn(slow.close_code(), (None, 1008))

    def test_a_ping_while_a_frame_is_half_written_is_answered_after_it(self):
        # A client that does not read makes the server's socket take a frame
        # only in part. A ping then makes the server owe a pong; it must come
        # after the rest of that frame, never inside it. Loopback's large
        # buffers mostly finish the rest in one write here; the integration
        # test frame_socket_test forces it into many, with small buffers.
        s = Server(extra_env={"RATE_LIMIT": "0"})
        self.addCleanup(s.cleanup)
        s.start()
        u = new_user("halfway")
        api = self.api(s, u)
        c = self.raw(s, token=s.token(u), rcvbuf=4096)
        self.assertEqual(c.status, 101)
        before = metrics(s)["todo_ws_send_backpressure_total"]
        task = api.create("big")["id"]
        written = 1
        # ~57 kB a frame; the socket takes a few MB on loopback.
        while metrics(s)["todo_ws_send_backpressure_total"] == before:
            self.assertLess(written, 300, "the socket never filled up")
            api.patch(task, {"description": ("xy"[written % 2] * 19000) + str(written)})
            written += 1
        for i in range(3):  # queued behind the half-written frame
            api.patch(task, {"description": f"after {i}"})
            written += 1
        c.send_frame(9, b"are you there")
        time.sleep(0.3)
        eventually(lambda: not c.read_available() or len(c.texts()) >= written, 30, interval=0.02,
                   what="every frame, read at last")
        self.assertIsNone(c.ended, "the connection stays open")
        self.assertIsNone(c.partial, "no frame left half-parsed")
        self.assertContiguous([f["sequence"] for f in c.texts()], 1, written)
        self.assertIn((10, b"are you there"), c.frames, "the pong, whole")
        self.assertEqual([op for op, _ in c.frames if op not in (1, 10)], [], "only text frames and the pong")

    # A resume whose backlog exceeds WS_SEND_QUEUE must not close a client
    # that reads as fast as it can: the catch-up loop queues no more than
    # half the send queue and waits for it to drain
    # (modules/sync/src/hub.cpp apply_events). When it queued a whole page
    # (500 events) at once, such a client was closed with 1008.
    def test_resume_of_a_backlog_larger_than_the_queue(self):
        s = self.server
        u = new_user("backlog")
        api = self.api(s, u)
        for i in range(30):
            api.create(f"t{i}")
        c = self.connect(s, u)
        c.resume(0)
        eventually(lambda: 30 in c.seqs() or c.done.is_set(), 10, what="the backlog or the close")
        self.assertIsNone(c.closed, "a client reading at full speed is no slow consumer")
        self.assertContiguous(c.seqs(), 1, 30)


# ---------------------------------------------------------------------------
# 4. Connection limits: 429 before the upgrade.

class Limits(WsCase):
    def test_per_user_and_total_limits(self):
        s = Server(extra_env={"WS_MAX_PER_USER": "3", "WS_MAX_CONNECTIONS": "5"})
        self.addCleanup(s.cleanup)
        s.start()
        alice, bob, carol = new_user("alice"), new_user("bob"), new_user("carol")
        a = [self.connect(s, alice) for _ in range(3)]

        def refused(user, status=429):
            with self.assertRaises(InvalidStatusCode) as cm:
                Client.open(self.loop, f"ws://127.0.0.1:{s.port}/api/v1/ws",
                            extra_headers={"Authorization": f"Bearer {s.token(user)}"})
            self.assertEqual(cm.exception.status_code, status)
            r = curl("GET", s.url("/api/v1/ws"), headers=upgrade_headers(s.token(user)))
            self.assertEqual(r.status, status, r)
            self.assertTrue(r.headers.get("content-type", "").startswith("application/problem+json"), r.headers)
            self.assertTrue(r.headers.get("retry-after", "").isdigit(), r.headers)
            self.assertEqual(r.json()["status"], status)

        refused(alice)  # the fourth of one user
        b = [self.connect(s, bob) for _ in range(2)]
        eventually(lambda: metrics(s)["todo_ws_connections"] == 5, 10, what="five connections")
        refused(bob)  # bob holds two, but the server holds five
        refused(carol)
        # Closing one makes room again, for anyone.
        a[0].close()
        eventually(lambda: metrics(s)["todo_ws_connections"] == 4, 10, what="the close to be seen")
        c = self.synced(s, carol)
        self.assertEqual(c.seqs(), [1])
        refused(alice)  # alice holds two now, but the server holds five again
        self.assertTrue(all(x.is_open() for x in a[1:] + b))
        m = metrics(s)
        # Each refused() is two upgrades: one through websockets, one through curl.
        self.assertEqual(m['todo_http_rejections_total{reason="ws_per_user"}'], 2)
        self.assertEqual(m['todo_http_rejections_total{reason="ws_connections"}'], 6)
        self.assertEqual(s.stop(), 0)

    # BUG: concurrent upgrades of one user get past WS_MAX_PER_USER (and past
    # WS_MAX_CONNECTIONS the same way): hub::admit() counts only connections
    # already registered, and hub::opened() registers them only after the 101
    # was written (modules/sync/src/hub.cpp admit/opened; http_server.cpp runs
    # admit, then run_websocket accepts, then opened). Nothing reserves a slot
    # between the check and the registration.
    def test_concurrent_upgrades_respect_the_per_user_limit(self):
        s = Server(extra_env={"WS_MAX_PER_USER": "3"})
        self.addCleanup(s.cleanup)
        s.start()
        url = f"ws://127.0.0.1:{s.port}/api/v1/ws"

        async def storm(token):
            async def one():
                try:
                    return await websockets.connect(url, extra_headers={"Authorization": f"Bearer {token}"},
                                                    ping_interval=None, close_timeout=2)
                except InvalidStatusCode as e:
                    return e.status_code

            got = await asyncio.gather(*[one() for _ in range(12)])
            opened = [g for g in got if not isinstance(g, int)]
            for ws in opened:
                await ws.close()
            return len(opened), sorted(g for g in got if isinstance(g, int))

        for round_ in range(5):
            admitted, refusals = self.loop.run(storm(s.token(new_user("storm"))), 30)
            self.assertEqual(refusals, [429] * (12 - admitted), f"round {round_}")
            self.assertEqual(admitted, 3, f"round {round_}: 12 concurrent upgrades, WS_MAX_PER_USER=3")


# ---------------------------------------------------------------------------
# 5. SIGTERM: every socket is closed with 1001, then the process exits 0.

class Shutdown(WsCase):
    def test_sigterm_closes_1001_and_exits_0(self):
        s = Server()
        self.addCleanup(s.cleanup)
        s.start()
        u = new_user("bye")
        clients = [self.synced(s, u), self.synced(s, u, how="subprotocol"), self.connect(s, new_user("other"))]
        s.proc.send_signal(signal.SIGTERM)
        for c in clients:
            closed = c.wait_closed(10)
            self.assertEqual(c.close_code, 1001, closed)
        self.assertEqual(s.proc.wait(15), 0)


# ---------------------------------------------------------------------------
# 6. Two replicas on one database and one Kafka broker.

class Replicas(WsCase):
    @classmethod
    def setUpClass(cls):
        require_environment()
        db = PrivateDatabase("e2e_ws").create()
        cls.addClassCleanup(db.cleanup)
        cls.db = db
        a = Server(database_url=db.url, extra_env={"RATE_LIMIT": "0"})
        a.env.pop("KAFKA_BROKERS", None)  # unset: the embedded broker
        cls.addClassCleanup(a.cleanup)
        a.start()
        lines = [l for l in a.log_lines() if l.get("msg") == "embedded kafka broker"]
        assert len(lines) == 1, a.read_log()
        b = Server(database_url=db.url, extra_env={"RATE_LIMIT": "0", "KAFKA_BROKERS": lines[0]["bootstrap"]})
        cls.addClassCleanup(b.cleanup)
        b.start()
        cls.a, cls.b = a, b

    def test_each_replica_delivers_the_others_changes(self):
        u = new_user("replica")
        on_b = self.synced(self.b, u)
        on_a = self.synced(self.a, u)
        first = on_b.seqs()[0]
        self.assertEqual(on_a.seqs(), [first])
        via_a, via_b = self.api(self.a, u), self.api(self.b, u)
        ids = []
        for i in range(10):
            ids.append(via_a.create(f"via a {i}")["id"])
            ids.append(via_b.create(f"via b {i}")["id"])
        for i, t in enumerate(ids[:6]):
            (via_a if i % 2 else via_b).patch(t, {"title": f"renamed {i}", "tags": ["x"]})
        self.assertEqual(via_b.call("POST", f"/api/v1/tasks/{ids[0]}/complete")[0], 200)
        self.assertEqual(via_a.call("DELETE", f"/api/v1/tasks/{ids[1]}")[0], 204)
        last = first + 28
        self.assertEqual(via_a.last_seq(), last)
        on_a.wait_seq(last)
        on_b.wait_seq(last)
        logged, _ = via_b.events(first - 1)
        self.assertEqual(len(logged), 29)
        for name, c in (("replica a", on_a), ("replica b", on_b)):
            self.assertContiguous(c.seqs(), first, last, name)
            self.assertEqual(c.controls(), [])
            for got, want in zip(c.events(), logged):
                self.assertEqual(got, want, f"{name}: event {want['sequence']}")

    def test_resume_across_replicas(self):
        u = new_user("replica-resume")
        via_a = self.api(self.a, u)
        for i in range(5):
            via_a.create(f"t{i}")
        c = self.connect(self.b, u)
        c.resume(2)
        c.wait_seq(5)
        self.assertContiguous(c.seqs(), 3, 5)
        via_a.create("live from a")
        c.wait_seq(6)
        self.assertContiguous(c.seqs(), 3, 6)
        self.assertEqual(c.events(), via_a.events(2)[0])

    def test_resume_older_than_the_retained_log_resets(self):
        u = new_user("pruned")
        api = self.api(self.a, u)
        for i in range(5):
            api.create(f"t{i}")
        # Retention removes old events; this database is ours, so remove them by hand.
        psql(self.db.url, f"DELETE FROM events WHERE user_id = '{u}' AND seq <= 3")
        self.assertEqual([e["sequence"] for e in api.events(0)[0]], [4, 5])
        c = self.connect(self.a, u)
        c.resume(2)  # 3 is gone
        c.wait_frames(1)
        self.assertEqual(c.frames, [{"type": "reset", "last_seq": 5}])
        c.resume(3)  # 4 and 5 are still there
        c.wait_seq(5)
        self.assertEqual(c.frames[1:], api.events(3)[0])
        psql(self.db.url, f"DELETE FROM events WHERE user_id = '{u}'")
        c.resume(0)
        c.wait_frames(4)
        self.assertEqual(c.frames[3], {"type": "reset", "last_seq": 5})
        api.create("after the reset")
        c.wait_seq(6)
        self.assertEqual(c.seqs(), [4, 5, 6])


if __name__ == "__main__":
    unittest.main()
