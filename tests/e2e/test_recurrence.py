"""Recurring tasks end to end: rules validated on create and patch, the next
occurrence created exactly once per completed occurrence, in the task's zone.
"""
import concurrent.futures
import os
import signal
import unittest

from harness import Server, ServerTest, eventually, new_user, require_environment

WEEKLY_MONDAY_9_BERLIN = {
    "title": "Team sync", "due_at": "2026-03-23T09:00:00+01:00", "timezone": "Europe/Berlin",
    "recurrence": {"rrule": "FREQ=WEEKLY;BYDAY=MO"}, "tags": ["work"], "priority": "high",
}


def series(server, user, series_id):
    items = server.get("/api/v1/tasks?status=all&limit=200", user=user).json()["items"]
    return sorted((t for t in items if t["series_id"] == series_id), key=lambda t: t["due_at"])


class Rules(ServerTest):
    def test_rule_stored_canonical_and_series_named(self):
        u = new_user()
        t = self.create(u, dict(WEEKLY_MONDAY_9_BERLIN, recurrence={"rrule": "rrule:byday=mo;freq=weekly;interval=1"}))
        self.assertEqual(t["recurrence"], {"rrule": "FREQ=WEEKLY;BYDAY=MO"})
        self.assertEqual(t["series_id"], t["id"], "the first occurrence names the series")

    def test_shorthands_are_stored_as_rules(self):
        u = new_user()
        cases = {
            ("day", 1): "FREQ=DAILY", ("weekday", 1): "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
            ("week", 2): "FREQ=WEEKLY;INTERVAL=2", ("month", 1): "FREQ=MONTHLY", ("year", 1): "FREQ=YEARLY",
        }
        for (every, n), rule in cases.items():
            body = {"title": every, "due_at": "2026-03-02T09:00:00Z", "recurrence": {"every": every, "interval": n}}
            self.assertEqual(self.create(u, body)["recurrence"], {"rrule": rule}, every)

    def test_bad_rules_are_422_naming_the_part_and_change_nothing(self):
        u = new_user()
        due = "2026-03-02T09:00:00Z"
        cases = [
            ({"title": "x", "recurrence": {"rrule": "FREQ=DAILY"}}, "due_at"),
            ({"title": "x", "due_at": due, "recurrence": {"rrule": "FREQ=HOURLY"}}, "FREQ"),
            ({"title": "x", "due_at": due, "recurrence": {"rrule": "FREQ=DAILY;BYHOUR=9"}}, "BYHOUR"),
            ({"title": "x", "due_at": due, "recurrence": {"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"}}, "BYMONTHDAY"),
            ({"title": "x", "due_at": due, "recurrence": {"rrule": "FREQ=DAILY;COUNT=1"}}, "COUNT"),
            ({"title": "x", "due_at": due, "recurrence": {"rrule": "FREQ=DAILY;UNTIL=20260301T000000Z"}}, "UNTIL"),
            ({"title": "x", "due_at": due, "recurrence": {"rrule": "FREQ=DAILY;FOO=1"}}, "FOO"),
            ({"title": "x", "due_at": due, "recurrence": {"every": "fortnight"}}, "every"),
            ({"title": "x", "due_at": due, "recurrence": {"every": "day", "interval": 0}}, "interval"),
            ({"title": "x", "due_at": due, "recurrence": {"rrule": "FREQ=DAILY", "every": "day"}}, "rrule"),
            ({"title": "x", "due_at": due, "recurrence": {"rrule": "FREQ=DAILY", "interval": 2}}, "interval"),
            ({"title": "x", "due_at": due, "recurrence": {"when": "often"}}, "when"),
            ({"title": "x", "due_at": due, "recurrence": "FREQ=DAILY"}, "rrule"),
        ]
        for body, part in cases:
            with self.subTest(body=body):
                p = self.assertProblem(self.server.post("/api/v1/tasks", body, user=u), 422, "recurrence")
                message = next(e["message"] for e in p["errors"] if e["field"] == "recurrence")
                self.assertIn(part, message, p)
        self.assertEqual(self.server.get("/api/v1/tasks?status=all", user=u).json()["items"], [])

    def test_patch_sets_changes_and_clears_the_rule(self):
        u = new_user()
        t = self.create(u, {"title": "x", "due_at": "2026-03-02T09:00:00Z"})
        p = self.server.patch(f"/api/v1/tasks/{t['id']}", {"recurrence": {"every": "day"}}, user=u)
        self.assertEqual(p.status, 200, p)
        self.assertEqual((p.json()["recurrence"], p.json()["series_id"]), ({"rrule": "FREQ=DAILY"}, t["id"]))
        self.assertProblem(self.server.patch(f"/api/v1/tasks/{t['id']}", {"due_at": None}, user=u), 422, "recurrence")
        cleared = self.server.patch(f"/api/v1/tasks/{t['id']}", {"recurrence": None}, user=u).json()
        self.assertIsNone(cleared["recurrence"])
        self.assertEqual(cleared["series_id"], t["id"], "the series stays linked")


