"""Every CloudEvent an e2e test reads is checked against the event contract.

The readers (Kafka records through kcat, WebSocket frames, GET /api/v1/events
pages) hand what they read to check(); it raises ContractViolation naming
each event and rule it breaks. The checking is tests/tooling/validate-events.js
(the JSON Schemas in docs/events with ajv, and the CloudEvents JS SDK in strict
mode), kept running in one Node process per test process so a read costs a
pipe round trip, not a process start. Events already found valid are not sent
again: tests poll the same topics and pages many times.
"""
import atexit
import json
import os
import subprocess
import threading

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
VALIDATOR = os.path.join(ROOT, "tests", "tooling", "validate-events.js")
NODE_MODULES = os.path.join(ROOT, "tests", "tooling", "node_modules")
CE_CONTENT_TYPE = "application/cloudevents+json"
# The WebSocket's own messages; every other text frame is a CloudEvent.
CONTROL_TYPES = ("reset", "error")


class ContractViolation(AssertionError):
    pass


_lock = threading.Lock()
_proc = None
_valid = set()  # canonical JSON of every event found valid


def _validator():
    global _proc
    if _proc is not None and _proc.poll() is None:
        return _proc
    if not os.path.isdir(NODE_MODULES):
        raise RuntimeError(f"{NODE_MODULES} is missing: run `npm ci` in tests/tooling "
                           "(scripts/test.sh does it through ensure_node_tooling)")
    _proc = subprocess.Popen(["node", VALIDATOR, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, bufsize=1)
    return _proc


def warm_up():
    """Starts the validator now, so that its start (compiling the schemas)
    is not paid inside the first read of a timed test."""
    with _lock:
        if os.path.isdir(NODE_MODULES):
            _validator()


@atexit.register
def _stop():
    if _proc is not None and _proc.poll() is None:
        _proc.stdin.close()  # the validator ends at the end of its input
        try:
            _proc.wait(5)
        except subprocess.TimeoutExpired:
            _proc.kill()
            _proc.wait()


def check(events, where):
    """Raises ContractViolation if any of `events` (parsed JSON) breaks the contract."""
    fresh = {}
    for e in events:
        key = json.dumps(e, sort_keys=True, separators=(",", ":"))
        if key not in _valid:
            fresh[key] = e
    if not fresh:
        return
    with _lock:
        proc = _validator()
        proc.stdin.write(json.dumps({"where": where, "events": list(fresh.values())}) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the event validator ended (exit {proc.wait()}); see its output above")
        errors = json.loads(line)["errors"]
        if errors:
            raise ContractViolation(f"{len(errors)} event contract violation(s):\n" + "\n".join(errors))
        _valid.update(fresh)


# The default topics that carry one family of types (task-updates carries all).
TOPIC_TYPES = {"task-events": "com.todo.task.", "reminders": "com.todo.reminder."}


def check_records(records, topic):
    """Kafka records as kcat -J shows them (value parsed into "value", headers
    paired in "header_pairs"): structured mode, keyed by the user, on the
    topic of their type, and a valid event in each."""
    for r in records:
        at = f"Kafka topic {topic}: record at partition {r['partition']} offset {r['offset']}"
        if ("content-type", CE_CONTENT_TYPE) not in r["header_pairs"]:
            raise ContractViolation(f"{at} has no content-type: {CE_CONTENT_TYPE} header: {r['header_pairs']}")
        value = r["value"]
        if not isinstance(value, dict) or r.get("key") != value.get("userid"):
            raise ContractViolation(f"{at}: the key {r.get('key')!r} is not the event's userid")
        family = TOPIC_TYPES.get(topic)
        if family and not str(value.get("type")).startswith(family):
            raise ContractViolation(f"{at}: a {value.get('type')} event; this topic carries {family}* only")
    check([r["value"] for r in records], f"Kafka topic {topic}")


def check_frames(frames, where="WebSocket"):
    """Parsed text frames: every one that is not a control message must be a valid event."""
    if any(isinstance(f, (bytes, bytearray)) for f in frames):
        raise ContractViolation(f"{where}: a binary frame; the server sends events as text frames")
    check([f for f in frames if not (isinstance(f, dict) and f.get("type") in CONTROL_TYPES)], where)


def check_response(method, path, status, body):
    """An answer of GET /api/v1/events (status and raw body): each item must be a valid event."""
    if method == "GET" and status == 200 and path.split("?")[0] == "/api/v1/events":
        check(json.loads(body)["items"], f"GET {path}")


warm_up()
