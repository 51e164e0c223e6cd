// The event validator itself: it accepts the events the server writes and
// refuses broken ones, each with a message naming the event and the rule.
// Run: node --test tests/tooling/ (ctest: event_contract_validator).
"use strict";

const assert = require("node:assert/strict");
const { execFileSync, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const test = require("node:test");

const { makeChecker } = require("./validate-events");

const check = makeChecker();
const SCRIPT = path.join(__dirname, "validate-events.js");

const TASK_ID = "019ad5e4-7c1a-7b3e-9f55-3c1d2b4a5e6f";
const REMINDER_ID = "019ad5e4-7c1b-7a00-8f55-3c1d2b4a5e70";

function task(fields = {}) {
  return {
    id: TASK_ID, title: "Water the plants", description: "", completed: false, completed_at: null,
    priority: "high", tags: ["home", "weekly"], due_at: "2026-03-02T17:00:00Z", timezone: "Europe/Berlin",
    recurrence: { rrule: "FREQ=WEEKLY;BYDAY=MO" }, series_id: null,
    reminders: [{ id: REMINDER_ID, before: "PT15M", fire_at: "2026-03-02T16:45:00Z", state: "scheduled" }],
    version: 1, created_at: "2026-02-20T10:00:00Z", updated_at: "2026-02-20T10:00:00.123Z", ...fields,
  };
}

function event(type, data, fields = {}) {
  return {
    specversion: "1.0", id: "019ad5e4-7c1c-7b3e-9f55-3c1d2b4a5e71", source: "/todo-server", type,
    subject: TASK_ID, time: "2026-03-02T17:03:11.123Z", datacontenttype: "application/json",
    sequence: 42, userid: "alice", data, ...fields,
  };
}

function created() {
  const t = task();
  const changes = {};
  for (const k of ["title", "description", "completed", "completed_at", "priority", "tags", "due_at", "timezone",
    "recurrence", "reminders", "series_id"]) {
    changes[k] = [null, t[k]];
  }
  return event("com.todo.task.created", { task: t, changes });
}

function reminderData(state, extra = {}) {
  return {
    reminder: { id: REMINDER_ID, task_id: TASK_ID, fire_at: "2026-03-02T16:45:00Z", state },
    task: { id: TASK_ID, title: "Water the plants" }, ...extra,
  };
}

// One valid event of every type the server emits.
function validEvents() {
  const done = task({ completed: true, completed_at: "2026-03-02T17:03:11.123Z", version: 3 });
  return [
    created(),
    event("com.todo.task.updated", { task: task({ title: "Water the roses", version: 2 }),
      changes: { title: ["Water the plants", "Water the roses"] } }),
    event("com.todo.task.completed", { task: done,
      changes: { completed: [false, true], completed_at: [null, "2026-03-02T17:03:11.123Z"] } }),
    event("com.todo.task.reopened", { task: task({ version: 4 }),
      changes: { completed: [true, false], completed_at: ["2026-03-02T17:03:11.123Z", null] } }),
    event("com.todo.task.deleted", { task: task({ version: 5 }), changes: {} }),
    event("com.todo.reminder.scheduled", reminderData("scheduled")),
    event("com.todo.reminder.due", reminderData("sent")),
    event("com.todo.reminder.sent", reminderData("sent", { channel: "webhook", attempts: 1 })),
    event("com.todo.reminder.failed", reminderData("failed", { channel: "email", attempts: 5, error: "HTTP 500" })),
  ];
}

function mutate(e, f) {
  const copy = structuredClone(e);
  f(copy);
  return copy;
}

test("every event type the server emits is valid", () => {
  const events = validEvents();
  assert.equal(new Set(events.map((e) => e.type)).size, 9);
  assert.deepEqual(check(events, "fixtures"), []);
});

const broken = [
  ["missing id", (e) => delete e.id, [/\(the event\) must have required property 'id'/, /SDK: id is missing/]],
  ["wrong specversion", (e) => (e.specversion = "0.3"), [/\/specversion must be equal to constant/, /SDK: specversion "0.3"/]],
  ["an attribute name the SDK refuses", (e) => (e.user_id = "alice"),
    [/must NOT have additional properties \{"additionalProperty":"user_id"\}/, /SDK: invalid extension name: user_id/]],
  ["time without an offset", (e) => (e.time = "2026-03-02T17:03:11"), [/\/time must match/]],
  ["a string sequence", (e) => (e.sequence = "42"), [/\/sequence must be integer/]],
  ["an unknown type", (e) => (e.type = "com.todo.task.archived"), [/\/type must be equal to one of the allowed values/]],
  ["bad data: unknown priority", (e) => (e.data.task.priority = "huge"), [/\/data\/task\/priority must be equal to one of/]],
  ["bad data: a field the task does not have", (e) => (e.data.task.owner = "bob"),
    [/\/data\/task must NOT have additional properties/]],
  ["bad data: created with an old value", (e) => (e.data.changes.title = ["x", "Water the plants"]),
    [/\/data\/changes\/title\/0 must be null/]],
  ["a change whose new value is not the task's", (e) => (e.data.changes.priority = [null, "low"]),
    [/data\.changes\.priority\[1\] "low" is not data\.task\.priority "high"/]],
  ["subject is not the task", (e) => (e.subject = "019ad5e4-7c1a-7b3e-9f55-000000000000"),
    [/subject "019ad5e4-7c1a-7b3e-9f55-000000000000" is not data.task.id/]],
];

for (const [what, f, expected] of broken) {
  test(`refused: ${what}`, () => {
    const errors = check([mutate(created(), f)], "case");
    assert.ok(errors.length > 0, "no violation reported");
    for (const want of expected) {
      assert.ok(errors.some((m) => want.test(m)), `no message matches ${want}:\n${errors.join("\n")}`);
    }
    // Each message names where the event was read and which event it is.
    for (const m of errors) {
      assert.match(m, /^case: event #0 \(type="com\.todo\.task\.[a-z]+"/);
    }
  });
}

test("refused: reminder data of the wrong type", () => {
  const due = validEvents().find((e) => e.type === "com.todo.reminder.due");
  const withChannel = mutate(due, (e) => (e.data.channel = "email"));
  assert.ok(check([withChannel]).some((m) => /\/data must NOT have additional properties/.test(m)));
  const failedWithoutError = mutate(validEvents().find((e) => e.type === "com.todo.reminder.failed"),
    (e) => delete e.data.error);
  assert.ok(check([failedWithoutError]).some((m) => /\/data must have required property 'error'/.test(m)));
});

test("the command line fails on a bad batch and passes a good one", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "validate-events-"));
  try {
    const good = path.join(dir, "good.jsonl");
    fs.writeFileSync(good, validEvents().map((e) => JSON.stringify(e)).join("\n") + "\n");
    assert.match(execFileSync("node", [SCRIPT, good], { encoding: "utf8" }), /^9 event\(s\) valid/);
    const bad = path.join(dir, "bad.json");
    fs.writeFileSync(bad, JSON.stringify([created(), mutate(created(), (e) => delete e.id)]));
    const r = spawnSync("node", [SCRIPT, bad], { encoding: "utf8" });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /bad\.json: event #1 \(type="com\.todo\.task\.created" sequence=42 userid="alice"\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("--serve answers one line per batch", () => {
  const input = [
    JSON.stringify({ where: "ok", events: validEvents() }),
    JSON.stringify({ where: "bad", events: [mutate(created(), (e) => (e.specversion = "2.0"))] }),
    "not json",
  ].join("\n") + "\n";
  const out = execFileSync("node", [SCRIPT, "--serve"], { input, encoding: "utf8" }).trim().split("\n").map(JSON.parse);
  assert.equal(out.length, 3);
  assert.deepEqual(out[0], { checked: 9, errors: [] });
  assert.ok(out[1].errors.length > 0 && out[1].errors.every((m) => m.startsWith("bad: event #0")));
  assert.match(out[2].errors[0], /unreadable batch/);
});
