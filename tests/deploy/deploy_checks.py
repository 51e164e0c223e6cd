"""Pure checks, written once and used on every manifest, Dockerfile and
query: each returns what is wrong, an empty list when nothing is.
"""
import json
import re
import shlex

DNS_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
WORKLOADS = ("Deployment", "StatefulSet", "Job", "DaemonSet")
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
DAPR_ANNOTATIONS = ("dapr.io/enabled", "dapr.io/app-id", "dapr.io/app-port", "dapr.io/config")


# ---------------------------------------------------------------------------
# Kubernetes manifests: required fields per kind.

def manifest_problems(doc):
    """Required fields of one rendered object; an unknown kind is a problem too,
    so a new kind cannot slip in unchecked."""
    p = []
    kind = doc.get("kind")
    if not isinstance(doc.get("apiVersion"), str) or not doc["apiVersion"]:
        p.append("apiVersion missing")
    if not isinstance(kind, str) or not kind:
        return p + ["kind missing"]
    meta = doc.get("metadata") or {}
    name = meta.get("name")
    where = f"{kind}/{name}"
    if not isinstance(name, str) or not DNS_NAME.fullmatch(name) or len(name) > 253:
        p.append(f"{where}: metadata.name missing or not a DNS name")
    for field in ("labels", "annotations"):
        for k, v in (meta.get(field) or {}).items():
            if not isinstance(v, str):
                p.append(f"{where}: {field} {k} must be a string, is {v!r}")
    check = KIND_CHECKS.get(kind)
    if check is None:
        return p + [f"{where}: no required-field check for kind {kind}"]
    return p + [f"{where}: {m}" for m in check(doc.get("spec"), doc)]


