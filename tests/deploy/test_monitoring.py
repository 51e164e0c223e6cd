"""k8s/monitoring/: every query reads what the server really exports, the
alerts pass promtool's own unit tests, and the dashboard is well formed."""
import os
import shutil
import tempfile
import unittest

import yaml

import live
from deploy_checks import dashboard_queries, metric_family, overlapping_panels, parse_exposition, promql_uses
from deploy_support import APP, dashboard, one, path, prometheus_rules, render, run, tool

# Labels Prometheus adds to every series it scrapes through a ServiceMonitor.
TARGET_LABELS = {"namespace", "pod", "instance", "job", "service", "endpoint", "container"}


def queries():
    """(where, PromQL) of the dashboard and the alerts."""
    out = [("dashboard", q) for q in dashboard_queries(dashboard())]
    for g in prometheus_rules()["spec"]["groups"]:
        for r in g["rules"]:
            out.append((r.get("alert") or r.get("record"), r["expr"]))
    return out


class Metrics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.types, cls.labels = parse_exposition(live.metrics_page())

    def test_the_server_exports_what_the_page_is_parsed_into(self):
        self.assertIn("todo_http_requests_total", self.types)
        self.assertEqual(self.types.get("todo_http_request_duration_seconds"), "histogram")
        self.assertTrue({"route", "method", "status"} <= self.labels["todo_http_requests_total"])

    def test_every_metric_in_dashboard_and_alerts_is_exported(self):
        qs = queries()
        self.assertGreater(len(qs), 20)
        used = set()
        for where, q in qs:
            uses, _ = promql_uses(q)
            self.assertTrue(uses, f"{where}: no metric found in {q!r}")
            for name, _ in uses:
                with self.subTest(where=where, metric=name):
                    self.assertIsNotNone(metric_family(name, self.types),
                                         f"{name} is not exported by todo-server (/metrics)")
                    used.add(metric_family(name, self.types))
        self.assertGreater(len(used), 15, "the dashboard covers most of what is exported")

    def test_every_label_in_dashboard_and_alerts_exists(self):
        for where, q in queries():
            uses, grouping = promql_uses(q)
            allowed = set(TARGET_LABELS)
            for name, matched in uses:
                family = metric_family(name, self.types)
                if family is None:
                    continue  # reported by the test above
                mine = self.labels[family] | TARGET_LABELS | ({"le"} if name.endswith("_bucket") else set())
                allowed |= mine
                with self.subTest(where=where, metric=name):
                    self.assertEqual(matched - mine, set(), f"labels {name} does not have")
            with self.subTest(where=where, grouping=sorted(grouping)):
                self.assertEqual(grouping - allowed, set())

    def test_histogram_quantile_reads_buckets(self):
        for where, q in queries():
            if "histogram_quantile" in q:
                uses, grouping = promql_uses(q)
                with self.subTest(where):
                    self.assertTrue(all(n.endswith("_bucket") for n, _ in uses), q)
                    self.assertIn("le", grouping, q)


class Alerts(unittest.TestCase):
    def test_promtool_checks_and_unit_tests(self):
        work = tempfile.mkdtemp(prefix="todo-deploy-rules-")
        self.addCleanup(shutil.rmtree, work)
        with open(os.path.join(work, "rules.yaml"), "w") as f:
            yaml.safe_dump(prometheus_rules()["spec"], f)
        shutil.copy(path("tests/deploy/alerts.test.yaml"), work)
        promtool = tool("promtool")
        p = run([promtool, "check", "rules", "rules.yaml"], cwd=work)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = run([promtool, "test", "rules", "alerts.test.yaml"], cwd=work)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_every_alert_has_a_test_that_fires_it(self):
        with open(path("tests/deploy/alerts.test.yaml")) as f:
            tests = yaml.safe_load(f)["tests"]
        fired = {t["alertname"] for case in tests for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
        alerts = {r["alert"] for g in prometheus_rules()["spec"]["groups"] for r in g["rules"] if "alert" in r}
        self.assertEqual(alerts - fired, set(), "alerts without a promtool test that fires them")


class Dashboard(unittest.TestCase):
    def test_panels_are_well_formed(self):
        board = dashboard()
        panels = board["panels"]
        self.assertEqual(len({p["id"] for p in panels}), len(panels), "panel ids are unique")
        self.assertEqual(overlapping_panels(panels), [])
        for p in panels:
            if p["type"] == "row":
                continue
            with self.subTest(p["title"]):
                self.assertTrue(p["targets"])
                self.assertEqual(len({t["refId"] for t in p["targets"]}), len(p["targets"]))
                self.assertEqual(p["datasource"]["uid"], "${datasource}")

    def test_the_monitor_scrapes_the_service_port(self):
        monitor = one(render("monitoring"), "ServiceMonitor", APP)["spec"]
        for short in ("local", "cloud"):
            service = one(render(short), "Service", APP)
            self.assertTrue(monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items())
            self.assertIn(monitor["endpoints"][0]["port"], {p["name"] for p in service["spec"]["ports"]})
        self.assertEqual(monitor["endpoints"][0]["path"], "/metrics")
        self.assertEqual(live.server().get("/metrics").status, 200)


if __name__ == "__main__":
    unittest.main()
