"""Writes docs/openapi.yaml as compact JSON into a C++ source file, so the
binary serves the document the tests lint and validate against.

usage: embed_openapi.py <openapi.yaml> <out.cpp>
"""
import json
import sys

import yaml


def main(src, out):
    with open(src, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    # Fails on anything JSON cannot hold (a YAML date, say): the document must be plain JSON.
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    delimiter = "todo_openapi"
    if f"){delimiter}\"" in text:
        raise SystemExit(f"{src}: holds the raw string delimiter")
    body = (
        "// Generated from docs/openapi.yaml by cmake/embed_openapi.py; do not edit.\n"
        '#include "todo/openapi.hpp"\n\n'
        "namespace todo {\n\n"
        f"std::string_view openapi_json() {{\n  return R\"{delimiter}({text}){delimiter}\";\n}}\n\n"
        "}  // namespace todo\n"
    )
    with open(out, "w", encoding="utf-8") as f:
        f.write(body)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
