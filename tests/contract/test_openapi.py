"""The `openapi` test: docs/openapi.yaml passes Redocly's lint, documents
every route the code registers, and the response checker the end-to-end
suites run (tests/tooling/validate-responses.js) fails when an answer does
not match it.

  cd tests/contract && /usr/bin/python3 -m unittest -v test_openapi
"""
import glob
import json
import os
import re
import subprocess
import tempfile
import unittest

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOLING = os.path.join(ROOT, "tests", "tooling")
SPEC = os.path.join(ROOT, "docs", "openapi.yaml")


def document():
    with open(SPEC, encoding="utf-8") as f:
        return yaml.safe_load(f)


def require_tooling():
    if not os.path.isdir(os.path.join(TOOLING, "node_modules", "ajv")):
        raise AssertionError("tests/tooling/node_modules is missing: run scripts/test.sh (it runs npm ci)")


def registered_routes():
    """(METHOD, path) of every router add() call in src/ and modules/."""
    routes = set()
    files = glob.glob(os.path.join(ROOT, "src", "*.cpp")) + glob.glob(os.path.join(ROOT, "modules", "*", "src", "*.cpp"))
    for path in files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for verb, route in re.findall(r"routes\.add\(\s*(?:http::)?method::(\w+),\s*\"([^\"]+)\"", text):
            routes.add((verb.rstrip("_").upper(), route))
    return routes


TASK = {
    "id": "01a2138e-d704-7def-a585-fbc935486675", "title": "Water the plants", "description": "",
    "completed": False, "completed_at": None, "priority": "high", "tags": ["home"],
    "due_at": "2026-03-02T17:00:00Z", "timezone": "Europe/Berlin", "recurrence": None, "series_id": None,
    "reminders": [{"id": "01a2138e-d704-7def-a585-fbc935486676", "before": "PT15M",
                   "fire_at": "2026-03-02T16:45:00Z", "state": "scheduled"}],
    "version": 1, "created_at": "2026-11-25T16:34:17.988Z", "updated_at": "2026-11-25T16:34:17.988Z",
}


def answer(method, path, status, body=None, content_type="application/json", **headers):
    h = {"x-request-id": "0192d5e4-7c1a-7b3e-9f55-3c1d2b4a5e6f"}
    if body is not None:
        h["content-type"] = content_type
    h.update({k.replace("_", "-"): v for k, v in headers.items()})
    return {"method": method, "path": path, "status": status, "headers": h,
            "body": "" if body is None else json.dumps(body), "test": "test_openapi"}


def problem(status, slug, title):
    return {"type": f"https://todo.dev/problems/{slug}", "title": title, "status": status, "detail": "why"}


GOOD = [
    answer("GET", "/health", 200, {"status": "ok"}),
    answer("HEAD", "/health", 200),
    answer("POST", "/api/v1/tasks", 201, TASK, location=f"/api/v1/tasks/{TASK['id']}", etag='"1"'),
    answer("GET", f"/api/v1/tasks/{TASK['id']}", 304, etag='"1"'),
    answer("DELETE", f"/api/v1/tasks/{TASK['id']}", 204),
    answer("GET", "/api/v1/nothing", 401, problem(401, "unauthorized", "Authentication required"),
           "application/problem+json", www_authenticate="Bearer"),
    answer("PUT", "/api/v1/tasks", 405, problem(405, "method-not-allowed", "Method not allowed"),
           "application/problem+json", allow="GET, HEAD, POST"),
    answer("GET", "/metrics", 200, None) | {"headers": {"x-request-id": "r1",
                                                      "content-type": "text/plain; version=0.0.4; charset=utf-8"},
                                          "body": "# HELP x y\n"},
]


class Lint(unittest.TestCase):
    def test_redocly_lint_passes(self):
        require_tooling()
        p = subprocess.run([os.path.join(TOOLING, "node_modules", ".bin", "redocly"), "lint", "--format=stylish",
                            "--config", os.path.join(ROOT, "redocly.yaml"), "docs/openapi.yaml"],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_the_lint_is_not_a_formality(self):
        require_tooling()
        broken = document()
        del broken["paths"]["/health"]["get"]["responses"]["200"]["description"]
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "openapi.yaml")
            with open(path, "w", encoding="utf-8") as f:
                yaml.safe_dump(broken, f)
            p = subprocess.run([os.path.join(TOOLING, "node_modules", ".bin", "redocly"), "lint",
                                "--config", os.path.join(ROOT, "redocly.yaml"), path],
                               cwd=ROOT, capture_output=True, text=True, timeout=120)
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)


class Routes(unittest.TestCase):
    def test_every_route_of_the_code_is_an_operation_and_back(self):
        code = registered_routes()
        self.assertIn(("GET", "/api/v1/ws"), code)
        self.assertIn(("POST", "/job/{name}"), code)
        doc = {(verb.upper(), path) for path, item in document()["paths"].items()
               for verb in item if verb in ("get", "post", "put", "patch", "delete", "head", "options")}
        self.assertEqual(code - doc, set(), "routes the server has that docs/openapi.yaml does not describe")
        self.assertEqual(doc - code, set(), "operations in docs/openapi.yaml the server does not have")

    def test_api_md_names_every_path(self):
        with open(os.path.join(ROOT, "docs", "API.md"), encoding="utf-8") as f:
            prose = f.read()
        for path in document()["paths"]:
            self.assertTrue(path in prose, f"docs/API.md does not mention {path}")


