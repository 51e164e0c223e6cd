-- The statement POST /api/v1/tasks runs (task_store.cpp, tasks_insert),
-- with the same parameter types, for pgbench -M prepared.
\set u random(1, 200)
INSERT INTO tasks (id, user_id, title, description, completed, completed_at, priority, tags, due_at, timezone, series_id, version, created_at, updated_at)
VALUES (gen_random_uuid(), 'bench-' || :u, 'Water the plants', '', 'f', NULL, '3', '{"home","weekly"}', '2026-03-02T17:00:00Z', 'UTC', NULL, '1', now(), now());
