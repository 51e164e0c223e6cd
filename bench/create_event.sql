-- The statement POST /api/v1/tasks runs with the event log (task_store.cpp,
-- tasks_insert): the task, the per-user sequence and the event, in one
-- statement. Same shape, for pgbench -M prepared; :data is the event's JSON
-- (bench/run.sh passes it with -D: pgbench would read ":null" inside it as a variable).
\set u random(1, 200)
WITH changed AS (INSERT INTO tasks (id, user_id, title, description, completed, completed_at, priority, tags, due_at, timezone, series_id, version, created_at, updated_at)
  VALUES (gen_random_uuid(), 'bench-' || :u, 'Water the plants', '', 'f', NULL, '3', '{"home","weekly"}', '2026-03-02T17:00:00Z', 'UTC', NULL, '1', now(), now()) RETURNING id),
seq_row AS (INSERT INTO user_sequences (user_id, last_seq) SELECT 'bench-' || :u, 1 FROM changed
  ON CONFLICT (user_id) DO UPDATE SET last_seq = user_sequences.last_seq + 1 RETURNING last_seq)
INSERT INTO events (user_id, seq, id, type, subject, time, summary, data)
SELECT 'bench-' || :u, last_seq, gen_random_uuid(), 'com.todo.task.created', 'x', now(), 'Created "Water the plants"', :data FROM seq_row RETURNING seq;
