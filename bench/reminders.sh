#!/usr/bin/env bash
# Reminder benchmarks, loopback only, bounded in time:
#  1. N reminders spread over the next SPAN seconds, embedded scheduler:
#     lateness (due event time - fire_at) p50/p99/max, and the server's CPU
#     and RSS while they fire;
#  2. 10,000 reminders due in the same second, 100 users each with a
#     WebSocket: when the last due frame arrived (three rounds, median);
#  3. idle: 10,000 reminders an hour away, CPU over 30 s, against the same
#     server idle before any reminder existed;
#  4. scheduling throughput: 10,000 reminders scheduled (row -> job
#     acknowledged) with the embedded scheduler and through the stand-in Dapr
#     sidecar (a Python process: its own speed is part of the figure).
#
# usage: bench/reminders.sh [reminders=100000] [span_seconds=600]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
n=${1:-100000}
span=${2:-600}
# common.sh reads these (wrk and pgbench settings) though nothing here uses them.
# shellcheck disable=SC2034
secs=10 conc=1
. "$here/common.sh"
export RATE_LIMIT=0
lead=60

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# CPU percent of one core used by pid $1 over $2 seconds.
cpu_over() {
  local a b
  a=$(cpu_ticks "$1")
  sleep "$2"
  b=$(cpu_ticks "$1")
  awk -v d=$((b - a)) -v s="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", 100 * d / hz / s}'
}
rss_mib() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
lateness() {  # of the due events after log position $1
  psql_run "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY l)::numeric, 1) || ' / ' ||
              round(percentile_cont(0.99) WITHIN GROUP (ORDER BY l)::numeric, 1) || ' / ' ||
              round(max(l)::numeric, 1) || ' ms (min ' || round(min(l)::numeric, 1) || ' ms, ' || count(*) || ' fired)'
            FROM (SELECT extract(epoch FROM time - (data::jsonb #>> '{reminder,fire_at}')::timestamptz) * 1000 AS l
                  FROM events WHERE type = 'com.todo.reminder.due' AND pos > $1) x"
}
synced_after() {  # seconds until $1 reminders rows are acknowledged by the scheduler
  local want=$1 t0
  t0=$(date +%s.%N)
  until [ "$(psql_run "SELECT count(*) FROM reminders WHERE job_synced")" -ge "$want" ]; do sleep 0.2; done
  awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'
}

port=$(free_port)
start_server "$port"
sleep 5
# The baseline: the same server idle with no reminders at all.
cpu_base=$(cpu_over "$server_pid" 30)

# 1. spread
created=$(/usr/bin/python3 "$here/reminders.py" "$port" "$work/tokens" create "$n" "$lead" "$span")
sleep $((lead / 2))
rss_wait=$(rss_mib "$server_pid")
sleep $((lead / 2))
cpu_firing=$(cpu_over "$server_pid" "$span")
rss_firing=$(rss_mib "$server_pid")
sleep 5
spread=$(lateness 0)
unfired=$(psql_run "SELECT count(*) FROM reminders WHERE state = 'scheduled'")
# A reminder the reminders module never saw has no row there: count those
# the tasks still show as scheduled and overdue.
unseen=$(psql_run "SELECT count(*) FROM tasks t, jsonb_array_elements(t.reminders) r
                   WHERE r->>'state' = 'scheduled' AND (r->>'fire_at')::timestamptz < now() - interval '2 seconds'
                   AND NOT EXISTS (SELECT 1 FROM reminders m WHERE m.id = (r->>'id')::uuid)")
if [ "$unfired" != 0 ] || [ "$unseen" != 0 ]; then
  psql_run "SELECT r.id, r.fire_at, r.job_synced, j.due_at, j.claimed_until FROM reminders r
            LEFT JOIN scheduler_jobs j ON j.name = 'r-' || r.id WHERE r.state = 'scheduled' LIMIT 20" >&2
fi

# 2. burst, three times: the median of when the last frame arrived
burst=""
lasts=()
for round in 1 2 3; do
  before_burst=$(psql_run "SELECT coalesce(max(pos), 0) FROM events")
  one=$(/usr/bin/python3 "$here/reminders.py" "$port" "$work/tokens" burst 10000 30)
  burst="$burst<br>$round: $one; lateness p50 / p99 / max $(lateness "$before_burst")"
  # A round that lost frames counts as never finished.
  lasts+=("$(echo "$one" | jq -r 'if .received == .due then .last_frame_after_s else 1e9 end')")
done
burst_median=$(printf '%s\n' "${lasts[@]}" | sort -g | sed -n 2p)

# 3. idle
/usr/bin/python3 "$here/reminders.py" "$port" "$work/tokens" create 10000 3600 60 >/dev/null
sleep 10
cpu_idle=$(cpu_over "$server_pid" 30)
stop_server

# 4. scheduling throughput, embedded then through the sidecar
psql_run "TRUNCATE reminders, scheduler_jobs" >/dev/null
start_server "$port"
base=$(psql_run "SELECT count(*) FROM reminders WHERE job_synced")
/usr/bin/python3 "$here/reminders.py" "$port" "$work/tokens" create 10000 3600 60 >/dev/null &
creator=$!
embedded_s=$(synced_after $((base + 10000)))
wait "$creator"
stop_server
psql_run "TRUNCATE reminders, scheduler_jobs" >/dev/null
sidecar_port=$(free_port)
# The sidecar's state store is the same table: the follower resumes from its
# checkpoint there instead of replaying the whole log.
/usr/bin/python3 "$here/../tests/support/dapr_sidecar.py" --port "$sidecar_port" --app-port "$port" \
  --pg-dsn "$DATABASE_URL" >"$work/sidecar.out" 2>"$work/sidecar.log" &
sidecar_pid=$!
until grep -q listening "$work/sidecar.out"; do sleep 0.05; done
DAPR_HTTP_PORT=$sidecar_port start_server "$port"
/usr/bin/python3 "$here/reminders.py" "$port" "$work/tokens" create 10000 3600 60 >/dev/null &
creator=$!
dapr_s=$(synced_after 10000)
wait "$creator"
stop_server
kill "$sidecar_pid"
wait "$sidecar_pid" || true

cat <<EOT
Run: bench/reminders.sh $n $span on $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ). Created: $created.

| measure | result |
|---|---|
| $n reminders over $span s: lateness p50 / p99 / max | $spread; not fired 5 s after the last was due: $unfired (and $unseen the reminders module never saw) |
| server while they fire: CPU (one core = 100%), RSS | $cpu_firing %, $rss_firing MiB (RSS $rss_wait MiB before the first fired) |
| 10,000 due in one second, 100 WebSocket users: last due frame after the second began, median of 3 | $burst_median s$burst |
| idle CPU, 10,000 reminders an hour away, 30 s | $cpu_idle % (the same server before any reminder: $cpu_base %) |
| 10,000 reminders scheduled, embedded scheduler | $embedded_s s ($(awk -v s="$embedded_s" 'BEGIN {printf "%.0f", 10000 / s}')/s) |
| 10,000 reminders scheduled, stand-in Dapr sidecar | $dapr_s s ($(awk -v s="$dapr_s" 'BEGIN {printf "%.0f", 10000 / s}')/s; ratio to embedded $(ratio "$embedded_s" "$dapr_s")) |
EOT