class Succession(ServerTest):
    def complete(self, user, task_id, **kw):
        r = self.server.post(f"/api/v1/tasks/{task_id}/complete", user=user, **kw)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_next_occurrence_keeps_local_time_across_dst(self):
        u = new_user()
        t = self.create(u, WEEKLY_MONDAY_9_BERLIN)
        self.assertEqual(t["due_at"], "2026-03-23T08:00:00Z")  # 09:00 CET
        done = self.complete(u, t["id"])
        n = done["next"]
        self.assertTrue(done["task"]["completed"])
        self.assertEqual(n["due_at"], "2026-03-30T07:00:00Z", "09:00 CEST after the change to summer time")
        self.assertEqual((n["series_id"], n["completed"], n["title"], n["tags"], n["priority"], n["recurrence"]),
                         (t["id"], False, "Team sync", ["work"], "high", {"rrule": "FREQ=WEEKLY;BYDAY=MO"}))
        self.assertNotEqual(n["id"], t["id"])
        self.assertEqual(self.server.get(f"/api/v1/tasks/{n['id']}", user=u).json(), n)
        n2 = self.complete(u, n["id"])["next"]
        self.assertEqual(n2["due_at"], "2026-04-06T07:00:00Z")

    def test_exactly_once_on_repeat_reopen_and_replay(self):
        u = new_user()
        t = self.create(u, WEEKLY_MONDAY_9_BERLIN)
        key = {"Idempotency-Key": "complete-once"}
        first = self.complete(u, t["id"], headers=key)
        replay = self.server.post(f"/api/v1/tasks/{t['id']}/complete", user=u, headers=key)
        self.assertEqual(replay.headers.get("idempotent-replayed"), "true")
        self.assertEqual(replay.json(), first)
        self.assertEqual(self.complete(u, t["id"])["next"], first["next"], "a no-op completion shows the successor")
        self.server.post(f"/api/v1/tasks/{t['id']}/reopen", user=u)
        again = self.complete(u, t["id"])
        self.assertEqual(again["next"]["id"], first["next"]["id"], "reopen and complete: no second successor")
        self.assertEqual(len(series(self.server, u, t["id"])), 2)

    def test_concurrent_duplicate_completions_create_one_successor(self):
        u = new_user()
        tasks = [self.create(u, dict(WEEKLY_MONDAY_9_BERLIN, title=f"t{i}")) for i in range(5)]
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            results = list(ex.map(lambda t: self.server.post(f"/api/v1/tasks/{t['id']}/complete", user=u),
                                  [t for t in tasks for _ in range(6)]))
        self.assertTrue(all(r.status == 200 for r in results), [r for r in results if r.status != 200][:2])
        for t in tasks:
            s = series(self.server, u, t["id"])
            self.assertEqual(len(s), 2, s)
            answered = {r.json()["next"]["id"] for r in results if r.json()["task"]["id"] == t["id"]}
            self.assertEqual(answered, {s[1]["id"]}, "every answer names the one successor")

    def test_count_and_until_end_the_series(self):
        u = new_user()
        t = self.create(u, {"title": "thrice", "due_at": "2026-03-02T09:00:00Z",
                            "recurrence": {"rrule": "FREQ=DAILY;COUNT=3"}})
        n1 = self.complete(u, t["id"])["next"]
        self.assertEqual((n1["due_at"], n1["recurrence"]["rrule"]), ("2026-03-03T09:00:00Z", "FREQ=DAILY;COUNT=3"))
        n2 = self.complete(u, n1["id"])["next"]
        self.assertEqual(n2["due_at"], "2026-03-04T09:00:00Z")
        self.assertEqual(self.server.patch(f"/api/v1/tasks/{n2['id']}", {"title": "last"}, user=u).status, 200,
                         "the last occurrence can still be edited")
        self.assertIsNone(self.complete(u, n2["id"])["next"], "three occurrences in all")
        u2 = self.create(u, {"title": "until", "due_at": "2026-03-02T09:00:00Z",
                             "recurrence": {"rrule": "FREQ=WEEKLY;UNTIL=20260310T000000Z"}})
        m = self.complete(u, u2["id"])["next"]
        self.assertEqual(m["due_at"], "2026-03-09T09:00:00Z")
        self.assertIsNone(self.complete(u, m["id"])["next"])

    def test_local_time_survives_a_gap(self):
        u = new_user()
        # 02:30 does not exist in Berlin on 2026-03-29: that day's occurrence is
        # 03:30 CEST, and the next one is 02:30 CEST again, not 03:30.
        t = self.create(u, {"title": "night", "due_at": "2026-03-28T02:30:00+01:00", "timezone": "Europe/Berlin",
                            "recurrence": {"every": "day"}})
        gap = self.complete(u, t["id"])["next"]
        self.assertEqual(gap["due_at"], "2026-03-29T01:30:00Z")
        self.assertEqual(self.complete(u, gap["id"])["next"]["due_at"], "2026-03-30T00:30:00Z")

    def test_moving_an_occurrence_does_not_move_the_series(self):
        u = new_user()
        t = self.create(u, WEEKLY_MONDAY_9_BERLIN)
        moved = self.server.patch(f"/api/v1/tasks/{t['id']}", {"due_at": "2026-03-24T15:00:00Z"}, user=u).json()
        self.assertEqual(self.complete(u, moved["id"])["next"]["due_at"], "2026-03-30T07:00:00Z",
                         "Tuesday's occurrence is followed by the series' next Monday 09:00")
        # Skipping ahead: moving the open occurrence past several dates.
        s = self.create(u, {"title": "skip", "due_at": "2026-01-05T09:00:00Z", "recurrence": {"every": "week"}})
        self.server.patch(f"/api/v1/tasks/{s['id']}", {"due_at": "2026-06-01T09:00:00Z"}, user=u)
        self.assertEqual(self.complete(u, s["id"])["next"]["due_at"], "2026-06-08T09:00:00Z")

    def test_month_end_rule_and_overdue_series(self):
        u = new_user()
        t = self.create(u, {"title": "rent", "due_at": "2026-01-31T10:00:00Z",
                            "recurrence": {"rrule": "FREQ=MONTHLY;BYMONTHDAY=-1"}})
        n = self.complete(u, t["id"])["next"]
        self.assertEqual(n["due_at"], "2026-02-28T10:00:00Z")
        # Long overdue: one successor after the completed one's date, not a backlog.
        old = self.create(u, {"title": "old", "due_at": "2020-01-06T09:00:00Z", "recurrence": {"every": "week"}})
        self.assertEqual(self.complete(u, old["id"])["next"]["due_at"], "2020-01-13T09:00:00Z")

    def test_editing_the_rule_applies_from_that_occurrence_and_delete_keeps_the_past(self):
        u = new_user()
        t = self.create(u, {"title": "x", "due_at": "2026-03-02T09:00:00Z", "recurrence": {"every": "day"}})
        n = self.complete(u, t["id"])["next"]
        p = self.server.patch(f"/api/v1/tasks/{n['id']}", {"recurrence": {"every": "week"}}, user=u)
        self.assertEqual(p.status, 200, p)
        self.assertEqual(self.complete(u, n["id"])["next"]["due_at"], "2026-03-10T09:00:00Z")
        n3 = series(self.server, u, t["id"])[-1]
        self.assertEqual(self.server.delete(f"/api/v1/tasks/{n3['id']}", user=u).status, 204)
        past = series(self.server, u, t["id"])
        self.assertEqual([x["completed"] for x in past], [True, True], "the completed occurrences stay")

    def test_successor_is_an_event_and_an_activity_entry(self):
        u = new_user()
        t = self.create(u, WEEKLY_MONDAY_9_BERLIN)
        n = self.complete(u, t["id"])["next"]
        events = self.server.get("/api/v1/events?after=0", user=u).json()["items"]
        self.assertEqual([(e["type"], e["subject"]) for e in events], [
            ("com.todo.task.created", t["id"]), ("com.todo.task.completed", t["id"]),
            ("com.todo.task.created", n["id"])])
        self.assertEqual(events[2]["data"]["task"], n)


