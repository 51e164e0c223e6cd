"""Keys and secrets end to end: RS256 key confusion against a server that
holds only a public key, and every configured or presented secret kept out
of the server's log through a run that exercises the paths most likely to
leak one (failed auth, bad requests, failing deliveries, debug logging)."""
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import uuid

from websockets.exceptions import InvalidStatusCode

from harness import BINARY, PrivateDatabase, Server, ServerTest, curl, eventually, free_port, new_user, require_environment
from test_reminders import Receiver, events, stamp
from test_websocket import Client, WsCase, upgrade_headers


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(header, claims, sign):
    """header.claims.sign(signing input) with JSON header and claims."""
    head = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    return head + "." + b64url(sign(head.encode()))


def hs256(key):
    return lambda data: hmac.new(key, data, hashlib.sha256).digest()


def rs256(key_file):
    def sign(data):
        p = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_file], input=data,
                           capture_output=True, check=True)
        return p.stdout
    return sign


def openssl(*args):
    subprocess.run(["openssl", *args], capture_output=True, check=True)


class KeyConfusion(ServerTest, WsCase):
    """JWT_PUBLIC_KEY_FILE only: the public key is public, so nothing signed
    with it as an HMAC secret, or unsigned, may pass."""

    @classmethod
    def setUpClass(cls):
        require_environment()
        cls.dir = tempfile.mkdtemp(prefix="todo-e2e-keys-")
        key = lambda name: os.path.join(cls.dir, name)
        for name in ("ours", "theirs"):
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key(f"{name}.pem"))
        openssl("pkey", "-in", key("ours.pem"), "-pubout", "-out", key("ours.pub.pem"))
        openssl("pkey", "-in", key("ours.pem"), "-pubout", "-outform", "DER", "-out", key("ours.pub.der"))
        cls.key_file, cls.attacker_file = key("ours.pem"), key("theirs.pem")
        with open(key("ours.pub.pem"), "rb") as f:
            cls.pem = f.read()
        with open(key("ours.pub.der"), "rb") as f:
            cls.der = f.read()
        server = Server(extra_env={"JWT_PUBLIC_KEY_FILE": key("ours.pub.pem"),
                                   "CURSOR_SECRET": "cursor-" + uuid.uuid4().hex + uuid.uuid4().hex})
        del server.env["JWT_SECRET"]
        cls.server = server.start()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def claims(self, **extra):
        now = int(time.time())
        return {"sub": self.user, "iat": now, "exp": now + 600, **extra}

    def setUp(self):
        super().setUp()
        self.user = new_user("rs")

    def assertAccepted(self, token):
        r = self.server.get("/api/v1/tasks", token=token)
        self.assertEqual(r.status, 200, r)

    def assertRefused(self, token):
        r = self.server.get("/api/v1/tasks", token=token)
        self.assertProblem(r, 401)
        self.assertIn("Bearer", r.headers.get("www-authenticate", ""))
        self.assertProblem(curl("GET", self.server.url("/api/v1/ws"), headers=upgrade_headers(token)), 401)
        with self.assertRaises(InvalidStatusCode) as cm:
            Client.open(self.loop, f"ws://127.0.0.1:{self.server.port}/api/v1/ws?access_token="
                        + urllib.parse.quote(token))
        self.assertEqual(cm.exception.status_code, 401)

    def test_rs256_accepted_and_the_public_key_as_hmac_secret_refused(self):
        good = jwt({"alg": "RS256", "typ": "JWT"}, self.claims(), rs256(self.key_file))
        self.assertAccepted(good)
        c = self.connect(self.server, token=good, how="query")
        self.assertTrue(c.is_open())
        head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = b64url(json.dumps(self.claims()).encode())
        for name, secret in [("PEM file bytes", self.pem), ("PEM without its last newline", self.pem.rstrip(b"\n")),
                             ("PEM with CRLF", self.pem.replace(b"\n", b"\r\n")), ("DER", self.der)]:
            for alg in ("HS256", "RS256"):
                with self.subTest(name, alg=alg):
                    self.assertRefused(jwt({"alg": alg, "typ": "JWT"}, self.claims(), hs256(secret)))
        # No HS256 at all on this server, not even with a secret it never had.
        self.assertRefused(f"{head}.{body}.{b64url(hs256(b'')(f'{head}.{body}'.encode()))}")

    def test_alg_none_and_foreign_keys_refused(self):
        body = b64url(json.dumps(self.claims()).encode())
        for alg in ("none", "None", "NONE"):
            with self.subTest(alg):
                head = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
                self.assertRefused(f"{head}.{body}.")
                self.assertRefused(f"{head}.{body}.{b64url(b'x' * 256)}")
        # Signed by another key, which the token names or carries: never used.
        for extra in [{"kid": "theirs"}, {"jku": "https://attacker.example/jwks.json"},
                      {"jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}, {"x5u": "https://attacker.example/c.pem"}]:
            with self.subTest(header=extra):
                self.assertRefused(jwt({"alg": "RS256", **extra}, self.claims(), rs256(self.attacker_file)))
        # A kid is ignored, not trusted: our key's signature still counts.
        self.assertAccepted(jwt({"alg": "RS256", "kid": "anything"}, self.claims(), rs256(self.key_file)))

    def test_exp_and_nbf_with_rs256(self):
        now = int(time.time())
        sign = rs256(self.key_file)
        for name, claims in [("expired", {"exp": now - 120}), ("no exp", {"exp": None}),
                             ("not yet valid", {"nbf": now + 300}), ("empty sub", {"sub": ""}),
                             ("sub too long", {"sub": "x" * 129}), ("exp not a number", {"exp": str(now + 600)})]:
            with self.subTest(name):
                c = self.claims(**claims)
                c = {k: v for k, v in c.items() if v is not None}
                self.assertRefused(jwt({"alg": "RS256"}, c, sign))
        self.assertAccepted(jwt({"alg": "RS256"}, self.claims(exp=now - 30, nbf=now + 30), sign))


class SecretsStayOutOfTheLog(WsCase):
    """Known secrets in, a representative run, then the whole log (stdout and
    stderr) searched for each of them."""

    def test_no_secret_appears_in_the_log(self):
        from test_sidecar import Sidecar

        tag = uuid.uuid4().hex
        secrets = {
            "JWT_SECRET": f"jwt-secret-{tag}-0123456789",
            "CURSOR_SECRET": f"cursor-secret-{tag}-0123456789",
            "APP_API_TOKEN": f"app-api-token-{tag}",
            "DAPR_API_TOKEN": f"dapr-api-token-{tag}",
            "SMTP password": f"smtp-pass-{tag}",
            "database password": f"db-pass-{tag}",
            "webhook secret": f"webhook-secret-{tag}",
            "webhook URL token": f"hook-token-{tag}",
            "wrong app token": f"wrong-app-token-{tag}",
            "secret in a refused body": f"body-secret-{tag}",
            "password in a refused webhook URL": f"url-pass-{tag}",
        }
        db = PrivateDatabase().create()
        self.addCleanup(db.cleanup)
        app_port, sidecar_port, smtp_port = free_port(), free_port(), free_port()  # nothing listens on smtp_port
        sidecar = Sidecar(["--port", str(sidecar_port), "--app-port", str(app_port),
                           "--app-token", secrets["APP_API_TOKEN"], "--api-token", secrets["DAPR_API_TOKEN"],
                           "--pg-dsn", db.url]).start()
        self.addCleanup(sidecar.cleanup)
        url = urllib.parse.urlsplit(db.url)
        db_url = url._replace(netloc=f"{url.username}:{secrets['database password']}@{url.hostname}:{url.port}")
        server = Server(database_url=db_url.geturl(), extra_env={
            "PORT": str(app_port), "LOG_LEVEL": "debug",
            "JWT_SECRET": secrets["JWT_SECRET"], "CURSOR_SECRET": secrets["CURSOR_SECRET"],
            "APP_API_TOKEN": secrets["APP_API_TOKEN"], "DAPR_API_TOKEN": secrets["DAPR_API_TOKEN"],
            "DAPR_HTTP_PORT": str(sidecar_port),
            "SMTP_URL": f"smtp://todo:{secrets['SMTP password']}@127.0.0.1:{smtp_port}",
            "WEBHOOK_ALLOW_INSECURE": "true", "REMINDER_RETRY_BASE": "100ms", "REMINDER_MAX_ATTEMPTS": "2"})
        # Tokens signed with this run's JWT_SECRET, so the harness's cache of tokens is no use.
        server.token = lambda user, ttl="1h": mint(secrets["JWT_SECRET"], user, int(time.time()) + 3600)
        server.start()
        self.addCleanup(server.cleanup)

        u = new_user("secrets")
        token = server.token(u)
        expired = mint(secrets["JWT_SECRET"], u, int(time.time()) - 3600)
        forged = mint("not-the-secret-" + tag, u, int(time.time()) + 3600)
        tokens = {"bearer token": token, "expired token": expired, "forged token": forged}

        rx = Receiver(failures=1)
        self.addCleanup(rx.close)
        hook = f"{rx.url}?token={secrets['webhook URL token']}"
        r = server.patch("/api/v1/settings", {"webhook_url": hook, "webhook_secret": secrets["webhook secret"],
                                              "email": f"{u}@example.test"}, token=token)
        self.assertEqual(r.status, 200, r)
        # Refused requests carrying secrets: bad credentials, bad bodies.
        for bad in (expired, forged, "not-a-jwt-" + tag):
            self.assertEqual(server.get("/api/v1/tasks", token=bad).status, 401)
            self.assertEqual(server.get(f"/api/v1/tasks?access_token={urllib.parse.quote(bad)}").status, 401)
            with self.assertRaises(InvalidStatusCode):
                Client.open(self.loop, f"ws://127.0.0.1:{server.port}/api/v1/ws?access_token={bad}")
        self.assertEqual(server.post("/api/v1/tasks", raw_body='{"title": "' + secrets["secret in a refused body"],
                                     token=token).status, 400)
        self.assertEqual(server.post("/api/v1/tasks", {"title": "", "description": secrets["secret in a refused body"],
                                                       "nope": 1}, token=token).status, 422)
        bad_hook = f"https://u:{secrets['password in a refused webhook URL']}@example.com/"
        self.assertEqual(server.patch("/api/v1/settings", {"webhook_url": bad_hook}, token=token).status, 422)
        self.assertEqual(server.post("/job/r-x", {}, headers={"dapr-api-token": secrets["wrong app token"]}).status,
                         401)
        self.assertEqual(server.get(f"/api/v1/tasks?cursor={secrets['CURSOR_SECRET']}", token=token).status, 400)
        # Accepted ones: the WebSocket with the token in its URL, a reminder
        # fired by the sidecar (APP_API_TOKEN, DAPR_API_TOKEN), a webhook
        # that fails once, a mail that cannot be sent.
        ws = self.connect(server, token=token, how="query")
        t = server.post("/api/v1/tasks", {"title": "remind me", "reminders": [{"at": stamp(1)}]}, token=token)
        self.assertEqual(t.status, 201, t)
        eventually(lambda: [e for e in ws.events() if e["type"] == "com.todo.reminder.due"], 20,
                   what="the reminder on the WebSocket")
        eventually(lambda: events(server, u, "com.todo.reminder.sent"), 20, what="the webhook sent")
        eventually(lambda: events(server, u, "com.todo.reminder.failed"), 20, what="the mail dead-lettered")
        self.assertEqual(len(rx.requests), 2)
        self.assertEqual(server.stop(), 0)

        log = server.read_log()
        lines = server.log_lines()
        # The run took the paths it meant to: debug lines, refusals, both deliveries.
        self.assertTrue(any(line.get("level") == "debug" for line in lines), "LOG_LEVEL=debug took effect")
        statuses = {line.get("status") for line in lines if line.get("msg") == "request"}
        self.assertLessEqual({200, 201, 400, 401, 422}, statuses)
        for name, value in {**secrets, **tokens}.items():
            with self.subTest(name):
                self.assertNotIn(value, log)
        # Nor a token's signature alone, nor the secret URL-encoded.
        for name, value in tokens.items():
            with self.subTest(name, part="signature"):
                self.assertNotIn(value.rsplit(".", 1)[1], log)
        self.assertNotIn(urllib.parse.quote(secrets["webhook URL token"]), log)


class SecretsInFailedStarts(unittest.TestCase):
    """The start-up paths: a refused configuration and an unreachable
    database name the variable or the host, never the secret."""

    def test_refused_configuration_names_the_variable_not_the_value(self):
        require_environment()
        tag = uuid.uuid4().hex[:12]
        env = {"PATH": os.environ.get("PATH", ""), "DATABASE_URL": "postgresql://todo@127.0.0.1:1/todo",
               "JWT_SECRET": f"short-{tag}", "CURSOR_SECRET": f"cursor-{tag}",
               "SMTP_URL": f"http://todo:smtp-{tag}@127.0.0.1:25", "KAFKA_SASL_MECHANISMS": f"nope-{tag}",
               "APP_API_TOKEN": f"app-{tag}"}
        p = subprocess.run([BINARY], env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2, p)
        out = p.stdout + p.stderr
        for variable in ("JWT_SECRET", "CURSOR_SECRET", "SMTP_URL"):
            self.assertIn(f"todo-server: {variable}: ", out)
        for value in (f"short-{tag}", f"cursor-{tag}", f"smtp-{tag}", f"app-{tag}"):
            self.assertNotIn(value, out)

    def test_an_unreachable_database_is_logged_without_its_password(self):
        require_environment()
        password = "db-pass-" + uuid.uuid4().hex
        server = Server(database_url=f"postgresql://todo:{password}@127.0.0.1:{free_port()}/todo",
                        extra_env={"LOG_LEVEL": "debug"})
        server.start(wait_ready=False)
        self.addCleanup(server.cleanup)
        eventually(lambda: [line for line in server.log_lines() if line.get("msg") == "migrations not applied yet; retrying"],
                   10, what="a failed connection logged")
        self.assertEqual(server.get("/ready").status, 503)
        self.assertEqual(server.stop(), 0)
        self.assertNotIn(password, server.read_log())


SOURCE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
# An operand named like a secret or a MAC (not its size), compared with == or !=.
SECRET_NAME = (r"(?<![\w.>])[*]?(?:\w+(?:\.|->))*\w*?(?:token|secret|signature|sig|mac|hmac|password|digest)s?\b"
               r"(?!\s*(?:\.|->)\s*(?:size|empty|length|data)\s*\()(?!\s*\()")
PLAIN_COMPARE = re.compile(rf"{SECRET_NAME}\s*[!=]=|[!=]=\s*{SECRET_NAME}")
EARLY_EXIT = re.compile(r"(?<!CRYPTO_)\bmemcmp\s*\(|\bstrn?cmp\s*\(|\bstd::equal\s*\(|\bbcmp\s*\(")


def early_exit_comparisons(lines):
    return [line for line in lines if PLAIN_COMPARE.search(line.split("//", 1)[0])
            or EARLY_EXIT.search(line.split("//", 1)[0])]


class ConstantTimeComparisons(unittest.TestCase):
    """Tokens, signatures and MACs are compared with crypto::equal or
    CRYPTO_memcmp, never ==, memcmp or strcmp, which stop at the first
    differing byte."""

    def test_the_check_finds_what_it_looks_for(self):
        bad = ["if (token == cfg.app_api_token) {", "if (*token != expected_token)", "return sig == expected;",
               "if (memcmp(a, b, n) == 0)", "std::strcmp(mac, other)", "if (x == m->dapr.app_api_token)"]
        fine = ["if (signature->size() != mac->size())", "if (h.name == \"x\")",
                "CRYPTO_memcmp(a, b, n) != 0", "crypto::equal(*token, expected)", "if (s != shape_digest(f, user))"]
        self.assertEqual(early_exit_comparisons(bad), bad)
        self.assertEqual(early_exit_comparisons(fine), [])

    def test_no_secret_is_compared_with_an_early_exit(self):
        found = []
        for base in ("src", "include", "modules"):
            for d, _, files in os.walk(os.path.join(SOURCE, base)):
                for f in sorted(files):
                    if f.endswith((".cpp", ".hpp")):
                        with open(os.path.join(d, f), encoding="utf-8") as src:
                            found += [f"{os.path.relpath(os.path.join(d, f), SOURCE)}: {line.strip()}"
                                      for line in early_exit_comparisons(src)]
        self.assertEqual(found, [], "use todo::crypto::equal for secrets and MACs")


def mint(secret, user, exp):
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": user, "iat": int(time.time()), "exp": exp}).encode())
    return f"{head}.{body}.{b64url(hs256(secret.encode())(f'{head}.{body}'.encode()))}"


if __name__ == "__main__":
    unittest.main()
