"""Finding tasks end to end: filters, search, sort, keyset pages, tags and
settings.

The property tests create random task sets through the API, then compare the
pages of random queries, concatenated, with the same selection and order
computed here in Python from the tasks as the API returned them: an oracle
that shares no code or SQL with the server.
"""
import concurrent.futures
import datetime as dt
import http.client
import json
import random
import threading
import unittest
import urllib.parse

from harness import Server, ServerTest, new_user, require_environment

PRIORITIES = ["none", "low", "medium", "high", "urgent"]
# Words with and without non-ASCII letters, upper and lower case; the search
# lower-cases both sides.
WORDS = ["plants", "plan", "planet", "report", "garden", "Garten", "grüße", "Grünkohl", "café", "caffè",
         "naïve", "Ærø", "öl", "taxes", "tax", "call", "übung", "Straße", "zebra", "apple"]
TAGS = ["home", "work", "errand", "weekly", "garden", "urgent"]
NOW = dt.datetime.now(dt.timezone.utc)
KEYS = ["due_at", "priority", "created_at", "updated_at", "title"]


class Client:
    """A keep-alive HTTP/1.1 client for one user (the stdlib's, not ours)."""

    def __init__(self, server, user):
        self.server = server
        self.auth = {"Authorization": f"Bearer {server.token(user)}"}
        self.local = threading.local()
        self.opened = []

    def conn(self):
        if getattr(self.local, "c", None) is None:
            self.local.c = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
            self.opened.append(self.local.c)
        return self.local.c

    def close(self):
        for c in self.opened:
            c.close()

    def request(self, method, path, body=None):
        headers = dict(self.auth)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                c = self.conn()
                c.request(method, path, body=data, headers=headers)
                r = c.getresponse()
                return r.status, json.loads(r.read() or b"null")
            except (http.client.HTTPException, ConnectionError):
                self.local.c = None  # the server closed a kept-alive connection
                if attempt:
                    raise

    def get(self, path, params):
        return self.request("GET", path + "?" + urllib.parse.urlencode(params))

    def walk(self, params, limit):
        """Every page of a listing, concatenated; asserts each page's size."""
        out, cursor, pages = [], None, 0
        while True:
            p = list(params) + [("limit", str(limit))] + ([("cursor", cursor)] if cursor else [])
            status, body = self.get("/api/v1/tasks", p)
            assert status == 200, (params, body)
            assert len(body["items"]) <= limit
            out += body["items"]
            cursor = body["next_cursor"]
            pages += 1
            assert pages < 500, "the walk does not end"
            if cursor is None:
                return out
            assert len(body["items"]) == limit, "a page short of the limit is the last one"


def parse_time(s):
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")) if s else None


def random_task(rng):
    due = None
    if rng.random() < 0.75:
        # Whole hours from a small range: many ties, and none near now.
        due = (NOW.replace(minute=0, second=0, microsecond=0) +
               dt.timedelta(hours=rng.choice([-400, -300, -48, -2, 3, 26, 27, 200, 300])))
    return {
        "title": " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3))) + rng.choice(["", " x", " y"]),
        "description": " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 2))),
        "priority": rng.choice(PRIORITIES),
        "tags": rng.sample(TAGS, rng.randint(0, 3)),
        "due_at": due.strftime("%Y-%m-%dT%H:%M:%SZ") if due else None,
    }


