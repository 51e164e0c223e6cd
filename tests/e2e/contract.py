"""Records every answer the server gives the end-to-end tests, for the
check against docs/openapi.yaml that run_suite.py runs after a suite: those
of the harness's curl helper, and those read through Python's http.client
(the keep-alive clients of some suites) from a server the harness started.

Recording is on when TODO_CONTRACT_RECORD names a file (one per suite, so
suites running in parallel never share one); each answer is one JSON line.
"""
import http.client
import io
import json
import os
import sys
import threading
import unittest
import urllib.parse

_lock = threading.Lock()
_server_ports = set()


def watch(port):
    """Answers from this port (a todo-server the harness started) are recorded."""
    _server_ports.add(port)


def _current_test():
    """The id of the test method on the stack, for the mismatch report."""
    frame = sys._getframe(2)
    while frame is not None:
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, unittest.TestCase):
            return candidate.id()
        frame = frame.f_back
    return None


def record(method, url, status, headers, body):
    path = os.environ.get("TODO_CONTRACT_RECORD")
    if not path or status == 0:  # 0: curl got no answer at all
        return
    target = urllib.parse.urlsplit(url)
    line = json.dumps({
        "method": method,
        "path": target.path,
        "query": target.query,
        "status": status,
        "headers": headers,
        # curl -I writes the header block where the body would go; a HEAD
        # answer has no body to check.
        "body": "" if method == "HEAD" else body,
        "test": _current_test(),
    })
    with _lock, open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def _recording_http_client():
    """Wraps http.client so that a full answer from a watched server is
    recorded, then handed to the caller unchanged (its body re-served from
    memory)."""
    request = http.client.HTTPConnection.request
    getresponse = http.client.HTTPConnection.getresponse

    def remember(self, method, url, *args, **kwargs):
        self._contract_request = (method, url)
        return request(self, method, url, *args, **kwargs)

    def capture(self):
        r = getresponse(self)
        sent = getattr(self, "_contract_request", None)
        if sent is None or self.port not in _server_ports or not os.environ.get("TODO_CONTRACT_RECORD"):
            return r
        body = r.read()
        r.fp = io.BufferedReader(io.BytesIO(body))
        r.length = len(body)
        r.chunked = False
        url = f"http://{self.host}:{self.port}{sent[1]}"
        record(sent[0], url, r.status, {k.lower(): v for k, v in r.getheaders()},
               body.decode("utf-8", errors="replace"))
        return r

    http.client.HTTPConnection.request = remember
    http.client.HTTPConnection.getresponse = capture


_recording_http_client()
