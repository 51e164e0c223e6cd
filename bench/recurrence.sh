#!/usr/bin/env bash
# Benchmarks of recurring tasks: next-date computations a second on one
# core (bench/recurrence.cpp), and the completion endpoint's throughput for
# recurring tasks (each completion also writes the next occurrence and its
# event) beside plain tasks, in the same run. Loopback only; bounded in time.
#
# usage: bench/recurrence.sh [seconds-per-run=10] [repeats=3]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-10}
repeats=${2:-3}
conc=16
. "$here/common.sh"
cmake --build "$TODO_ROOT/build" --target recurrence_bench >/dev/null

engine=$(taskset -c 0 ./build/bench/recurrence_bench 2>&1 | tail -n 20)

port=$(free_port)
start_server "$port"  # applies the migrations
base="http://127.0.0.1:$port"
user=bench-complete
token=$(./build/todo-server token --user "$user" --ttl 2h)
export BENCH_TOKEN="$token"
chmod 755 "$work"

# Open tasks made in SQL, enough that no run completes one twice: weekly
# tasks in Berlin, and the same without a rule.
per_run=$((secs * 4000))
total=$((per_run * repeats))
psql_run "
INSERT INTO tasks (id, user_id, title, priority, tags, due_at, timezone, recurrence, series_start, series_id,
                   created_at, updated_at)
SELECT id, '$user', 'task ' || g, 2, ARRAY['bench'], d, 'Europe/Berlin',
       CASE WHEN g % 2 = 0 THEN 'FREQ=WEEKLY;BYDAY=MO' END, CASE WHEN g % 2 = 0 THEN d END,
       CASE WHEN g % 2 = 0 THEN id END, now(), now()
FROM (SELECT gen_random_uuid() AS id, g, timestamptz '2026-03-02 08:00Z' + (g % 50) * interval '7 days' AS d
      FROM generate_series(1, $((total * 2))) g) s"
psql_run "SELECT id FROM tasks WHERE user_id = '$user' AND recurrence IS NOT NULL" >"$work/recurring"
psql_run "SELECT id FROM tasks WHERE user_id = '$user' AND recurrence IS NULL" >"$work/plain"

rec=(); plain=(); rec_p99=(); plain_p99=()
for r in $(seq 1 "$repeats"); do
  from=$(( (r - 1) * per_run + 1 ))
  sed -n "${from},$((from + per_run - 1))p" "$work/recurring" >"$work/ids"
  read -r rps p99 bad < <(BENCH_IDS="$work/ids" wrk_run -s "$here/complete.lua" "$base")
  [ "$bad" = 0 ] || echo "recurring run $r: $bad non-2xx" >&2
  rec+=("$rps"); rec_p99+=("$p99")
  sed -n "${from},$((from + per_run - 1))p" "$work/plain" >"$work/ids"
  read -r rps p99 bad < <(BENCH_IDS="$work/ids" wrk_run -s "$here/complete.lua" "$base")
  [ "$bad" = 0 ] || echo "plain run $r: $bad non-2xx" >&2
  plain+=("$rps"); plain_p99+=("$p99")
done
made=$(psql_run "SELECT count(*) FROM task_successions WHERE user_id = '$user'")
stop_server
R=$(m "${rec[@]}"); P=$(m "${plain[@]}")

cat <<EOT
Run: bench/recurrence.sh $secs $repeats on $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ); wrk -t2 -c$conc; medians of $repeats.

Next dates (bench/recurrence.cpp, pinned to one core):
\`\`\`
$engine
\`\`\`

| completion (POST /api/v1/tasks/{id}/complete) | req/s | p99 | ratio |
|---|---|---|---|
| recurring (weekly, Europe/Berlin): completes and writes the next occurrence | $R | $(m "${rec_p99[@]}") ms | $(ratio "$R" "$P") of plain |
| plain task | $P | $(m "${plain_p99[@]}") ms | |

Next occurrences written: $made. Raw: recurring ${rec[*]}; plain ${plain[*]}.
EOT