def random_query(rng):
    """Random parameters, as a list of pairs, for the API and the oracle."""
    p = []
    if rng.random() < 0.6:
        p.append(("status", rng.choice(["open", "completed", "all"])))
    if rng.random() < 0.3:
        p.append(("priority", ",".join(rng.sample(PRIORITIES, rng.randint(1, 3)))))
    for t in rng.sample(TAGS, rng.choice([0, 0, 1, 2])):
        p.append(("tag", t))
    if rng.random() < 0.2:
        p.append(("any_tag", ",".join(rng.sample(TAGS, rng.randint(1, 3)))))
    if rng.random() < 0.25:
        lo = NOW + dt.timedelta(hours=rng.choice([-350, -10, 0, 24]))
        p.append(("due_after", lo.strftime("%Y-%m-%dT%H:%M:%SZ")))
        if rng.random() < 0.5:
            p.append(("due_before", (lo + dt.timedelta(hours=rng.choice([1, 30, 500]))).strftime("%Y-%m-%dT%H:%M:%S+00:00")))
    if rng.random() < 0.15 and ("status", "completed") not in p:
        p.append(("overdue", rng.choice(["true", "false"])))
    if rng.random() < 0.3:
        word = rng.choice(WORDS).lower()
        p.append(("q", word[:rng.randint(2, len(word))] + rng.choice(["", "", " " + rng.choice(WORDS)[:3]])))
    if rng.random() < 0.8:
        keys = rng.sample(KEYS, rng.randint(1, 3))
        p.append(("sort", ",".join(("-" if rng.random() < 0.5 else "") + k for k in keys)))
    return p


def oracle(tasks, params):
    """The tasks the query selects, in its order (or a set when ranked)."""
    d = {}
    tags_all = []
    for k, v in params:
        if k == "tag":
            tags_all.append(v)
        else:
            d[k] = v
    status = d.get("status", "open")
    out = []
    for t in tasks:
        due = parse_time(t["due_at"])
        if status == "open" and t["completed"] or status == "completed" and not t["completed"]:
            continue
        if "priority" in d and t["priority"] not in d["priority"].split(","):
            continue
        if not set(tags_all) <= set(t["tags"]):
            continue
        if "any_tag" in d and not set(d["any_tag"].split(",")) & set(t["tags"]):
            continue
        if "due_after" in d and (due is None or due < parse_time(d["due_after"])):
            continue
        if "due_before" in d and (due is None or due >= parse_time(d["due_before"])):
            continue
        if d.get("overdue") == "true" and (t["completed"] or due is None or due >= NOW):
            continue
        if d.get("overdue") == "false" and not t["completed"] and due is not None and due < NOW:
            continue
        if "q" in d:
            words = (t["title"] + " " + t["description"]).lower().split() + t["tags"]
            if not all(any(w.startswith(q) for w in words) for q in d["q"].lower().split()):
                continue
        out.append(t)
    if "sort" not in d:
        if "q" in d:
            return None, out
        return sorted(out, key=lambda t: t["id"]), out
    for term in reversed(d["sort"].split(",") + ["id"]):
        desc = term.startswith("-")
        key = term.lstrip("-")
        if key == "due_at":
            # Without due_at last, whichever the direction.
            present = [t for t in out if t["due_at"]]
            absent = [t for t in out if not t["due_at"]]
            present.sort(key=lambda t: parse_time(t["due_at"]), reverse=desc)
            out = present + absent
        elif key == "priority":
            out.sort(key=lambda t: PRIORITIES.index(t["priority"]), reverse=desc)
        elif key == "title":
            out.sort(key=lambda t: t["title"].encode(), reverse=desc)  # C collation: byte order
        elif key == "id":
            out.sort(key=lambda t: t["id"])
        else:
            out.sort(key=lambda t: parse_time(t[key]), reverse=desc)
    return out, out


