"""docs/OPERATIONS.md stays in step with the binary, the alerts, the
workflows' secrets and the end-to-end tests it points to."""
import re
import unittest

import yaml

from deploy_support import prometheus_rules, read, repo_files, settings


def operations():
    return read("docs/OPERATIONS.md")


class Operations(unittest.TestCase):
    def test_every_setting_is_documented(self):
        section = re.search(r"^## Configuration\n(.*?)^## ", operations(), re.M | re.S).group(1)
        table = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", section, re.M))
        self.assertEqual(set(settings()) - table, set(), "settings of todo-server --help missing from the table")
        self.assertEqual(table - set(settings()), set(), "documented settings the binary does not have")

    def test_every_limit_is_a_setting(self):
        section = re.search(r"^## Limits\n(.*?)^## ", operations(), re.M | re.S).group(1)
        rows = re.findall(r"^\| (`[A-Z].*?) \|", section, re.M)
        self.assertGreaterEqual(len(rows), 10)
        named = {n for row in rows for n in re.findall(r"`([A-Z][A-Z0-9_]*)`", row)}
        self.assertEqual(named - set(settings()), set(), "limits the binary does not have")
        not_client_limits = {"DRAIN_TIMEOUT", "DB_CONNECT_TIMEOUT", "REMINDER_MAX_ATTEMPTS", "LIMITS_EXEMPT_LOOPBACK"}
        limits = {s for s in settings() if re.search(r"(LIMIT|MAX|TIMEOUT|QUEUE)", s)} - not_client_limits
        self.assertEqual(limits - named, set(), "settings that limit clients missing from the limits table")

    def test_every_alert_is_explained(self):
        alerts = {r["alert"] for g in prometheus_rules()["spec"]["groups"] for r in g["rules"] if "alert" in r}
        for a in sorted(alerts):
            self.assertRegex(operations(), rf"(?m)^(#+|\|) *`?{a}`?", f"{a} has no entry")

    def test_workflow_secrets_and_variables_are_documented(self):
        names = set()
        for f in repo_files(".github/workflows/*.yml"):
            names |= set(re.findall(r"\$\{\{\s*(?:secrets|vars)\.([A-Z][A-Z0-9_]*)", read(f)))
        self.assertTrue(names)
        for n in sorted(names):
            self.assertIn(f"`{n}`", operations())

    def test_named_end_to_end_tests_exist(self):
        named = re.findall(r"`(tests/e2e/test_\w+\.py)`\s+\(`(\w+)\.(test_\w+)`\)", operations())
        self.assertGreaterEqual(len(named), 2, "the SIGTERM drain tests are named")
        for f, cls, test in named:
            text = read(f)
            self.assertRegex(text, rf"(?m)^class {cls}\b")
            self.assertRegex(text, rf"(?m)^    def {test}\(")

    def test_secret_templates_are_documented(self):
        for f in repo_files("k8s/secrets/*.template.yaml"):
            doc = yaml.safe_load(read(f))
            self.assertIn(f"`{doc['metadata']['name']}`", operations(), f)
            for key in doc["stringData"]:
                self.assertIn(f"`{key}`", operations(), f"{f}: key {key}")


if __name__ == "__main__":
    unittest.main()


class SecurityDoc(unittest.TestCase):
    """Every test docs/SECURITY.md names as a defence's proof exists."""

    REF = re.compile(r"`((?:tests/[\w/]+/)?test_\w+\.py|tests/[\w/]+\.cpp)`:|`(\w+)\.(test_\w+)`|\"([^\"\n]+)\"")

    def test_named_tests_exist(self):
        checked = 0
        for paragraph in re.split(r"\n\s*\n", read("docs/SECURITY.md")):
            current = None
            for m in self.REF.finditer(paragraph):
                if m.group(1):
                    path = m.group(1) if m.group(1).startswith("tests/") else f"tests/e2e/{m.group(1)}"
                    current = (path, read(path))
                    continue
                self.assertIsNotNone(current, f"{m.group(0)} names no file")
                path, text = current
                if m.group(2):
                    self.assertTrue(path.endswith(".py"), m.group(0))
                    body = re.search(rf"(?ms)^class {m.group(2)}\b.*?(?=^class |\Z)", text)
                    self.assertIsNotNone(body, f"{path}: no class {m.group(2)}")
                    self.assertRegex(body.group(0), rf"(?m)^    def {m.group(3)}\(", f"{path}: {m.group(0)}")
                else:
                    self.assertTrue(path.endswith(".cpp"), m.group(0))
                    self.assertTrue(f'"{m.group(4)}"' in text, f"{path}: no test named {m.group(4)!r}")
                checked += 1
        self.assertGreater(checked, 40)
