-- Finding tasks: full-text search, and the indexes behind every listing shape.

-- Lets the GIN indexes lead with user_id, so a tag filter or a search reads
-- one user's entries instead of every user's. A trusted extension: the
-- database owner may create it.
CREATE EXTENSION IF NOT EXISTS btree_gin;

-- The 'simple' configuration: lower-cases and splits words, no stemming and
-- no stop words, the same for every language. Stemming for one language
-- would mangle titles written in another; prefix matching (plan:*) covers
-- most of what stemming would. Tags are whole lexemes.
ALTER TABLE tasks ADD COLUMN search tsvector GENERATED ALWAYS AS (
  setweight(to_tsvector('simple'::regconfig, title), 'A') ||
  setweight(to_tsvector('simple'::regconfig, description), 'C') ||
  array_to_tsvector(tags)
) STORED;

-- Lookups by id use the primary key. Listings lead with (user_id,
-- completed), since status=open is the default filter, then the sort keys in
-- exactly the form listing.cpp orders by: tasks without due_at sort last
-- through 'infinity', and descending priority is ascending -priority, so
-- the default order, sort=due_at and sort=-priority,due_at are each one
-- index range, keyset cursor included. Other sorts read the user's rows
-- through these indexes and sort them.
DROP INDEX tasks_user_id;
CREATE INDEX tasks_user_open_id ON tasks (user_id, completed, id);
CREATE INDEX tasks_user_open_due ON tasks
  (user_id, completed, (coalesce(due_at, 'infinity'::timestamptz)), id);
CREATE INDEX tasks_user_open_priority_due ON tasks
  (user_id, completed, (-priority), (coalesce(due_at, 'infinity'::timestamptz)), id);
CREATE INDEX tasks_user_tags ON tasks USING gin (user_id, tags);
CREATE INDEX tasks_user_search ON tasks USING gin (user_id, search);

-- Per-user settings: the reminders module's delivery targets and the user's
-- own zone. A missing row means the defaults.
CREATE TABLE user_settings (
  user_id        text        PRIMARY KEY,
  timezone       text        NOT NULL DEFAULT 'UTC',
  email          text,
  webhook_url    text,
  webhook_secret text,
  version        bigint      NOT NULL DEFAULT 1,
  updated_at     timestamptz NOT NULL DEFAULT now()
);
