-- Reminders: the task's reminder specs, the reminders module's own record of
-- each reminder, the embedded scheduler's jobs, and the state store.

-- The task's reminders as the client set them, with the server's id,
-- fire_at and state: [{"id","at"|"before","fire_at","state"}].
-- reminders_rev counts the reminders module's state updates, which do not
-- change the task's version: a writer that read an older state retries
-- instead of writing it back.
ALTER TABLE tasks ADD COLUMN reminders jsonb NOT NULL DEFAULT '[]',
                  ADD COLUMN reminders_rev bigint NOT NULL DEFAULT 0;

-- One row per reminder the reminders module knows. A reminder fires at most
-- once per fire_at: firing moves state from 'scheduled' to 'fired' for that
-- fire_at, and a new fire_at starts it again.
CREATE TABLE reminders (
  id          uuid        PRIMARY KEY,
  user_id     text        NOT NULL,
  task_id     uuid        NOT NULL,
  fire_at     timestamptz NOT NULL,
  state       text        NOT NULL CHECK (state IN ('scheduled', 'fired', 'cancelled')),
  -- The sequence number of the task event that last set fire_at or state:
  -- an older event, replayed after a crash, changes nothing.
  source_seq  bigint      NOT NULL,
  -- The com.todo.reminder.scheduled event for this fire_at was appended.
  announced   boolean     NOT NULL DEFAULT false,
  title       text        NOT NULL DEFAULT '',
  -- The scheduler holds what this row says (a job for fire_at, or none once
  -- cancelled); false until it acknowledged, so reconciliation retries.
  job_synced  boolean     NOT NULL DEFAULT false,
  -- Set when it fired: the channels it goes to beyond the WebSocket stream,
  -- and whether any of them is still unsettled.
  channels    text[]      NOT NULL DEFAULT '{}',
  open_deliveries boolean NOT NULL DEFAULT false,
  fired_at    timestamptz,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reminders_task ON reminders (task_id);
CREATE INDEX reminders_due ON reminders (fire_at) WHERE state = 'scheduled';
CREATE INDEX reminders_unsynced ON reminders (updated_at) WHERE NOT job_synced;
CREATE INDEX reminders_open ON reminders (fired_at) WHERE open_deliveries;

-- The outcome of each channel of each firing, written once: its insert
-- guards the outcome event, so a delivery job that runs twice appends one.
CREATE TABLE reminder_outcomes (
  reminder_id uuid        NOT NULL,
  fire_at     timestamptz NOT NULL,
  channel     text        NOT NULL,
  outcome     text        NOT NULL CHECK (outcome IN ('sent', 'failed')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (reminder_id, fire_at, channel)
);
CREATE INDEX reminder_outcomes_created ON reminder_outcomes (created_at);

-- The embedded scheduler's jobs (no sidecar): one row per job name. A
-- replica claims due rows with SKIP LOCKED and a lease, so each job runs on
-- one replica at a time; the row is deleted once its handler succeeded.
CREATE TABLE scheduler_jobs (
  name          text        PRIMARY KEY,
  due_at        timestamptz NOT NULL,
  data          text        NOT NULL,
  claimed_until timestamptz
);
CREATE INDEX scheduler_jobs_due ON scheduler_jobs (due_at);

-- Dapr's state.postgresql v2 tables, created the way the component creates
-- them, so the direct store and the sidecar share data.
CREATE TABLE IF NOT EXISTS dapr_metadata (key text NOT NULL PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS state (
  key text NOT NULL PRIMARY KEY,
  value bytea NOT NULL,
  etag uuid NOT NULL DEFAULT gen_random_uuid(),
  created_at timestamp with time zone NOT NULL DEFAULT now(),
  updated_at timestamp with time zone,
  expires_at timestamp with time zone
);
CREATE INDEX IF NOT EXISTS state_expires_at_idx ON state (expires_at);
