"""k8s/: rendering, lint, required fields, references, and agreement with the
binary (settings, port, probes, drain)."""
import copy
import os
import re
import unittest

import yaml

import live
from deploy_checks import WORKLOADS, CLUSTER_SCOPED, cpu, manifest_problems, memory, pod_spec
from deploy_support import (APP, KUSTOMIZATIONS, NAMESPACE, OVERLAYS, app_config, app_container,
                            app_deployment, find, harness, local_setup_secrets, one, read, render, repo_files,
                            run, secret_templates, seconds, setting, settings, local_only_settings, tool)

# The fields Debian bookworm's kubectl (1.20, kustomize v2.0.3) knows; a newer
# spelling (`labels`, `patches`, `envs`) renders only with a newer kubectl.
KUSTOMIZE_V2_FIELDS = {"apiVersion", "kind", "namespace", "namePrefix", "nameSuffix", "commonLabels",
                       "commonAnnotations", "resources", "bases", "crds", "configMapGenerator",
                       "secretGenerator", "generatorOptions", "patchesStrategicMerge", "patchesJson6902",
                       "images", "vars", "configurations"}
KUSTOMIZE_V2_GENERATOR_FIELDS = {"name", "behavior", "env", "files", "literals", "type"}


class Render(unittest.TestCase):
    def test_every_kustomization_renders(self):
        for short, rel in KUSTOMIZATIONS.items():
            with self.subTest(rel):
                docs = render(short)
                self.assertTrue(docs, f"{rel} rendered nothing")

    def test_kustomizations_use_only_fields_debian_kubectl_knows(self):
        texts = {f: read(f) for f in repo_files("k8s/**/kustomization.yaml")}
        heredoc = re.search(r"<<YAML\n(.*?)\nYAML\n", read("k8s/deploy.sh"), re.S)
        self.assertIsNotNone(heredoc, "k8s/deploy.sh writes its kustomization in a <<YAML heredoc")
        texts["k8s/deploy.sh"] = re.sub(r"\$\w+", "x", heredoc.group(1))
        self.assertGreaterEqual(len(texts), len(KUSTOMIZATIONS) + 1)
        for f, text in texts.items():
            k = yaml.safe_load(text)
            with self.subTest(f):
                self.assertEqual(set(k) - KUSTOMIZE_V2_FIELDS, set())
                for g in k.get("configMapGenerator", []) + k.get("secretGenerator", []):
                    self.assertEqual(set(g) - KUSTOMIZE_V2_GENERATOR_FIELDS, set(), g)

    def test_deploy_sh_applies_the_cloud_overlay_with_the_given_image(self):
        # deploy.sh runs the kubectl on PATH: the one this test renders with.
        env = dict(os.environ, PATH=os.path.dirname(tool("kubectl")) + ":" + os.environ.get("PATH", ""))
        p = run([tool("bash"), "k8s/deploy.sh", "--render", "registry.example/acme/todo-server", "0123abc"],
                env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        docs = [d for d in yaml.safe_load_all(p.stdout) if d]
        image = next(c for c in pod_spec(one(docs, "Deployment", APP))["containers"] if c["name"] == APP)["image"]
        self.assertEqual(image, "registry.example/acme/todo-server:0123abc")
        self.assertEqual(self._without_app_image(docs), self._without_app_image(render("cloud")),
                         "k8s/deploy.sh renders the cloud overlay, changing only the image")

    @staticmethod
    def _without_app_image(docs):
        docs = copy.deepcopy(docs)
        for c in pod_spec(one(docs, "Deployment", APP))["containers"]:
            c.pop("image")
        return sorted(yaml.safe_dump(d, sort_keys=True) for d in docs)


class Lint(unittest.TestCase):
    def test_yamllint(self):
        files = repo_files("k8s/**/*.yaml", "k8s/**/*.yml", ".github/**/*.yml", ".github/**/*.yaml",
                           "tests/deploy/*.yaml")
        self.assertGreater(len(files), 20)
        p = run([tool("yamllint"), "-s", "-f", "parsable", "-c", "tests/deploy/yamllint.yaml", *files])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


class Schema(unittest.TestCase):
    def all_objects(self):
        for short in KUSTOMIZATIONS:
            for d in render(short):
                yield short, d
        for f in repo_files("k8s/secrets/*.yaml"):
            for d in yaml.safe_load_all(read(f)):
                yield f, d

    def test_every_manifest_has_its_required_fields(self):
        n = 0
        for where, doc in self.all_objects():
            n += 1
            with self.subTest(f"{where}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"):
                self.assertEqual(manifest_problems(doc), [])
        self.assertGreater(n, 30)

    def test_the_check_rejects_what_it_should(self):
        base = app_deployment("cloud")
        self.assertEqual(manifest_problems(base), [])
        breakages = {
            "runAsNonRoot": lambda d: pod_spec(d)["securityContext"].pop("runAsNonRoot"),
            "readOnlyRootFilesystem": lambda d: pod_spec(d)["containers"][0]["securityContext"].update(
                readOnlyRootFilesystem=False),
            "allowPrivilegeEscalation": lambda d: pod_spec(d)["containers"][0]["securityContext"].pop(
                "allowPrivilegeEscalation"),
            "capabilities.drop": lambda d: pod_spec(d)["containers"][0]["securityContext"].pop("capabilities"),
            "readinessProbe": lambda d: pod_spec(d)["containers"][0].pop("readinessProbe"),
            "resources.limits.memory": lambda d: pod_spec(d)["containers"][0]["resources"]["limits"].pop("memory"),
            "terminationGracePeriodSeconds": lambda d: pod_spec(d).pop("terminationGracePeriodSeconds"),
            "topologySpreadConstraints": lambda d: pod_spec(d).pop("topologySpreadConstraints"),
            "dapr.io/config": lambda d: d["spec"]["template"]["metadata"]["annotations"].pop("dapr.io/config"),
            "must be a string": lambda d: d["spec"]["template"]["metadata"]["annotations"].update(
                {"dapr.io/enabled": True}),
            "image missing": lambda d: pod_spec(d)["containers"][0].pop("image"),
        }
        for expected, breakage in breakages.items():
            with self.subTest(expected):
                broken = copy.deepcopy(base)
                breakage(broken)
                problems = manifest_problems(broken)
                self.assertTrue(any(expected in p for p in problems), problems)
        self.assertTrue(manifest_problems({"apiVersion": "x/v1", "kind": "Unheard", "metadata": {"name": "a"}}))


class Consistency(unittest.TestCase):
    """Names, ports and references agree across objects, scripts and the binary."""

    def test_overlays_put_everything_in_one_namespace(self):
        self.assertIn(f"namespace={NAMESPACE}\n", read("scripts/local-setup.sh"))
        self.assertIn(f"-n {NAMESPACE} ", read("k8s/deploy.sh"))
        for short in OVERLAYS:
            docs = render(short)
            with self.subTest(short):
                self.assertEqual([d["metadata"]["name"] for d in find(docs, "Namespace")], [NAMESPACE])
                for d in docs:
                    if d["kind"] not in CLUSTER_SCOPED:
                        self.assertEqual(d["metadata"].get("namespace"), NAMESPACE, d["metadata"]["name"])
        for name, (namespace, _) in secret_templates().items():
            self.assertEqual(namespace, NAMESPACE, f"k8s/secrets template {name}")

    def test_references_resolve(self):
        templates = {n: keys for n, (_, keys) in secret_templates().items()}
        external = {"cloud": templates, "local": local_setup_secrets()}
        for short in OVERLAYS:
            docs = render(short)
            names = {(d["kind"], d["metadata"]["name"]) for d in docs}
            with self.subTest(short):
                for w in (d for d in docs if d["kind"] in WORKLOADS):
                    spec = pod_spec(w)
                    if spec.get("serviceAccountName"):
                        self.assertIn(("ServiceAccount", spec["serviceAccountName"]), names)
                    for v in spec.get("volumes", []):
                        if "configMap" in v:
                            self.assertIn(("ConfigMap", v["configMap"]["name"]), names)
                    for c in spec["containers"]:
                        for src in c.get("envFrom", []):
                            self.assertIn(("ConfigMap", src["configMapRef"]["name"]), names)
                        for e in c.get("env", []):
                            ref = e.get("valueFrom", {}).get("secretKeyRef")
                            # An optional reference may name a Secret the
                            # operator creates only when wanted (SMTP).
                            if ref and not ref.get("optional"):
                                self.assertIn(ref["key"], external[short].get(ref["name"], set()),
                                              f"{w['metadata']['name']}: Secret {ref['name']} key {ref['key']}")
                deployment = one(docs, "Deployment", APP)
                pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
                for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
                    d = one(docs, kind, APP)
                    selector = d["spec"].get("selector") or d["spec"].get("podSelector")
                    selector = selector.get("matchLabels", selector)
                    self.assertTrue(selector.items() <= pod_labels.items(), f"{kind} selects the pods")
                self.assertEqual(one(docs, "HorizontalPodAutoscaler", APP)["spec"]["scaleTargetRef"]["name"], APP)
                annotations = deployment["spec"]["template"]["metadata"]["annotations"]
                self.assertIn(("Configuration", annotations["dapr.io/config"]), names)
                component = one(docs, "Component", "statestore")
                self.assertIn(annotations["dapr.io/app-id"], component.get("scopes", []))
                for m in component["spec"]["metadata"]:
                    if "secretKeyRef" in m:
                        self.assertIn(m["secretKeyRef"]["key"], external[short][m["secretKeyRef"]["name"]])

    def test_port_agrees_with_the_binary(self):
        default = settings()["PORT"]
        self.assertEqual(read("k8s/base/config.env").count(f"PORT={default}\n"), 1)
        for short in OVERLAYS:
            with self.subTest(short):
                port = int(app_config(short)["PORT"])
                self.assertEqual(str(port), default, "the ConfigMap's PORT is the binary's default")
                c = app_container(short)
                named = {p["name"]: p["containerPort"] for p in c["ports"]}
                self.assertEqual(named.get("http"), port)
                annotations = app_deployment(short)["spec"]["template"]["metadata"]["annotations"]
                self.assertEqual(annotations["dapr.io/app-port"], str(port))
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    self.assertIn(c[probe]["httpGet"]["port"], (port, "http"))
                service = one(render(short), "Service", APP)
                for sp in service["spec"]["ports"]:
                    self.assertIn(sp["targetPort"], (port, "http"))
                for rule in one(render(short), "NetworkPolicy", APP)["spec"]["ingress"]:
                    for p in rule["ports"]:
                        self.assertTrue(p["port"] in named or isinstance(p["port"], int), p)

    def test_env_names_are_settings_of_the_binary(self):
        known = set(settings())
        for short in OVERLAYS:
            c = app_container(short)
            names = {e["name"] for e in c.get("env", [])} | set(app_config(short))
            with self.subTest(short):
                unknown = {n for n in names if n not in known and not n.startswith("KAFKA_")}
                self.assertEqual(unknown, set(), "set by the manifests but unknown to todo-server --help")
                self.assertIn("DATABASE_URL", names)
                self.assertIn("JWT_SECRET", names)
                self.assertEqual(names & local_only_settings(), set(), "settings for local and test use only")

    def test_binary_starts_with_each_overlays_settings(self):
        """The binary validates its whole configuration before it opens its
        port: reaching `listening` means every value the overlay sets parses
        (and librdkafka accepts every KAFKA_* property)."""
        closed = harness.free_port()
        values = {("todo-db", "dsn"): live.database().url, ("todo-auth", "jwt-secret"): harness.SECRET,
                  ("todo-auth", "cursor-secret"): "cursor-" + harness.SECRET,
                  ("todo-kafka", "brokers"): f"127.0.0.1:{closed}",
                  ("todo-kafka", "username"): "todo", ("todo-kafka", "password"): "secret",
                  ("todo-dapr-app-token", "token"): "app-token", ("todo-notify", "smtp-url"): "smtps://127.0.0.1:465"}
        for short in OVERLAYS:
            with self.subTest(short):
                env = dict(app_config(short))
                for e in app_container(short).get("env", []):
                    ref = e.get("valueFrom", {}).get("secretKeyRef")
                    env[e["name"]] = values[(ref["name"], ref["key"])] if ref else e["value"]
                env.update(PORT="0", BIND_ADDRESS="127.0.0.1")
                if not env.get("KAFKA_BROKERS", "").startswith("127.0.0.1"):
                    env["KAFKA_BROKERS"] = f"127.0.0.1:{closed}"  # the overlay's in-cluster name
                s = harness.Server(database_url=env["DATABASE_URL"])
                s.env = {k: v for k, v in s.env.items() if not k.startswith("KAFKA_")}
                s.env.update(env)
                self.addCleanup(s.cleanup)
                s.start(wait_ready=False)
                self.assertEqual(s.stop(), 0, s.read_log())

    def test_probes_answer_200_on_the_running_binary(self):
        paths = {}
        for short in OVERLAYS:
            c = app_container(short)
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                paths.setdefault(probe, set()).add(c[probe]["httpGet"]["path"])
        self.assertEqual(paths, {"startupProbe": {"/health"}, "livenessProbe": {"/health"},
                                 "readinessProbe": {"/ready"}})
        s = live.server()
        for p in sorted(set().union(*paths.values())):
            self.assertEqual(s.get(p).status, 200, p)
        for short in OVERLAYS:
            timeout = app_container(short)["readinessProbe"]["timeoutSeconds"]
            self.assertGreater(timeout, seconds(setting(short, "DB_CONNECT_TIMEOUT")),
                               "/ready may wait for one connection attempt")

    def test_grace_period_covers_prestop_drain_and_kafka_flush(self):
        flush = re.search(r"kafka_shutdown = std::chrono::seconds\((\d+)\)", read("src/main.cpp"))
        self.assertIsNotNone(flush, "src/main.cpp no longer bounds the Kafka flush as this test expects")
        for short in OVERLAYS:
            with self.subTest(short):
                spec = pod_spec(app_deployment(short))
                command = app_container(short)["lifecycle"]["preStop"]["exec"]["command"]
                self.assertEqual(command[0], "sleep")
                pre_stop = int(command[1])
                drain = seconds(setting(short, "DRAIN_TIMEOUT"))
                needed = pre_stop + drain + int(flush.group(1))
                self.assertGreater(spec["terminationGracePeriodSeconds"], needed)
                annotations = app_deployment(short)["spec"]["template"]["metadata"]["annotations"]
                sidecar = int(annotations["dapr.io/graceful-shutdown-seconds"])
                self.assertGreaterEqual(sidecar, pre_stop + drain, "the Dapr sidecar outlives the drain")
                self.assertLess(sidecar, spec["terminationGracePeriodSeconds"])

    def test_replicas_and_autoscaling(self):
        expected = {"local": (1, 1), "cloud": (3, None)}
        for short, (replicas, max_min) in expected.items():
            docs = render(short)
            d = one(docs, "Deployment", APP)["spec"]
            hpa = one(docs, "HorizontalPodAutoscaler", APP)["spec"]
            pdb = one(docs, "PodDisruptionBudget", APP)["spec"]
            with self.subTest(short):
                self.assertGreaterEqual(d["replicas"], replicas)
                if max_min:
                    self.assertEqual(d["replicas"], max_min)
                self.assertEqual(hpa["minReplicas"], d["replicas"], "the HPA starts where the Deployment does")
                self.assertEqual(d["strategy"]["rollingUpdate"]["maxUnavailable"], 0)
                self.assertLess(pdb.get("minAvailable", 0), d["replicas"], "a node can still be drained")

    def test_local_overlay_fits_the_minikube_that_local_setup_starts(self):
        script = read("scripts/local-setup.sh")
        cpus = int(re.search(r"MINIKUBE_CPUS:-(\d+)", script).group(1))
        mem = memory(re.search(r"MINIKUBE_MEMORY:-(\d+)g", script).group(1) + "Gi")
        want_cpu = want_mem = 0.0
        for w in (d for d in render("local") if d["kind"] in WORKLOADS):
            for c in pod_spec(w)["containers"]:
                want_cpu += cpu(c["resources"]["requests"]["cpu"])
                want_mem += memory(c["resources"]["requests"]["memory"])
            a = w["spec"]["template"]["metadata"].get("annotations", {})
            if a.get("dapr.io/enabled") == "true":
                want_cpu += cpu(a["dapr.io/sidecar-cpu-request"])
                want_mem += memory(a["dapr.io/sidecar-memory-request"])
        # Half for Kubernetes' own pods and the Dapr control plane.
        self.assertLessEqual(want_cpu, cpus / 2)
        self.assertLessEqual(want_mem, mem / 2)

    def test_local_overlay_runs_the_image_local_setup_builds(self):
        c = app_container("local")
        self.assertEqual(c["imagePullPolicy"], "Never")
        self.assertRegex(read("scripts/local-setup.sh"), rf"docker build -t {re.escape(c['image'])} ")

    def test_topics_agree(self):
        help_defaults = {n: v for n, v in settings().items() if n.startswith("KAFKA_TOPIC_")}
        strimzi = {t["metadata"]["name"]: t["spec"] for t in find(render("strimzi"), "KafkaTopic")}
        for short in OVERLAYS:
            with self.subTest(short):
                topics = {n: app_config(short)[n] for n in help_defaults}
                self.assertEqual(topics, help_defaults, "topic names are the binary's defaults")
                self.assertEqual(set(topics.values()), set(strimzi))
        local = one(render("local"), "ConfigMap", "todo-topics")["data"]
        brokers = one(render("local"), "StatefulSet", "redpanda")["spec"]["replicas"]
        self.assertLessEqual(int(local["TOPIC_REPLICAS"]), brokers)
        cloud = one(render("cloud"), "ConfigMap", "todo-topics")["data"]
        self.assertEqual(int(cloud["TOPIC_REPLICAS"]), {t["replicas"] for t in strimzi.values()}.pop())


if __name__ == "__main__":
    unittest.main()