def _workload(spec, doc):
    p = []
    if not isinstance(spec, dict):
        return ["spec missing"]
    template = spec.get("template") or {}
    pod = template.get("spec") or {}
    for field in ("labels", "annotations"):
        for k, v in ((template.get("metadata") or {}).get(field) or {}).items():
            if not isinstance(v, str):
                p.append(f"pod template {field} {k} must be a string, is {v!r}")
    if doc["kind"] != "Job":
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            p.append("spec.selector.matchLabels missing or not matching the pod labels")
    containers = pod.get("containers") or []
    if not containers:
        return p + ["no containers"]
    pod_sc = pod.get("securityContext") or {}
    for c in containers:
        cn = c.get("name", "?")
        sc = c.get("securityContext") or {}
        if not c.get("image"):
            p.append(f"container {cn}: image missing")
        res = c.get("resources") or {}
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in (res.get(part) or {}):
                    p.append(f"container {cn}: resources.{part}.{r} missing")
        if not (sc.get("runAsNonRoot") is True or (pod_sc.get("runAsNonRoot") is True and "runAsNonRoot" not in sc)):
            p.append(f"container {cn}: runAsNonRoot is not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            p.append(f"container {cn}: allowPrivilegeEscalation is not false")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            p.append(f"container {cn}: capabilities.drop lacks ALL")
        if sc.get("privileged"):
            p.append(f"container {cn}: privileged")
    if doc["kind"] == "Deployment":
        p += _deployment(pod, template, containers)
    if doc["kind"] == "StatefulSet" and not spec.get("serviceName"):
        p.append("spec.serviceName missing")
    if doc["kind"] == "Job" and pod.get("restartPolicy") not in ("OnFailure", "Never"):
        p.append("restartPolicy must be OnFailure or Never")
    return p


def _deployment(pod, template, containers):
    """The service's own pods: the full set of rules for them."""
    p = []
    if not isinstance(pod.get("terminationGracePeriodSeconds"), int):
        p.append("terminationGracePeriodSeconds missing")
    spread = pod.get("topologySpreadConstraints") or []
    if not spread:
        p.append("topologySpreadConstraints missing")
    for t in spread:
        if not all(k in t for k in ("maxSkew", "topologyKey", "whenUnsatisfiable", "labelSelector")):
            p.append(f"topologySpreadConstraint incomplete: {t}")
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    for a in DAPR_ANNOTATIONS:
        if not annotations.get(a):
            p.append(f"annotation {a} missing")
    if annotations.get("dapr.io/enabled") not in (None, "true"):
        p.append("dapr.io/enabled is not \"true\"")
    if not str(annotations.get("dapr.io/app-port", "")).isdigit():
        p.append("dapr.io/app-port is not a port number")
    for c in containers:
        cn = c.get("name", "?")
        if (c.get("securityContext") or {}).get("readOnlyRootFilesystem") is not True:
            p.append(f"container {cn}: readOnlyRootFilesystem is not true")
        ports = c.get("ports") or []
        if not ports or not all(isinstance(x.get("containerPort"), int) for x in ports):
            p.append(f"container {cn}: ports missing")
        for probe in ("livenessProbe", "readinessProbe"):
            get = (c.get(probe) or {}).get("httpGet") or {}
            if not get.get("path") or not get.get("port"):
                p.append(f"container {cn}: {probe}.httpGet missing")
    return p


def _service(spec, doc):
    if not isinstance(spec, dict):
        return ["spec missing"]
    p = [] if spec.get("selector") else ["spec.selector missing"]
    ports = spec.get("ports") or []
    if not ports or not all(isinstance(x.get("port"), int) and x.get("name") for x in ports):
        p.append("ports must each have a name and a port")
    return p


def _hpa(spec, doc):
    spec = spec or {}
    p = []
    ref = spec.get("scaleTargetRef") or {}
    if not ref.get("kind") or not ref.get("name"):
        p.append("scaleTargetRef incomplete")
    lo, hi = spec.get("minReplicas"), spec.get("maxReplicas")
    if not isinstance(lo, int) or not isinstance(hi, int) or not 1 <= lo <= hi:
        p.append(f"replicas range {lo}..{hi} is not valid")
    if not spec.get("metrics"):
        p.append("metrics missing")
    return p


def _pdb(spec, doc):
    spec = spec or {}
    p = [] if (spec.get("selector") or {}).get("matchLabels") else ["selector missing"]
    if ("minAvailable" in spec) == ("maxUnavailable" in spec):
        p.append("exactly one of minAvailable and maxUnavailable")
    return p


def _network_policy(spec, doc):
    spec = spec or {}
    p = [] if "podSelector" in spec else ["podSelector missing"]
    return p + ([] if spec.get("policyTypes") else ["policyTypes missing"])


def _config_map(spec, doc):
    data = doc.get("data")
    if not isinstance(data, dict) or not data:
        return ["data missing"]
    return [f"data.{k} is not a string" for k, v in data.items() if not isinstance(v, str)]


def _secret(spec, doc):
    data = {**(doc.get("data") or {}), **(doc.get("stringData") or {})}
    return [] if data else ["data/stringData missing"]


def _component(spec, doc):
    spec = spec or {}
    p = [f"spec.{k} missing" for k in ("type", "version") if not spec.get(k)]
    for m in spec.get("metadata") or []:
        if not m.get("name") or ("value" not in m and "secretKeyRef" not in m):
            p.append(f"metadata entry incomplete: {m}")
    return p


def _kafka_topic(spec, doc):
    spec = spec or {}
    return [f"spec.{k} must be a positive integer" for k in ("partitions", "replicas")
            if not isinstance(spec.get(k), int) or spec[k] < 1]


def _service_monitor(spec, doc):
    spec = spec or {}
    p = [] if (spec.get("selector") or {}).get("matchLabels") else ["selector missing"]
    for e in spec.get("endpoints") or [{}]:
        if not e.get("port") or not e.get("path"):
            p.append("endpoint needs a port name and a path")
    return p


def _prometheus_rule(spec, doc):
    p = []
    groups = (spec or {}).get("groups") or []
    if not groups:
        return ["groups missing"]
    for g in groups:
        for r in g.get("rules") or []:
            name = r.get("alert") or r.get("record")
            if not name or not r.get("expr"):
                p.append(f"rule without a name or expr: {r}")
            if r.get("alert") and (not (r.get("labels") or {}).get("severity")
                                   or not (r.get("annotations") or {}).get("summary")):
                p.append(f"alert {name}: labels.severity and annotations.summary required")
    return p


def _anything_with_spec(spec, doc):
    return [] if isinstance(spec, dict) and spec else ["spec missing"]


KIND_CHECKS = {
    "Namespace": lambda spec, doc: [],
    "ServiceAccount": lambda spec, doc: [],
    "Deployment": _workload,
    "StatefulSet": _workload,
    "Job": _workload,
    "Service": _service,
    "HorizontalPodAutoscaler": _hpa,
    "PodDisruptionBudget": _pdb,
    "NetworkPolicy": _network_policy,
    "ConfigMap": _config_map,
    "Secret": _secret,
    "Component": _component,
    "Configuration": _anything_with_spec,
    "KafkaTopic": _kafka_topic,
    "ServiceMonitor": _service_monitor,
    "PrometheusRule": _prometheus_rule,
}


def pod_spec(doc):
    return doc["spec"]["template"]["spec"]


def cpu(q):
    q = str(q)
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def memory(q):
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 1e3, "M": 1e6, "G": 1e9}
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]i?)?", str(q))
    if not m:
        raise ValueError(f"not a memory quantity: {q}")
    return float(m.group(1)) * units.get(m.group(2) or "", 1)


