"""Shell scripts: shellcheck on all of them, and the deployment scripts run
against stand-ins for the tools they drive (no cluster is reachable here)."""
import os
import shlex
import shutil
import stat
import tempfile
import unittest

from deploy_checks import pod_spec
from deploy_support import APP, ROOT, find, one, path, read, render, repo_files, run, tool

# Sourced files are followed where shellcheck can see the path (-x with the
# script's directory) and reported where it cannot (SC1091 is left out).
# SC2119 is left out too: lib.sh's functions take optional arguments
# (`ensure_packages [extra...]`), so calling one without any is no mistake.
SHELLCHECK = ["-x", "-P", "SCRIPTDIR", "-e", "SC1091,SC2119"]

STUB = """#!/bin/bash
# Records its call; answers like a fresh machine with nothing set up yet.
echo "$(basename "$0") $*" >>"$STUB_LOG"
case "$(basename "$0") $*" in
  "minikube status"*) exit 1 ;;
  "kubectl "*" get "*) exit 1 ;;
  "openssl rand"*) echo 0123456789abcdef ;;
  "minikube docker-env"*) echo "export DOCKER_HOST=tcp://minikube.invalid:2376" ;;
  "rpk topic describe"*) exit 1 ;;
esac
exit 0
"""
SETUP_TOOLS = ("minikube", "kubectl", "dapr", "docker", "openssl")


def shellcheck(files):
    p = run([tool("shellcheck"), *SHELLCHECK, *files])
    return p.returncode, p.stdout + p.stderr


class Shellcheck(unittest.TestCase):
    def test_scripts_and_k8s(self):
        files = repo_files("scripts/*.sh", "k8s/**/*.sh")
        self.assertIn("scripts/local-setup.sh", files)
        self.assertIn("k8s/base/create-topics.sh", files)
        code, out = shellcheck(files)
        self.assertEqual(code, 0, out)

    def test_bench(self):
        files = repo_files("bench/*.sh")
        self.assertTrue(files)
        code, out = shellcheck(files)
        self.assertEqual(code, 0, out)

    def test_the_check_can_fail(self):
        with tempfile.NamedTemporaryFile("w", suffix=".sh") as f:
            f.write("#!/bin/bash\ncd $1\n")
            f.flush()
            self.assertNotEqual(shellcheck([f.name])[0], 0)


class Stubs:
    """A directory of stand-ins for the given tools, first on PATH."""

    def __init__(self, test, names, system=True):
        self.dir = tempfile.mkdtemp(prefix="todo-deploy-stubs-")
        test.addCleanup(shutil.rmtree, self.dir)
        self.log = os.path.join(self.dir, "calls.log")
        open(self.log, "w").close()
        for n in names:
            p = os.path.join(self.dir, n)
            with open(p, "w") as f:
                f.write(STUB)
            os.chmod(p, stat.S_IRWXU)
        # Without the system directories only what is linked here is found.
        if not system:
            os.symlink(shutil.which("dirname"), os.path.join(self.dir, "dirname"))
        self.env = {"PATH": self.dir + (":/usr/bin:/bin" if system else ""), "STUB_LOG": self.log,
                    "HOME": self.dir}

    def calls(self):
        with open(self.log) as f:
            return [ln.rstrip("\n") for ln in f]


