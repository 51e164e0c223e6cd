#!/usr/bin/env bash
# Benchmarks of the foundation: create and read throughput beside pgbench
# running the same SQL and beside /health, open-loop create latency, idle
# memory and time to ready. Loopback only; bounded in time.
#
# usage: bench/run.sh [seconds-per-run=10] [repeats=3]
# Prints a Markdown report; docs/BENCHMARKS.md records one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../scripts/lib.sh"
cd "$TODO_ROOT"
secs=${1:-10}
repeats=${2:-3}
conc=32

ensure_packages wrk
build "$TODO_ROOT/build" >/dev/null

work=$(mktemp -d /tmp/todo-bench.XXXXXX)
pg_data=$(pg_data_dir "$work/pg")
pg_port=$(free_port)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  pg_stop "$pg_data"
  rm -rf "$work"
  [ "$pg_data" = "$work/pg" ] || rm -rf "$pg_data"
}
trap cleanup EXIT INT TERM

# PostgreSQL with its default durability: every commit is fsynced.
pg_start "$pg_data" "$pg_port"
export DATABASE_URL="postgresql://todo@127.0.0.1:$pg_port/todo"
export JWT_SECRET="bench-secret-0123456789abcdefghijklmnop"
# The read benchmark reads one user's task as fast as it can: keep the
# limiter in the path but out of the way.
export RATE_LIMIT=1000000 RATE_LIMIT_BURST=1000000
bin=$(pg_bin)

start_server() {
  local port=$1
  PORT=$port BIND_ADDRESS=127.0.0.1 ./build/todo-server >"$work/server.log" 2>&1 &
  server_pid=$!
  until curl -sf "http://127.0.0.1:$port/ready" >/dev/null 2>&1; do sleep 0.02; done
}
stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid" || true
  server_pid=""
}

port=$(free_port)
start_server "$port"
base="http://127.0.0.1:$port"

for i in $(seq 1 200); do ./build/todo-server token --user "bench-$i" --ttl 2h; done >"$work/tokens"
read_token=$(head -n 1 "$work/tokens")
read_id=$(curl -sf -X POST "$base/api/v1/tasks" -H "Authorization: Bearer $read_token" \
  -H 'Content-Type: application/json' -d '{"title":"read me","tags":["a"]}' | jq -r .id)
export BENCH_DIR="$here" BENCH_TOKENS="$work/tokens" BENCH_READ_TOKEN="$read_token" BENCH_READ_ID="$read_id"

# wrk: prints "rps p99_ms"
wrk_run() {
  wrk -t2 -c"$conc" -d"${secs}s" --latency "$@" 2>/dev/null | awk '
    /Requests\/sec/ {rps=$2}
    /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; p99=v}
    /Non-2xx/ {bad=$NF}
    END {printf "%.0f %.2f %s\n", rps, p99, (bad==""?0:bad)}'
}
pgbench_run() {
  pg_run "$bin/pgbench" -h 127.0.0.1 -p "$pg_port" -U todo -n -M prepared -c "$conc" -j 2 -T "$secs" "$@" todo 2>/dev/null |
    awk '/^tps/ {printf "%.0f\n", $3} /latency average/ {}'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -a h_rps c_rps c_p99 r_rps r_p99 pc_tps pr_tps c_bad r_bad
for r in $(seq 1 "$repeats"); do
  read -r rps p99 bad < <(wrk_run "$base/health"); h_rps+=("$rps")
  read -r rps p99 bad < <(wrk_run -s "$here/create.lua" "$base"); c_rps+=("$rps"); c_p99+=("$p99"); c_bad+=("$bad")
  pc_tps+=("$(pgbench_run -f "$here/create.sql")")
  read -r rps p99 bad < <(wrk_run -s "$here/read.lua" "$base"); r_rps+=("$rps"); r_p99+=("$p99"); r_bad+=("$bad")
  pr_tps+=("$(pgbench_run -D uid="bench-1" -D tid="$read_id" -f "$here/read.sql")")
done
m() { printf '%s\n' "$@" | median; }
H=$(m "${h_rps[@]}"); C=$(m "${c_rps[@]}"); CP=$(m "${c_p99[@]}"); R=$(m "${r_rps[@]}"); RP=$(m "${r_p99[@]}")
PC=$(m "${pc_tps[@]}"); PR=$(m "${pr_tps[@]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

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
| create (POST /api/v1/tasks), req/s | $C (p99 $CP ms, non-2xx: ${c_bad[*]}) | pgbench, same INSERT: $PC tps | $(ratio "$C" "$PC") |
| read (GET /api/v1/tasks/{id}), req/s | $R (p99 $RP ms, non-2xx: ${r_bad[*]}) | pgbench, same SELECT: $PR tps | $(ratio "$R" "$PR") |
| GET /health, req/s | $H | | |
| create, open loop at 2,000/s | $openloop | | |
| idle RSS, pool connected ($open connections) | $((rss_kib / 1024)) MiB ($rss_kib KiB) | | |
| exec to /ready 200 (median of 10) | $READY ms | | |

Raw: create ${c_rps[*]}; pgbench insert ${pc_tps[*]}; read ${r_rps[*]}; pgbench select ${pr_tps[*]}; health ${h_rps[*]}; ready ms ${ready_ms[*]}.
EOT