# ---------------------------------------------------------------------------
# PromQL: the metric names and label names an expression uses.

PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                   "unless", "offset", "inf", "nan"}


def promql_uses(expr):
    """[(metric, {labels matched})], and the labels of by/on/without clauses."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    grouping = set()
    # Grafana's label_values(selector, label): a selector and a label.
    def label_values(m):
        grouping.add(m.group(2))
        return m.group(1)
    e = re.sub(r"\blabel_values\(\s*(.+?)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)", label_values, e)

    def group(m):
        grouping.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", m.group(2)))
        return " "
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", group, e)
    uses = []
    matchers = {}

    def selector(m):
        key = f"@{len(matchers)}@"
        matchers[key] = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", m.group(2)))
        return f"{m.group(1) or ''}{key}"
    e = re.sub(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^}]*)\}", selector, e)
    e = re.sub(r"\[[^\]]*\]", " ", e)  # ranges and subqueries
    for m in re.finditer(r"(?<![\w$.@])([A-Za-z_:][A-Za-z0-9_:]*)(@\d+@)?(?![\w@])(\s*\()?", e):
        name, sel, call = m.group(1), m.group(2), m.group(3)
        if call or name.lower() in PROMQL_KEYWORDS:
            continue
        uses.append((name, matchers.get(sel, set())))
    return uses, grouping


def metric_family(name, types):
    """The exported family a series name belongs to, or None."""
    if name in types:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and types.get(base) == "histogram":
            return base
    return None


def parse_exposition(text):
    """({family: type}, {family: set of label names}) of a /metrics page."""
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    labels = {f: set() for f in types}
    for line in text.splitlines():
        m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+\S+$", line)
        if m:
            family = metric_family(m.group(1), types)
            if family:
                labels[family].update(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="', m.group(2) or ""))
    return types, labels


def dashboard_queries(board):
    """Every PromQL query of a Grafana dashboard: panel targets (nested rows
    included) and query variables."""
    out = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                out.append(node["expr"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(board.get("panels", []))
    for var in (board.get("templating") or {}).get("list", []):
        if var.get("type") == "query":
            q = var.get("query")
            out.append(q.get("query") if isinstance(q, dict) else q)
    return [q for q in out if q]


def overlapping_panels(panels):
    """Pairs of panel titles whose grid rectangles overlap."""
    boxes = [(p.get("title"), p["gridPos"]) for p in panels]
    out = []
    for i, (ta, a) in enumerate(boxes):
        for tb, b in boxes[i + 1:]:
            if (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
                    and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]):
                out.append((ta, tb))
    return out


# ---------------------------------------------------------------------------
# Dockerfile and .dockerignore.

def dockerfile_instructions(text):
    """[(stage index, INSTRUCTION, arguments)], continuation lines joined."""
    out, stage, pending = [], -1, ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, args = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            stage += 1
        out.append((stage, word, args.strip()))
    return out


def exec_form(args):
    """The JSON array of an exec-form instruction, or None for shell form."""
    try:
        v = json.loads(args)
    except ValueError:
        return None
    return v if isinstance(v, list) and all(isinstance(x, str) for x in v) else None


def copy_parts(args):
    """(flags, sources, destination) of a COPY or ADD."""
    words = exec_form(args) or shlex.split(args)
    flags = [w for w in words if w.startswith("--")]
    rest = [w for w in words if not w.startswith("--")]
    return flags, rest[:-1], rest[-1]


def dockerignore_excludes(patterns, rel):
    """Whether Docker leaves `rel` out of the build context: the last matching
    pattern wins, `!` re-includes, and a pattern matching a parent directory
    matches everything below it (Docker's fileutils.PatternMatcher)."""
    excluded = False
    parts = rel.split("/")
    for raw in patterns:
        neg = raw.startswith("!")
        pat = raw[1:] if neg else raw
        pat = re.sub(r"/+$", "", pat.strip().lstrip("/"))
        if not pat:
            continue
        rx = _docker_pattern(pat)
        if any(rx.fullmatch("/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            excluded = not neg
    return excluded


def _docker_pattern(pat):
    out = ""
    i = 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pat.startswith("**", i):
            out += ".*"
            i += 2
        else:
            c = pat[i]
            out += "[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c)
            i += 1
    return re.compile(out)


def dockerignore_patterns(text):
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