class ListingProperties(ServerTest):
    @classmethod
    def setUpClass(cls):
        require_environment()
        # Thousands of pages for a few users: the per-user rate limit is not under test.
        cls.server = Server(extra_env={"RATE_LIMIT": "0"}).start()

    def populate(self, rng, n):
        user = new_user("list")
        c = Client(self.server, user)
        self.addCleanup(c.close)
        tasks = []
        for _ in range(n):
            status, t = c.request("POST", "/api/v1/tasks", random_task(rng))
            self.assertEqual(status, 201, t)
            tasks.append(t)
        for t in rng.sample(tasks, n // 3):
            status, body = c.request("POST", f"/api/v1/tasks/{t['id']}/complete")
            self.assertEqual(status, 200, body)
        for t in rng.sample(tasks, n // 4):
            status, body = c.request("PATCH", f"/api/v1/tasks/{t['id']}", {"description": rng.choice(WORDS)})
            self.assertEqual(status, 200, body)
        status, body = c.get("/api/v1/tasks", [("status", "all"), ("limit", "200")])
        self.assertEqual(status, 200)
        return c, body["items"]

    def test_random_queries_match_an_independent_selection(self):
        rng = random.Random(20261201)
        c, tasks = self.populate(rng, 120)
        self.assertEqual(len(tasks), 120)
        checked = 0
        for i in range(150):
            params = random_query(rng)
            limit = rng.choice([1, 3, 7, 50])
            got = c.walk(params, limit)
            ordered, selected = oracle(tasks, params)
            ids = [t["id"] for t in got]
            with self.subTest(i=i, params=params, limit=limit):
                self.assertEqual(len(ids), len(set(ids)), "a task appeared twice")
                if ordered is None:
                    self.assertEqual(set(ids), {t["id"] for t in selected})
                else:
                    self.assertEqual(ids, [t["id"] for t in ordered])
                    self.assertEqual(got, ordered, "items are the tasks as they are")
            checked += len(ids)
        self.assertGreater(checked, 500, "the queries selected something")

    def test_every_sort_combination_walks_every_task_once(self):
        rng = random.Random(7)
        c, tasks = self.populate(rng, 40)
        for a in KEYS:
            for b in KEYS + [None]:
                if a == b:
                    continue
                sort = [("-" if rng.random() < 0.5 else "") + a] + ([("-" if rng.random() < 0.5 else "") + b] if b else [])
                params = [("status", "all"), ("sort", ",".join(sort))]
                with self.subTest(sort=sort):
                    got = [t["id"] for t in c.walk(params, 3)]
                    self.assertEqual(got, [t["id"] for t in oracle(tasks, params)[0]])

    def test_ranked_search_walks_every_match_once(self):
        rng = random.Random(99)
        c, tasks = self.populate(rng, 60)
        for q in ["pla", "gar", "grü", "stra", "ca"]:
            params = [("status", "all"), ("q", q)]
            got = [t["id"] for t in c.walk(params, 2)]
            _, selected = oracle(tasks, params)
            self.assertEqual(len(got), len(set(got)))
            self.assertEqual(set(got), {t["id"] for t in selected}, q)
            self.assertTrue(selected, f"the fixture has matches for {q}")

    def test_concurrent_writes_during_a_walk(self):
        rng = random.Random(5)
        c, tasks = self.populate(rng, 60)
        original = {t["id"] for t in tasks if not t["completed"]}
        stop = threading.Event()
        writer = c  # one connection per thread
        created = []

        def write():
            wr = random.Random(6)
            while not stop.is_set():
                status, t = writer.request("POST", "/api/v1/tasks", random_task(wr))
                assert status == 201, t
                created.append(t["id"])
                victim = wr.choice(tasks)
                status, _ = writer.request("PATCH", f"/api/v1/tasks/{victim['id']}",
                                           {"description": "changed " + str(wr.random())})
                assert status == 200

        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            writing = ex.submit(write)
            try:
                for sort in ["-priority,due_at", "due_at", "title", None]:
                    params = [("sort", sort)] if sort else []
                    got = [t["id"] for t in c.walk(params, 4)]
                    self.assertEqual(len(got), len(set(got)), f"a task appeared twice ({sort})")
                    self.assertLessEqual(original, set(got), f"a task present all along was skipped ({sort})")
            finally:
                stop.set()
                writing.result()
        self.assertTrue(created, "writes ran during the walks")


class ListingErrors(ServerTest):
    def test_every_bad_parameter_is_a_400_naming_it(self):
        u = new_user()
        self.create(u)
        cases = [
            ("status=done", "status"), ("priority=high,urgentish", "priority"), ("priority=", "priority"),
            ("tag=has%20space", "tag"), ("tag=" + "a" * 51, "tag"), ("any_tag=ok,bad!", "any_tag"),
            ("due_before=tomorrow", "due_before"), ("due_after=2026-03-01", "due_after"),
            ("due_after=2026-03-02T00:00:00Z&due_before=2026-03-01T00:00:00Z", "due_after"),
            ("overdue=yes", "overdue"), ("overdue=true&status=completed", "overdue"),
            ("q=", "q"), ("q=%20%20", "q"), ("q=" + "x" * 501, "q"), ("q=" + "+".join(["w"] * 17), "q"),
            ("q=%FF%FE", "q"), ("q=a%00b", "q"),
            ("sort=colour", "sort"), ("sort=-", "sort"), ("sort=due_at,due_at", "sort"),
            ("sort=due_at,,title", "sort"), ("sort=a,b,c,d,e,f", "sort"),
            ("limit=0", "limit"), ("limit=201", "limit"), ("limit=ten", "limit"), ("limit=5.0", "limit"),
            ("cursor=garbage", "cursor"), ("cursor=", "cursor"), ("colour=red", "colour"),
            ("status=open&status=all", "status"),
        ]
        for query, field in cases:
            with self.subTest(query=query[:60]):
                p = self.assertProblem(self.server.get(f"/api/v1/tasks?{query}", user=u), 400)
                self.assertEqual(p["errors"][0]["field"], field, p)
                self.assertTrue(p["detail"].startswith(field + ": "), p)

    def test_cursors_are_tamper_evident_and_bound_to_query_and_user(self):
        u, other = new_user(), new_user()
        for i in range(3):
            self.create(u, {"title": f"t{i}", "priority": "high"})
        page = self.server.get("/api/v1/tasks?limit=1&sort=-priority", user=u).json()
        cursor = page["next_cursor"]
        self.assertIsNotNone(cursor)
        ok = self.server.get(f"/api/v1/tasks?limit=1&sort=-priority&cursor={cursor}", user=u)
        self.assertEqual(ok.status, 200, ok)
        flipped = []
        for i in range(0, len(cursor), 7):
            ch = "A" if cursor[i] != "A" else "B"
            flipped.append(cursor[:i] + ch + cursor[i + 1:])
        for bad in flipped + [cursor[:-1], cursor + "A", cursor.split(".")[0], "." + cursor]:
            self.assertProblem(self.server.get(f"/api/v1/tasks?limit=1&sort=-priority&cursor={bad}", user=u),
                               400, "cursor")
        # Another query's or another user's cursor is refused, not reinterpreted.
        self.assertProblem(self.server.get(f"/api/v1/tasks?limit=1&sort=priority&cursor={cursor}", user=u), 400,
                           "cursor")
        self.assertProblem(self.server.get(f"/api/v1/tasks?limit=1&sort=-priority&cursor={cursor}", user=other),
                           400, "cursor")
        # The limit is not part of the query: a client may change it mid-walk.
        r = self.server.get(f"/api/v1/tasks?limit=5&sort=-priority&cursor={cursor}", user=u)
        self.assertEqual(len(r.json()["items"]), 2)

    def test_any_search_text_is_a_result_or_a_400(self):
        u = new_user()
        self.create(u, {"title": "it's a plan: don't panic & (carry) a towel!"})
        texts = ["'", "''", "\\", "a & b", "a | b", "!a", "a:*", "(a", ")", "<->", "plan:*", "don't",
                 "🙂", "🙂 plan", "a' | 'b", "&&&", "*", ":", "-", "\"plan\"", "plan -panic", "x" * 500,
                 "ñ", "\u200b", "%", "_"]
        for q in texts:
            with self.subTest(q=q[:20]):
                r = self.server.get("/api/v1/tasks?" + urllib.parse.urlencode({"q": q}), user=u)
                self.assertIn(r.status, (200, 400), r)
                if r.status == 400:
                    self.assertProblem(r, 400, "q")
        big = "plan " * 2048  # 10 KB
        self.assertProblem(self.server.get("/api/v1/tasks?" + urllib.parse.urlencode({"q": big}), user=u), 400, "q")
        found = self.server.get("/api/v1/tasks?" + urllib.parse.urlencode({"q": "don't"}), user=u).json()["items"]
        self.assertEqual(len(found), 1, "punctuation is not an operator")


class SearchText(ServerTest):
    def test_prefixes_across_scripts_and_cases(self):
        u = new_user()
        titles = {
            "plants": "Water the plants",
            "de": "Grüße an die Großmutter",
            "fr": "Réserver le café",
            "ja": "日本語の勉強",
            "ru": "Купить молоко",
            "el": "Αγορά ψωμιού",
            "emoji": "Party 🎉 prep",
        }
        ids = {k: self.create(u, {"title": v})["id"] for k, v in titles.items()}
        self.create(u, {"title": "untagged", "tags": ["gardening"], "description": "Pflanzen gießen"})

        def search(q):
            r = self.server.get("/api/v1/tasks?" + urllib.parse.urlencode({"q": q}), user=u)
            self.assertEqual(r.status, 200, r)
            return {t["id"] for t in r.json()["items"]}

        self.assertEqual(search("plan"), {ids["plants"]}, "a word prefix finds the word")
        self.assertEqual(search("PLANTS water"), {ids["plants"]}, "all words, any case")
        self.assertEqual(search("plants zebra"), set(), "every word must match")
        self.assertEqual(search("grü"), {ids["de"]})
        self.assertEqual(search("GRÜSSE"), set(), "no language-specific folding: ß is not ss")
        self.assertEqual(search("großm"), {ids["de"]})
        self.assertEqual(search("caf"), {ids["fr"]})
        self.assertEqual(search("réser"), {ids["fr"]})
        self.assertEqual(search("日本"), {ids["ja"]})
        self.assertEqual(search("купить"), {ids["ru"]})
        self.assertEqual(search("КУП"), {ids["ru"]}, "Cyrillic lower-cased")
        self.assertEqual(search("αγορ"), {ids["el"]})
        self.assertEqual(search("party"), {ids["emoji"]})
        self.assertEqual(len(search("garden")), 1, "tags are searched")
        self.assertEqual(len(search("gieß")), 1, "descriptions are searched")

    def test_rank_puts_title_matches_before_description_matches(self):
        u = new_user()
        in_description = self.create(u, {"title": "other", "description": "meeting notes"})["id"]
        in_title = self.create(u, {"title": "meeting"})["id"]
        items = self.server.get("/api/v1/tasks?q=meet", user=u).json()["items"]
        self.assertEqual([t["id"] for t in items], [in_title, in_description])


class Tags(ServerTest):
    def test_open_and_total_counts_per_tag(self):
        u, other = new_user(), new_user()
        a = self.create(u, {"title": "a", "tags": ["home", "weekly"]})
        self.create(u, {"title": "b", "tags": ["home"]})
        self.create(u, {"title": "c", "tags": ["work"]})
        self.create(other, {"title": "x", "tags": ["secret"]})
        self.server.post(f"/api/v1/tasks/{a['id']}/complete", user=u)
        r = self.server.get("/api/v1/tags", user=u)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["items"], [
            {"tag": "home", "open": 1, "total": 2},
            {"tag": "weekly", "open": 0, "total": 1},
            {"tag": "work", "open": 1, "total": 1},
        ])
        self.assertEqual(self.server.get("/api/v1/tags", user=new_user()).json(), {"items": []})
        self.assertProblem(self.server.get("/api/v1/tags?sort=tag", user=u), 400)
        # A name that is not UTF-8 is not echoed: the problem stays valid JSON.
        self.assertProblem(self.server.get("/api/v1/tags?%FF%FE=1", user=u), 400)


class Settings(ServerTest):
    def patch(self, user, body, **kw):
        return self.server.patch("/api/v1/settings", body, user=user, **kw)

    def test_defaults_patch_and_isolation(self):
        u, other = new_user(), new_user()
        defaults = {"timezone": "UTC", "email": None, "webhook_url": None, "webhook_secret_set": False}
        self.assertEqual(self.server.get("/api/v1/settings", user=u).json(), defaults)
        r = self.patch(u, {"timezone": "Europe/Berlin", "email": "me@example.com",
                           "webhook_url": "https://93.184.216.34/hooks/todo", "webhook_secret": "s3cret-s3cret-s3cret"})
        self.assertEqual(r.status, 200, r)
        want = {"timezone": "Europe/Berlin", "email": "me@example.com",
                "webhook_url": "https://93.184.216.34/hooks/todo", "webhook_secret_set": True}
        self.assertEqual(r.json(), want)
        self.assertNotIn("s3cret", r.body, "the secret is write-only")
        self.assertEqual(self.server.get("/api/v1/settings", user=u).json(), want)
        self.assertEqual(self.server.get("/api/v1/settings", user=other).json(), defaults, "per user")
        # Merge patch: absent members stay, null clears.
        r = self.patch(u, {"email": None, "timezone": None}, headers={"Content-Type": "application/merge-patch+json"})
        self.assertEqual(r.json(), dict(want, email=None, timezone="UTC"))
        r = self.patch(u, {"webhook_secret": None})
        self.assertFalse(r.json()["webhook_secret_set"])

    def test_bad_values_are_422_and_change_nothing(self):
        u = new_user()
        self.patch(u, {"email": "keep@example.com"})
        cases = [
            ({"timezone": "Mars/Olympus"}, "timezone"), ({"timezone": 5}, "timezone"),
            ({"email": "not-an-address"}, "email"), ({"email": "a@b"}, "email"),
            ({"webhook_url": "http://93.184.216.34/"}, "webhook_url"),
            ({"webhook_url": "https://127.0.0.1/"}, "webhook_url"),
            ({"webhook_url": "https://[::1]/"}, "webhook_url"),
            ({"webhook_url": "https://10.1.2.3/"}, "webhook_url"),
            ({"webhook_url": "https://192.168.0.10/"}, "webhook_url"),
            ({"webhook_url": "https://169.254.169.254/latest/meta-data"}, "webhook_url"),
            ({"webhook_url": "https://[::ffff:127.0.0.1]/"}, "webhook_url"),
            ({"webhook_url": "https://localhost/hook"}, "webhook_url"),
            ({"webhook_url": "https://no-such-host.invalid/hook"}, "webhook_url"),
            ({"webhook_url": "https://user:pw@example.com/"}, "webhook_url"),
            ({"webhook_secret": "short"}, "webhook_secret"),
            ({"webhook_secret_set": True}, "webhook_secret_set"),
            ({"colour": "red"}, "colour"),
        ]
        for body, field in cases:
            with self.subTest(body=body):
                self.assertProblem(self.patch(u, body), 422, field)
        p = self.assertProblem(self.patch(u, {"email": "x", "timezone": "Nowhere"}), 422)
        self.assertEqual({e["field"] for e in p["errors"]}, {"email", "timezone"}, "every broken field listed")
        self.assertEqual(self.server.get("/api/v1/settings", user=u).json()["email"], "keep@example.com")
        self.assertProblem(self.patch(u, None, raw_body="{nope"), 400)
        self.assertProblem(self.server.request("PATCH", "/api/v1/settings", raw_body='{"email": null}', user=u,
                                               headers={"Content-Type": "text/plain"}), 415)
        self.assertProblem(self.server.get("/api/v1/settings"), 401)


class InsecureWebhooks(unittest.TestCase):
    def test_allow_insecure_takes_http_and_loopback(self):
        require_environment()
        server = Server(extra_env={"WEBHOOK_ALLOW_INSECURE": "true"}).start()
        try:
            u = new_user()
            r = server.patch("/api/v1/settings", {"webhook_url": "http://127.0.0.1:9/hook"}, user=u)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["webhook_url"], "http://127.0.0.1:9/hook")
        finally:
            self.assertEqual(server.stop(), 0)
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
