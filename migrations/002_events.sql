-- The durable event log: one row per committed change, written in the same
-- transaction as the change. It is the transactional outbox for Kafka, the
-- activity log, and the stream WebSocket clients resume from.

-- The per-user sequence. Its row lock serializes one user's writers, so
-- sequence numbers are gap-free and in commit order per user.
CREATE TABLE user_sequences (
  user_id  text   PRIMARY KEY,
  last_seq bigint NOT NULL
);

CREATE TABLE events (
  -- Global insertion order, walked by consumers. Not gap-free (a rolled-back
  -- insert burns a number) and not commit order; readers handle both.
  pos      bigserial   PRIMARY KEY,
  user_id  text        NOT NULL,
  seq      bigint      NOT NULL,
  id       uuid        NOT NULL UNIQUE,
  type     text        NOT NULL,
  subject  text        NOT NULL,
  time     timestamptz NOT NULL,
  summary  text        NOT NULL,
  data     text        NOT NULL,  -- the CloudEvent's data, encoded JSON
  UNIQUE (user_id, seq)
);
CREATE INDEX events_user_subject ON events (user_id, subject, seq);
CREATE INDEX events_time ON events (time);

-- How far each consumer of the log (the Kafka relay, in-process
-- subscribers) has durably got.
CREATE TABLE consumer_checkpoints (
  name       text        PRIMARY KEY,
  pos        bigint      NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
