""".github/workflows: actionlint, the shell in every `run:`, and what CI and
CD do: test every push and pull request; push the image tagged by commit and
deploy exactly that tag."""
import os
import re
import shlex
import tempfile
import unittest

import yaml

from deploy_support import actionlint, read, repo_files, run, tool

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
SENSITIVE = re.compile(r"pass|token|secret|key|kubeconfig|username|credential", re.I)


def workflows():
    return {f: yaml.safe_load(read(f)) for f in repo_files(".github/workflows/*.yml", ".github/workflows/*.yaml")}


def triggers(wf):
    return wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true


def steps(wf):
    for job_id, job in wf["jobs"].items():
        for s in job.get("steps", []):
            yield job_id, s


def resolve(value, wf, job_id):
    """An expression string with step and job outputs substituted, down to the
    contexts they come from (github.*, secrets.*, vars.*)."""
    def sub(m):
        e = m.group(1)
        so = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", e)
        if so:
            return resolve(step_output(wf, job_id, so.group(1), so.group(2)), wf, job_id)
        jo = re.fullmatch(r"needs\.([\w-]+)\.outputs\.([\w-]+)", e)
        if jo:
            return resolve(wf["jobs"][jo.group(1)]["outputs"][jo.group(2)], wf, jo.group(1))
        return "${{ " + e + " }}"
    return EXPR.sub(sub, str(value))


def step_output(wf, job_id, step_id, key):
    step = next(s for s in wf["jobs"][job_id]["steps"] if s.get("id") == step_id)
    m = re.search(rf'echo "{key}=([^"]*)"', step["run"])
    if not m or '>>"$GITHUB_OUTPUT"' not in step["run"]:
        raise AssertionError(f"step {step_id} does not write output {key}")
    env = step.get("env", {})
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda v: env.get(v.group(1) or v.group(2), v.group(0)), m.group(1))


class Workflows(unittest.TestCase):
    def test_actionlint(self):
        files = list(workflows())
        self.assertGreaterEqual(len(files), 2)
        for pattern in sorted({"." + f.rsplit(".", 1)[1] for f in files}):
            p = run([*actionlint(), f".github/workflows/*{pattern}"])
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            checked = int(re.search(r"Checking (\d+) workflow", p.stdout).group(1))
            self.assertEqual(checked, sum(f.endswith(pattern) for f in files), p.stdout)

    def test_every_run_block_passes_shellcheck(self):
        work = tempfile.mkdtemp(prefix="todo-deploy-run-")
        self.addCleanup(lambda: [os.unlink(os.path.join(work, f)) for f in os.listdir(work)] and os.rmdir(work))
        scripts = []
        for f, wf in workflows().items():
            for job_id, s in steps(wf):
                if "run" in s:
                    name = os.path.join(work, f"{len(scripts)}.sh")
                    with open(name, "w") as out:
                        # GitHub runs `bash -e {0}`; expressions are replaced before.
                        out.write("#!/usr/bin/env bash\nset -e\n" + EXPR.sub("expr", s["run"]))
                    scripts.append((f"{f} {job_id}: {s.get('name', s['run'][:40])}", name))
        self.assertGreater(len(scripts), 3)
        for where, name in scripts:
            with self.subTest(where):
                p = run([tool("shellcheck"), name])
                self.assertEqual(p.returncode, 0, p.stdout)

    def test_ci_runs_every_test_on_every_push_and_pull_request(self):
        wf = yaml.safe_load(read(".github/workflows/ci.yml"))
        on = triggers(wf)
        self.assertIn("push", on)
        self.assertIn("pull_request", on)
        for event in ("push", "pull_request"):
            self.assertFalse((on[event] or {}).get("branches") or (on[event] or {}).get("paths"),
                             f"{event} is not narrowed")
        runs = [s["run"] for _, s in steps(wf) if "run" in s]
        self.assertTrue(any(re.search(r"(^|\s)\./scripts/test\.sh\b", r) for r in runs))
        images = {j.get("container", {}).get("image") for j in wf["jobs"].values()}
        base = re.search(r"^FROM (debian:\w+)", read("Dockerfile"), re.M).group(1)
        self.assertIn(base, images, "CI tests on the Debian release the image is built on")

    def test_cd_deploys_the_commit_tag_it_pushed(self):
        wf = yaml.safe_load(read(".github/workflows/cd.yml"))
        ci_name = yaml.safe_load(read(".github/workflows/ci.yml"))["name"]
        on = triggers(wf)
        if "workflow_run" in on:
            self.assertEqual(on["workflow_run"]["workflows"], [ci_name])
            self.assertEqual(on["workflow_run"]["branches"], ["main"])
            commit = "${{ github.event.workflow_run.head_sha }}"
            for job in wf["jobs"].values():
                if "needs" not in job:
                    self.assertIn("workflow_run.conclusion == 'success'", job.get("if", ""))
        else:
            self.assertEqual(on["push"]["branches"], ["main"])
            commit = "${{ github.sha }}"
        for job_id, s in steps(wf):
            if s.get("uses", "").startswith("actions/checkout@") and commit != "${{ github.sha }}":
                self.assertEqual(s.get("with", {}).get("ref"), commit, f"{job_id} checks out the tested commit")
        pushes = [(j, s) for j, s in steps(wf) if s.get("uses", "").startswith("docker/build-push-action@")]
        self.assertEqual(len(pushes), 1)
        job_id, push = pushes[0]
        self.assertIs(push["with"]["push"], True)
        tags = resolve(push["with"]["tags"], wf, job_id)
        self.assertTrue(tags.endswith(":" + commit), tags)
        pushed_image = tags[: -len(commit) - 1]
        deploys = [(j, s) for j, s in steps(wf) if "k8s/deploy.sh" in s.get("run", "")]
        self.assertEqual(len(deploys), 1)
        job_id, deploy = deploys[0]
        line = next(ln for ln in deploy["run"].splitlines() if "k8s/deploy.sh" in ln)
        args = shlex.split(line)[1:]
        self.assertEqual(len(args), 2, "k8s/deploy.sh IMAGE TAG")
        env = deploy.get("env", {})
        image, tag = (resolve(env[re.fullmatch(r"\$\{?(\w+)\}?", a).group(1)], wf, job_id) for a in args)
        self.assertEqual(image, pushed_image)
        self.assertEqual(tag, commit)

    def test_secrets_are_referenced_by_name_only(self):
        for f, wf in workflows().items():
            places = [(f"{f} {j}", s.get("with", {})) for j, s in steps(wf)]
            places += [(f"{f} {j} env", s.get("env", {})) for j, s in steps(wf)]
            places += [(f"{f} {j} job env", job.get("env", {})) for j, job in wf["jobs"].items()]
            for where, mapping in places:
                for key, value in mapping.items():
                    if SENSITIVE.search(key):
                        with self.subTest(f"{where}: {key}"):
                            self.assertRegex(str(value), r"^\$\{\{ secrets\.[A-Z][A-Z0-9_]* \}\}$")


if __name__ == "__main__":
    unittest.main()
