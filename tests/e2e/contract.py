"""Records every answer the harness's HTTP helper receives, for the check
against docs/openapi.yaml that run_suite.py runs after a suite.

Recording is on when TODO_CONTRACT_RECORD names a file (one per suite, so
suites running in parallel never share one); each answer is one JSON line.
"""
import json
import os
import sys
import threading
import unittest
import urllib.parse

_lock = threading.Lock()


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
