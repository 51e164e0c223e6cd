"""One running todo-server for the checks that need the real thing (probes,
/metrics, the image's HEALTHCHECK), on a private database of the test
PostgreSQL so its Kafka relay lock and checkpoint are its own."""
import base64
import os
import socket
import unittest

from deploy_support import harness, harness_require

_state = {}


def database():
    """A private database, created once per run and dropped at the end."""
    if "db" not in _state:
        harness_require()
        db = harness.PrivateDatabase("deploy").create()
        _state["db"] = db
        unittest.addModuleCleanup(_drop_database)
    return _state["db"]


def _drop_database():
    db = _state.pop("db", None)
    if db:
        db.cleanup()


def server():
    """The server, started on first use with the harness (PORT=0, read back)."""
    s = _state.get("server")
    if s is None or s.proc.poll() is not None:
        s = harness.Server(database_url=database().url, extra_env={"RATE_LIMIT": "0"})
        s.env = {k: v for k, v in s.env.items() if not k.startswith("KAFKA_")}
        s.start()
        _state["server"] = s
        unittest.addModuleCleanup(_stop_server)
    return s


def _stop_server():
    s = _state.pop("server", None)
    if s:
        code = s.stop()
        s.cleanup()
        assert code == 0, f"server exited with {code} after SIGTERM"


def open_websocket(s, user):
    """A WebSocket upgrade by hand (the stdlib has no client); the open socket.
    Until the hub has caught up with the event log after start, the upgrade
    is a 503 with Retry-After, which a client retries."""
    return harness.eventually(lambda: _upgrade(s, user), 10, interval=0.1, what="a WebSocket upgrade")


def _upgrade(s, user):
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /api/v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{s.port}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Authorization: Bearer {s.token(user)}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    if head.startswith(b"HTTP/1.1 101"):
        return sock
    sock.close()
    if head.startswith(b"HTTP/1.1 503"):
        return None
    raise AssertionError(f"WebSocket upgrade refused: {head[:200]!r}")


def metrics_page():
    """/metrics after the server has done one of everything the dashboard
    shows: a request, a task written, a WebSocket open (some families are
    registered on first use)."""
    s = server()
    user = harness.new_user("deploy")
    r = s.post("/api/v1/tasks", {"title": "deploy check"}, user=user)
    assert r.status == 201, r
    ws = open_websocket(s, user)
    try:
        page = s.get("/metrics")
    finally:
        ws.close()
    assert page.status == 200, page
    return page.body