class CrashDuringCompletions(unittest.TestCase):
    def test_kill_9_during_completions_leaves_each_occurrence_one_successor(self):
        require_environment()
        u = new_user()
        server = Server(extra_env={"RATE_LIMIT": "0"}).start()
        try:
            ids = []
            for i in range(40):
                r = server.post("/api/v1/tasks", dict(WEEKLY_MONDAY_9_BERLIN, title=f"c{i}"), user=u)
                self.assertEqual(r.status, 201, r)
                ids.append(r.json()["id"])
            with concurrent.futures.ThreadPoolExecutor(8) as ex:
                futures = [ex.submit(server.post, f"/api/v1/tasks/{i}/complete", user=u, timeout=5) for i in ids]
                # Killed while completions are in flight: some committed, some not.
                eventually(lambda: sum(f.done() for f in futures) >= 10, 30, 0.001, "the first completions")
                os.kill(server.proc.pid, signal.SIGKILL)
                answered = {ids[k] for k, f in enumerate(futures) if f.result().status == 200}
            self.assertLess(len(answered), len(ids), "the kill came while completions were in flight")
            server.stop()
            server = Server(extra_env={"RATE_LIMIT": "0"}).start()
            items = server.get("/api/v1/tasks?status=all&limit=200", user=u).json()["items"]
            by_series = {}
            for t in items:
                by_series.setdefault(t["series_id"], []).append(t)
            self.assertEqual(set(by_series), set(ids))
            completed = 0
            for sid, occurrences in by_series.items():
                done = [t for t in occurrences if t["completed"]]
                open_ = [t for t in occurrences if not t["completed"]]
                self.assertEqual(len(open_), 1, f"series {sid}: exactly one open occurrence: {occurrences}")
                self.assertEqual(len(occurrences), 1 + len(done), f"series {sid}: a successor per completion")
                if sid in answered:
                    self.assertEqual(len(done), 1, "an acknowledged completion is kept, with its successor")
                completed += len(done)
            self.assertGreaterEqual(completed, len(answered))
            # Completing the rest after the restart still gives one successor each.
            for sid, occurrences in by_series.items():
                if not any(t["completed"] for t in occurrences):
                    r = server.post(f"/api/v1/tasks/{sid}/complete", user=u)
                    self.assertEqual(r.status, 200, r)
                    self.assertIsNotNone(r.json()["next"])
        finally:
            server.stop()
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
