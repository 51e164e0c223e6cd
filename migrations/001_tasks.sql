-- Tasks, and the idempotency keys stored in the same transaction as the
-- change they answered.
CREATE TABLE tasks (
  id           uuid        PRIMARY KEY,
  user_id      text        NOT NULL,
  title        text        NOT NULL,
  description  text        NOT NULL DEFAULT '',
  completed    boolean     NOT NULL DEFAULT false,
  completed_at timestamptz,
  priority     smallint    NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 4),
  tags         text[]      NOT NULL DEFAULT '{}',
  due_at       timestamptz,
  timezone     text        NOT NULL DEFAULT 'UTC',
  series_id    uuid,
  version      bigint      NOT NULL DEFAULT 1,
  created_at   timestamptz NOT NULL,
  updated_at   timestamptz NOT NULL
);

-- Every lookup is scoped by user; ids are UUIDv7, so (user_id, id) is also
-- creation order, which the default listing walks.
CREATE UNIQUE INDEX tasks_user_id ON tasks (user_id, id);

CREATE TABLE idempotency_keys (
  user_id      text        NOT NULL,
  key          text        NOT NULL,
  fingerprint  text        NOT NULL,
  status       integer     NOT NULL,
  headers      text        NOT NULL,
  body         text        NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
