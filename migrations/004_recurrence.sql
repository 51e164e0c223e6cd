-- Recurring tasks: the rule of each occurrence, and the record that makes
-- each occurrence's successor exist once.

-- The canonical RRULE (recurrence.rrule); NULL: the task does not recur.
-- series_start is the rule's DTSTART: the due date of the occurrence the
-- client set the rule on, carried to every later occurrence.
ALTER TABLE tasks ADD COLUMN recurrence text, ADD COLUMN series_start timestamptz;

-- One row per completed occurrence that got its successor, kept when either
-- task is deleted: completing an occurrence again (after a reopen, a retry
-- or a replay) finds the row and creates nothing.
CREATE TABLE task_successions (
  predecessor_id uuid        PRIMARY KEY,
  user_id        text        NOT NULL,
  successor_id   uuid        NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now()
);
