#!/usr/bin/env bash
# Benchmarks of finding tasks: the first page of three listing shapes for a
# user with 100,000 tasks among 1,000,000 (10,000 users), each beside
# pgbench running the very statement the server builds (bench/listing_sql),
# in the same run: planned each time as the server sends it (-M extended),
# and planned once (-M prepared). Also prints the plans at that size.
# Loopback only; bounded in time.
#
# usage: bench/listing.sh [seconds-per-run=10] [repeats=3]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-10}
repeats=${2:-3}
conc=16
. "$here/common.sh"
cmake --build "$TODO_ROOT/build" --target listing_sql >/dev/null
chmod 755 "$work"  # pgbench runs as the postgres user when we are root

port=$(free_port)
start_server "$port"  # applies the migrations
base="http://127.0.0.1:$port"
big=bench-big

# 1,000,000 tasks: 100,000 for one user, 100 each for 9,000 others. Titles
# from a small vocabulary (so a word prefix matches about 1 task in 8), 50
# tags, a quarter without due_at, a third completed.
t0=$(date +%s)
psql_run "
INSERT INTO tasks (id, user_id, title, description, completed, priority, tags, due_at, created_at, updated_at)
SELECT gen_random_uuid(),
       CASE WHEN g <= 100000 THEN '$big' ELSE 'bench-u' || (g % 9000) END,
       (ARRAY['plants','report','garden','taxes','call','groceries','review','dentist'])[1 + g % 8] || ' ' ||
         (ARRAY['monday','weekly','budget','kitchen','team','school'])[1 + (g / 8) % 6] || ' ' || g,
       CASE WHEN g % 3 = 0 THEN 'notes for ' || g ELSE '' END,
       g % 3 = 1, (g * 7) % 5,
       ARRAY['t' || (g % 50), 't' || ((g / 50) % 50)],
       CASE WHEN g % 4 = 0 THEN NULL ELSE now() + ((g * 37) % 20000 - 10000) * interval '1 hour' END,
       now() - g * interval '1 second', now()
FROM generate_series(1, 1000000) g"
psql_run "VACUUM ANALYZE tasks"
load_s=$(( $(date +%s) - t0 ))

token=$(./build/todo-server token --user "$big" --ttl 2h)
export BENCH_LIST_TOKEN="$token"

# wrk with --latency: "rps p50_ms p99_ms non2xx"
wrk_latency() {
  wrk -t2 -c"$conc" -d"${secs}s" --latency "$@" 2>/dev/null | awk '
    function ms(v) { if (v ~ /us$/) {sub(/us/,"",v); return v/1000} if (v ~ /ms$/) {sub(/ms/,"",v); return v} sub(/s/,"",v); return v*1000 }
    /Requests\/sec/ {rps=$2}
    /^ +50%/ {p50=ms($2)}
    /^ +99%/ {p99=ms($2)}
    /Non-2xx/ {bad=$NF}
    END {printf "%.0f %.2f %.2f %s\n", rps, p50, p99, (bad==""?0:bad)}'
}

shapes=("sort=-priority,due_at" "tag=t7" "q=plan")
rows=""
raw=""
plans=""
for shape in "${shapes[@]}"; do
  ./build/bench/listing_sql "$big" "$shape" >"$work/shape.sql"
  export BENCH_LIST_QUERY="$shape"
  items=$(curl -sf "$base/api/v1/tasks?$shape" -H "Authorization: Bearer $token" | jq '.items | length')
  rps=(); p50=(); p99=(); bad=(); tps=(); tpx=()
  for _ in $(seq 1 "$repeats"); do
    read -r a b c d < <(wrk_latency -s "$here/list.lua" "$base")
    rps+=("$a"); p50+=("$b"); p99+=("$c"); bad+=("$d")
    tpx+=("$(PGBENCH_MODE=extended pgbench_run -f "$work/shape.sql")")
    tps+=("$(pgbench_run -f "$work/shape.sql")")
  done
  R=$(m "${rps[@]}"); T=$(m "${tps[@]}"); X=$(m "${tpx[@]}")
  rows+="| \`GET /api/v1/tasks?$shape\` ($items items) | $R req/s, p50 $(m "${p50[@]}") ms, p99 $(m "${p99[@]}") ms (non-2xx: ${bad[*]}) | $X tps | $(ratio "$R" "$X") | $T tps | $(ratio "$R" "$T") |
"
  plans+="
\`$shape\`:
\`\`\`
$(psql_run "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) $(cat "$work/shape.sql")")
\`\`\`
"
  raw+=" $shape: server ${rps[*]} / pgbench extended ${tpx[*]} / pgbench prepared ${tps[*]};"
done
stop_server

cat <<EOT
Run: bench/listing.sh $secs $repeats on $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ); 1,000,000 tasks (loaded in ${load_s} s), the listing user has 100,000; wrk -t2 -c$conc, pgbench -c$conc -j2; medians of $repeats; first pages of 50.

| listing | todo-server | pgbench -M extended, the same statement | ratio | pgbench -M prepared | ratio |
|---|---|---|---|---|---|
$rows
Raw:$raw

Plans at this size (EXPLAIN ANALYZE of the statements above):
$plans
EOT