def broken(change):
    doc = document()
    change(doc)
    return doc


# name: (document, or None for docs/openapi.yaml; the answers to check)
CASES = {
    "good": (None, GOOD),
    "nothing": (None, []),
    "broken_schema": (broken(lambda d: d["components"]["schemas"]["Task"]["properties"].pop("version")), GOOD),
    "bad_body": (None, [answer("POST", "/api/v1/tasks", 201, dict(TASK, priority="huge"), etag='"1"',
                               location=f"/api/v1/tasks/{TASK['id']}")]),
    "bad_status": (None, [answer("GET", "/health", 418, {"status": "ok"})]),
    "missing_header": (None, [answer("GET", f"/api/v1/tasks/{TASK['id']}", 200, TASK)]),
    "bad_header": (None, [answer("GET", f"/api/v1/tasks/{TASK['id']}", 200, TASK, etag="W/1")]),
    "bad_media_type": (None, [answer("GET", "/health", 200, {"status": "ok"}, "text/html")]),
    "unexpected_body": (None, [answer("DELETE", f"/api/v1/tasks/{TASK['id']}", 204) | {"body": "{}"}]),
    "unrouted_not_a_problem": (None, [answer("GET", "/nowhere", 404, {"error": "x"}, "application/problem+json")]),
    "unrouted_success": (None, [answer("GET", "/nowhere", 200, {"status": "ok"})]),
    "schema_ajv_refuses": (broken(lambda d: d["components"]["schemas"]["Timestamp"].update(format="date-tiem")),
                           GOOD),
}

RUN_CASES = """
const { run } = require('./validate-responses.js');
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = {};
for (const [name, c] of Object.entries(cases)) {
  try {
    out[name] = run(c.doc, c.records);
  } catch (e) {
    out[name] = { code: 2, report: String(e.message) };
  }
}
process.stdout.write(JSON.stringify(out));
"""


class Checker(unittest.TestCase):
    """validate-responses.js passes what matches and fails what does not
    (all cases in one node process: it starts slowly)."""

    results = None

    @classmethod
    def setUpClass(cls):
        require_tooling()
        doc = document()
        cases = {name: {"doc": d if d is not None else doc, "records": records}
                 for name, (d, records) in CASES.items()}
        p = subprocess.run(["node", "-e", RUN_CASES], input=json.dumps(cases), cwd=TOOLING,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        cls.results = json.loads(p.stdout)

    def assertPasses(self, name):
        r = self.results[name]
        self.assertEqual(r["code"], 0, r["report"])

    def assertFails(self, name, why=None, code=1):
        r = self.results[name]
        self.assertEqual(r["code"], code, r["report"])
        if why:
            self.assertIn(why, r["report"])

    def test_matching_answers_pass(self):
        self.assertPasses("good")

    def test_nothing_recorded_fails(self):
        self.assertFails("nothing", "no answers were recorded")

    def test_a_broken_schema_fails_the_check(self):
        self.assertFails("broken_schema", "must NOT have additional properties")

    def test_a_body_that_breaks_the_schema_fails(self):
        self.assertFails("bad_body", "/priority must be equal to one of the allowed values")

    def test_an_undocumented_status_fails(self):
        self.assertFails("bad_status", "status 418 is not documented")

    def test_a_missing_required_header_fails(self):
        self.assertFails("missing_header", "header ETag is required and missing")

    def test_a_bad_header_value_fails(self):
        self.assertFails("bad_header", "header ETag: \"W/1\"")

    def test_an_undocumented_media_type_fails(self):
        self.assertFails("bad_media_type", "Content-Type text/html is not documented")

    def test_a_body_where_none_is_documented_fails(self):
        self.assertFails("unexpected_body", "documented without a body")

    def test_unrouted_requests_must_be_problems(self):
        self.assertFails("unrouted_not_a_problem", "must have required property 'type'")
        self.assertFails("unrouted_success", "status 200 is not documented")

    def test_a_schema_ajv_refuses_fails_the_check(self):
        self.assertFails("schema_ajv_refuses", "date-tiem", code=2)

    def test_the_command_line_checks_a_record_file(self):
        with tempfile.TemporaryDirectory() as d:
            spec, rec = os.path.join(d, "openapi.json"), os.path.join(d, "answers.jsonl")
            with open(spec, "w", encoding="utf-8") as f:
                json.dump(document(), f)
            with open(rec, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r) + "\n" for r in GOOD + [answer("GET", "/health", 418, {"status": "ok"})])
            p = subprocess.run(["node", os.path.join(TOOLING, "validate-responses.js"), spec, rec],
                               cwd=TOOLING, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("status 418 is not documented", p.stderr)
        self.assertIn(f"checked {len(GOOD) + 1} answers", p.stderr)


if __name__ == "__main__":
    unittest.main()
