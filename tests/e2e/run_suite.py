"""Runs one end-to-end suite, then checks every answer it received against
docs/openapi.yaml with tests/tooling/validate-responses.js (ajv). The suite
fails if a test fails or if any answer does not match the document.

usage: run_suite.py <test module> <record directory>
"""
import json
import os
import subprocess
import sys
import unittest

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
VALIDATOR = os.path.join(ROOT, "tests", "tooling", "validate-responses.js")


def check_answers(record, spec_json):
    with open(os.path.join(ROOT, "docs", "openapi.yaml"), encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    with open(spec_json, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    if not os.path.isdir(os.path.join(ROOT, "tests", "tooling", "node_modules", "ajv")):
        print("contract: tests/tooling/node_modules is missing; run scripts/test.sh (npm ci)", file=sys.stderr)
        return False
    p = subprocess.run(["node", VALIDATOR, spec_json, record], cwd=os.path.dirname(VALIDATOR))
    return p.returncode == 0


def main(module, record_dir):
    os.makedirs(record_dir, exist_ok=True)
    record = os.path.join(record_dir, f"{module}.jsonl")
    if os.path.exists(record):
        os.unlink(record)
    os.environ["TODO_CONTRACT_RECORD"] = record
    result = unittest.main(module=None, argv=[sys.argv[0], "-v", module], exit=False).result
    print(f"contract: checking the answers of {module} against docs/openapi.yaml", file=sys.stderr)
    matched = check_answers(record, os.path.join(record_dir, f"{module}.openapi.json"))
    return 0 if result.wasSuccessful() and matched else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