class LocalSetup(unittest.TestCase):
    def setup(self, args, stubs):
        return run([tool("bash"), path("scripts/local-setup.sh"), *args], env=stubs.env, timeout=30)

    def test_names_every_missing_tool_and_changes_nothing(self):
        stubs = Stubs(self, [], system=False)
        p = self.setup([], stubs)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        for t in SETUP_TOOLS:
            self.assertRegex(p.stderr, rf"(?m)^  {t}\b.*: ", f"no explanation for missing {t}")
        self.assertEqual(stubs.calls(), [])
        only_docker_missing = Stubs(self, [t for t in SETUP_TOOLS if t != "docker"], system=False)
        p = self.setup([], only_docker_missing)
        self.assertEqual(p.returncode, 1)
        self.assertIn("missing: docker\n", p.stderr)
        self.assertEqual(only_docker_missing.calls(), [], "nothing runs before every tool is there")

    def test_checks_every_tool_it_uses(self):
        script = "\n".join(ln for ln in read("scripts/local-setup.sh").splitlines() if not ln.lstrip().startswith("#"))
        for t in ("minikube", "kubectl", "dapr", "docker", "openssl", "helm", "kind", "rpk", "psql"):
            used = any(w == t for ln in script.splitlines() if "echo" not in ln for w in ln.split())
            if used:
                self.assertIn(t, SETUP_TOOLS, f"local-setup.sh uses {t}; add it to need and to this test")

    def test_brings_the_stack_up_in_order(self):
        stubs = Stubs(self, SETUP_TOOLS)
        p = self.setup([], stubs)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        calls = stubs.calls()
        image = next(c for c in pod_spec(one(render("local"), "Deployment", APP))["containers"])["image"]

        def at(prefix):
            found = [i for i, c in enumerate(calls) if c.startswith(prefix)]
            self.assertTrue(found, f"never ran: {prefix}\n" + "\n".join(calls))
            return found[0]
        order = [at("minikube start --profile todo"), at("dapr init -k"),
                 at(f"docker build -t {image} {ROOT}"),
                 at("kubectl --context todo -n todo create secret generic todo-postgres"),
                 at("kubectl --context todo -n todo create secret generic todo-auth"),
                 at(f"kubectl --context todo apply -k {ROOT}/k8s/overlays/local"),
                 at("kubectl --context todo -n todo wait --for=condition=complete job/todo-topics"),
                 at("kubectl --context todo -n todo rollout status deployment/todo-server")]
        self.assertEqual(order, sorted(order), "\n".join(calls))
        service = one(render("local"), "Service", APP)
        self.assertIn(f"port-forward service/{service['metadata']['name']} 8080:{service['spec']['ports'][0]['port']}",
                      p.stdout)
        self.assertIn("todo-server token --user", p.stdout)

    def test_down_deletes_the_profile(self):
        stubs = Stubs(self, SETUP_TOOLS)
        p = self.setup(["--down"], stubs)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(stubs.calls(), ["minikube delete --profile todo"])
        self.assertEqual(self.setup(["--bogus"], stubs).returncode, 2)


class TopicsJob(unittest.TestCase):
    """k8s/base/create-topics.sh with the environment the todo-topics Job gives it."""

    def created(self, short, secrets):
        docs = render(short)
        job = one(docs, "Job", "todo-topics")
        c = pod_spec(job)["containers"][0]
        env = {}
        for src in c.get("envFrom", []):
            env.update(one(docs, "ConfigMap", src["configMapRef"]["name"])["data"])
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            env[e["name"]] = secrets[(ref["name"], ref["key"])] if ref else e["value"]
        volume = next(v for v in pod_spec(job)["volumes"] if v["name"] == "scripts")
        script = one(docs, "ConfigMap", volume["configMap"]["name"])["data"]["create-topics.sh"]
        stubs = Stubs(self, ["rpk"])
        env.update(PATH=stubs.env["PATH"], STUB_LOG=stubs.log)
        p = run([tool("bash"), "-c", script], env=env, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        out = {}
        for call in stubs.calls():
            w = shlex.split(call)
            if w[1:3] == ["topic", "create"]:
                opts = {w[i]: w[i + 1] for i in range(len(w) - 1) if w[i].startswith("-")}
                configs = dict(w[i + 1].split("=", 1) for i in range(len(w) - 1) if w[i] == "--topic-config")
                x = [w[i + 1] for i in range(len(w) - 1) if w[i] == "-X"]
                out[w[3]] = {"partitions": int(opts["--partitions"]), "replicas": int(opts["--replicas"]),
                             "config": configs, "x": x}
        return out

    def test_cloud_topics_are_the_strimzi_topics_over_sasl(self):
        made = self.created("cloud", {("todo-kafka", "brokers"): "seed.example:9092",
                                      ("todo-kafka", "username"): "todo", ("todo-kafka", "password"): "pw"})
        strimzi = {t["metadata"]["name"]: t["spec"] for t in find(render("strimzi"), "KafkaTopic")}
        self.assertEqual(set(made), set(strimzi))
        for name, spec in strimzi.items():
            with self.subTest(name):
                self.assertEqual(made[name]["partitions"], spec["partitions"])
                self.assertEqual(made[name]["replicas"], spec["replicas"])
                self.assertEqual(made[name]["config"]["retention.ms"], str(spec["config"]["retention.ms"]))
                self.assertEqual(made[name]["x"], ["brokers=seed.example:9092", "tls.enabled=true",
                                                   "sasl.mechanism=SCRAM-SHA-256", "user=todo", "pass=pw"])

    def test_local_topics_fit_one_broker(self):
        made = self.created("local", {})
        cloud = {t["metadata"]["name"]: t["spec"] for t in find(render("strimzi"), "KafkaTopic")}
        self.assertEqual(set(made), set(cloud))
        for name, t in made.items():
            self.assertEqual(t["replicas"], 1)
            self.assertLessEqual(t["partitions"], cloud[name]["partitions"])
            self.assertEqual(t["x"], ["brokers=redpanda:9092"])


if __name__ == "__main__":
    unittest.main()
