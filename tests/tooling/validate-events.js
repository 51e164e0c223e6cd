#!/usr/bin/env node
// Checks CloudEvents against the event contract: the JSON Schemas in
// docs/events (draft 2020-12, with ajv) and the CloudEvents JS SDK's strict
// validation, plus the rules a schema cannot state (subject names the task).
//
//   node validate-events.js [file...]   events as a JSON array, one object,
//                                       or JSON lines (stdin without files);
//                                       exit 1 naming every violation
//   node validate-events.js --serve     one batch per stdin line,
//                                       {"where": "...", "events": [...]},
//                                       one answer per stdout line,
//                                       {"checked": n, "errors": ["..."]}
//
// --serve keeps the compiled schemas across batches: the e2e tests check
// every event they read without paying a process start for each read.
"use strict";

const fs = require("fs");
const path = require("path");
const readline = require("readline");
const { isDeepStrictEqual } = require("util");
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats").default;
const { CloudEvent } = require("cloudevents");

const SCHEMA_DIR = path.resolve(__dirname, "..", "..", "docs", "events");
const ENVELOPE_ID = "https://todo.dev/schemas/events/cloudevent.schema.json";

function schemaFiles(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      out.push(...schemaFiles(full));
    } else if (entry.name.endsWith(".schema.json")) {
      out.push(full);
    }
  }
  return out.sort();
}

function compile(dir = SCHEMA_DIR) {
  // strict: a typo in a schema keyword is an error, not a silently ignored
  // key. The type and required checks of strict mode are off: the data
  // schemas narrow shared definitions ($ref plus properties or required)
  // without restating their types.
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, strictRequired: false });
  addFormats(ajv);
  for (const file of schemaFiles(dir)) {
    ajv.addSchema(JSON.parse(fs.readFileSync(file, "utf8")));
  }
  const validate = ajv.getSchema(ENVELOPE_ID);
  if (!validate) {
    throw new Error(`no schema with $id ${ENVELOPE_ID} in ${dir}`);
  }
  return validate;
}

function describeSchemaError(e) {
  const at = e.instancePath || "(the event)";
  const params = Object.keys(e.params || {}).length ? ` ${JSON.stringify(e.params)}` : "";
  return `${at} ${e.message}${params}`;
}

// Violations of the CloudEvents JS SDK's strict mode. The SDK fills in a
// missing id, time and specversion instead of refusing them, and skips the
// 1.0 schema for any other specversion, so those are checked on the input.
function sdkViolations(event) {
  const out = [];
  if (event === null || typeof event !== "object" || Array.isArray(event)) {
    return ["SDK: not a JSON object"];
  }
  for (const attr of ["id", "time", "specversion"]) {
    if (!(attr in event)) {
      out.push(`SDK: ${attr} is missing (the SDK would invent one)`);
    }
  }
  try {
    const ce = new CloudEvent(event, true);
    if (ce.validate() !== true) {
      out.push(`SDK: specversion ${JSON.stringify(event.specversion)} is not 1.0, so the SDK cannot validate it`);
    }
  } catch (err) {
    out.push(`SDK: ${String(err.message).replace(/\s+/g, " ").trim()}`);
  }
  return out;
}

// What the schemas cannot say: the subject is the task the data is about,
// and each change's new value is the task's value after the change.
function crossFieldViolations(event) {
  const data = event && event.data;
  if (!data || typeof data !== "object" || typeof event.type !== "string") {
    return [];
  }
  const out = [];
  const taskId = data.task && data.task.id;
  if (taskId !== undefined && event.subject !== taskId) {
    out.push(`subject ${JSON.stringify(event.subject)} is not data.task.id ${JSON.stringify(taskId)}`);
  }
  const changes = data.changes;
  if (event.type !== "com.todo.task.deleted" && data.task && changes && typeof changes === "object") {
    for (const [field, pair] of Object.entries(changes)) {
      if (Array.isArray(pair) && !isDeepStrictEqual(pair[1], data.task[field])) {
        out.push(`data.changes.${field}[1] ${JSON.stringify(pair[1])} is not data.task.${field} ` +
          JSON.stringify(data.task[field]));
      }
    }
  }
  const reminderTask = data.reminder && data.reminder.task_id;
  if (reminderTask !== undefined && reminderTask !== taskId) {
    out.push(`data.reminder.task_id ${JSON.stringify(reminderTask)} is not data.task.id ${JSON.stringify(taskId)}`);
  }
  return out;
}

function label(event, index) {
  if (event === null || typeof event !== "object") {
    return `event #${index}`;
  }
  const parts = [];
  for (const k of ["type", "id", "sequence", "userid"]) {
    if (event[k] !== undefined) {
      parts.push(`${k}=${JSON.stringify(event[k])}`);
    }
  }
  return `event #${index} (${parts.join(" ")})`;
}

function makeChecker(dir) {
  const validate = compile(dir);
  // Every violation of a batch, each line naming the event and the rule.
  return function check(events, where = "input") {
    const errors = [];
    events.forEach((event, i) => {
      const problems = [];
      if (!validate(event)) {
        // "must match then schema" only repeats the errors found inside it.
        const found = validate.errors.filter((e) => e.keyword !== "if");
        problems.push(...found.map((e) => `schema: ${describeSchemaError(e)}`));
      }
      problems.push(...sdkViolations(event));
      problems.push(...crossFieldViolations(event));
      for (const p of problems) {
        errors.push(`${where}: ${label(event, i)}: ${p}`);
      }
    });
    return errors;
  };
}

function parseEvents(text) {
  const trimmed = text.trim();
  if (trimmed === "") {
    return [];
  }
  try {
    const v = JSON.parse(trimmed);
    return Array.isArray(v) ? v : [v];
  } catch (whole) {
    return trimmed.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
  }
}

function serve(check) {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  rl.on("line", (line) => {
    let answer;
    try {
      const batch = JSON.parse(line);
      if (!batch || !Array.isArray(batch.events)) {
        throw new Error('a batch is {"where": "...", "events": [...]}');
      }
      answer = { checked: batch.events.length, errors: check(batch.events, batch.where || "batch") };
    } catch (err) {
      answer = { checked: 0, errors: [`validator: unreadable batch: ${err.message}`] };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
  });
}

function main(argv) {
  const check = makeChecker();
  if (argv[0] === "--serve") {
    serve(check);
    return;
  }
  const sources = argv.length ? argv : ["-"];
  const errors = [];
  let count = 0;
  for (const src of sources) {
    const text = fs.readFileSync(src === "-" ? 0 : src, "utf8");
    const events = parseEvents(text);
    count += events.length;
    errors.push(...check(events, src === "-" ? "stdin" : src));
  }
  if (errors.length) {
    process.stderr.write(errors.join("\n") + "\n");
    process.stderr.write(`${errors.length} violation(s) in ${count} event(s)\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(`${count} event(s) valid\n`);
}

module.exports = { makeChecker, parseEvents, SCHEMA_DIR };

if (require.main === module) {
  main(process.argv.slice(2));
}
