#!/usr/bin/env bash
# Shared by the benchmark scripts: a private PostgreSQL with its default
# durability, the server, tokens for many users, and the measuring tools.
# Sourced by bench/*.sh after they set `here`, `secs` and `conc`.
# shellcheck disable=SC2154 # here, secs and conc come from the sourcing script
. "$here/../scripts/lib.sh"
cd "$TODO_ROOT" || exit 1

ensure_packages wrk
build "$TODO_ROOT/build" >/dev/null

work=$(mktemp -d /tmp/todo-bench.XXXXXX)
pg_data=$(pg_data_dir "$work/pg")
pg_port=$(free_port)
server_pid=""
# BENCH_KEEP_LOG=<file>: the server's log is copied there at the end.
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [ -n "${BENCH_KEEP_LOG:-}" ] && cp "$work/server.log" "$BENCH_KEEP_LOG"
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
  PORT=$port BIND_ADDRESS=127.0.0.1 ./build/todo-server >>"$work/server.log" 2>&1 &
  server_pid=$!
  until curl -sf "http://127.0.0.1:$port/ready" >/dev/null 2>&1; do sleep 0.02; done
}
stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid" || true
  server_pid=""
}
psql_run() { pg_run "$bin/psql" -h 127.0.0.1 -p "$pg_port" -U todo -d todo -qAtc "$1"; }

for i in $(seq 1 200); do ./build/todo-server token --user "bench-$i" --ttl 2h; done >"$work/tokens"
export BENCH_DIR="$here" BENCH_TOKENS="$work/tokens"

# wrk: prints "rps p99_ms non2xx"
wrk_run() {
  # shellcheck disable=SC2154 # secs and conc come from the sourcing script
  wrk -t2 -c"$conc" -d"${secs}s" --latency "$@" 2>/dev/null | awk '
    /Requests\/sec/ {rps=$2}
    /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; p99=v}
    /Non-2xx/ {bad=$NF}
    END {printf "%.0f %.2f %s\n", rps, p99, (bad==""?0:bad)}'
}
# PGBENCH_MODE: prepared (default: planned once) or extended (planned each time).
pgbench_run() {
  pg_run "$bin/pgbench" -h 127.0.0.1 -p "$pg_port" -U todo -n -M "${PGBENCH_MODE:-prepared}" -c "$conc" -j 2 -T "$secs" "$@" todo 2>/dev/null |
    awk '/^tps/ {printf "%.0f\n", $3}'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m() { printf '%s\n' "$@" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
