#!/usr/bin/env bash
# Benchmarks of the foundation: create and read throughput beside pgbench
# running the same SQL and beside /health, open-loop create latency, idle
# memory and time to ready. Loopback only; bounded in time.
#
# usage: bench/run.sh [seconds-per-run=10] [repeats=3]
# Prints a Markdown report; docs/BENCHMARKS.md records one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-10}
repeats=${2:-3}
conc=32
. "$here/common.sh"

port=$(free_port)
start_server "$port"
base="http://127.0.0.1:$port"
read_token=$(head -n 1 "$work/tokens")
read_id=$(curl -sf -X POST "$base/api/v1/tasks" -H "Authorization: Bearer $read_token" \
  -H 'Content-Type: application/json' -d '{"title":"read me","tags":["a"]}' | jq -r .id)
export BENCH_READ_TOKEN="$read_token" BENCH_READ_ID="$read_id"

# A created event's data, as the server writes it.
event_json='{"task":{"id":"x","title":"Water the plants","description":"","completed":false,"completed_at":null,"priority":"high","tags":["home","weekly"],"due_at":"2026-03-02T17:00:00Z","timezone":"UTC","recurrence":null,"series_id":null,"reminders":[],"version":1,"created_at":"2026-11-25T16:34:17.988Z","updated_at":"2026-11-25T16:34:17.988Z"},"changes":{}}'

declare -a h_rps c_rps c_p99 r_rps r_p99 pc_tps pe_tps pr_tps c_bad r_bad
for _ in $(seq 1 "$repeats"); do
  read -r rps p99 bad < <(wrk_run "$base/health"); h_rps+=("$rps")
  read -r rps p99 bad < <(wrk_run -s "$here/create.lua" "$base"); c_rps+=("$rps"); c_p99+=("$p99"); c_bad+=("$bad")
  pc_tps+=("$(pgbench_run -f "$here/create.sql")")
  pe_tps+=("$(pgbench_run -D data="$event_json" -f "$here/create_event.sql")")
  read -r rps p99 bad < <(wrk_run -s "$here/read.lua" "$base"); r_rps+=("$rps"); r_p99+=("$p99"); r_bad+=("$bad")
  pr_tps+=("$(pgbench_run -D uid="bench-1" -D tid="$read_id" -f "$here/read.sql")")
done
H=$(m "${h_rps[@]}"); C=$(m "${c_rps[@]}"); CP=$(m "${c_p99[@]}"); R=$(m "${r_rps[@]}"); RP=$(m "${r_p99[@]}")
PC=$(m "${pc_tps[@]}"); PE=$(m "${pe_tps[@]}"); PR=$(m "${pr_tps[@]}")

openloop=$(/usr/bin/python3 "$here/openloop.py" "$port" 2000 "$secs" "$work/tokens")
stop_server

# Idle memory with the pool connected: fill the pool with concurrent reads.
port=$(free_port)
start_server "$port"
wrk -t2 -c32 -d2s -s "$here/read.lua" "http://127.0.0.1:$port" >/dev/null 2>&1
sleep 1
open=$(curl -s "http://127.0.0.1:$port/metrics" | awk -F' ' '/^todo_db_pool_connections/ {s+=$2} END {print s}')
rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")
stop_server

# Time from exec to the first 200 from /ready (migrations already applied).
ready_ms=()
for i in $(seq 1 10); do
  port=$(free_port)
  t0=$(date +%s%N)
  start_server "$port"
  t1=$(date +%s%N)
  ready_ms+=("$(( (t1 - t0) / 1000000 ))")
  stop_server
done
READY=$(m "${ready_ms[@]}")

cat <<EOT
Run: bench/run.sh $secs $repeats on $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ); wrk -t2 -c$conc, pgbench -M prepared -c$conc -j2; medians of $repeats.

| measure | todo-server | baseline in the same run | ratio |
|---|---|---|---|
| create (POST /api/v1/tasks, with its event), req/s | $C (p99 $CP ms, non-2xx: ${c_bad[*]}) | pgbench, the same INSERT + event statement: $PE tps | $(ratio "$C" "$PE") |
| the outbox's cost in SQL | pgbench INSERT + event: $PE tps | pgbench, the INSERT alone (no event): $PC tps | $(ratio "$PE" "$PC") |
| create with its event vs a bare INSERT | $C req/s | pgbench, the INSERT alone: $PC tps | $(ratio "$C" "$PC") |
| read (GET /api/v1/tasks/{id}), req/s | $R (p99 $RP ms, non-2xx: ${r_bad[*]}) | pgbench, same SELECT: $PR tps | $(ratio "$R" "$PR") |
| GET /health, req/s | $H | | |
| create, open loop at 2,000/s | $openloop | | |
| idle RSS, pool connected ($open connections) | $((rss_kib / 1024)) MiB ($rss_kib KiB) | | |
| exec to /ready 200 (median of 10) | $READY ms | | |

Raw: create ${c_rps[*]}; pgbench insert ${pc_tps[*]}; pgbench insert+event ${pe_tps[*]}; read ${r_rps[*]}; pgbench select ${pr_tps[*]}; health ${h_rps[*]}; ready ms ${ready_ms[*]}.
EOT
