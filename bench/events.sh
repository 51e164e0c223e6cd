#!/usr/bin/env bash
# Benchmarks of the event log and its Kafka mirror (embedded broker):
# commit → delivery report lag at a fixed create rate (open loop), and how
# fast a backlog drains. Loopback only; bounded in time.
#
# usage: bench/events.sh [seconds=10] [rate=3000] [backlog=200000]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-10}
rate=${2:-3000}
backlog=${3:-200000}
conc=32
. "$here/common.sh"

port=$(free_port)
start_server "$port"
base="http://127.0.0.1:$port"
# Warm up: the producer connects and gets its idempotence id.
/usr/bin/python3 "$here/openloop.py" "$port" 200 2 "$work/tokens" >/dev/null
curl -s "$base/metrics" >"$work/before"
loop=$(/usr/bin/python3 "$here/openloop.py" "$port" "$rate" "$secs" "$work/tokens")
until curl -s "$base/ready" | jq -e '.kafka_lag == 0' >/dev/null; do sleep 0.1; done
curl -s "$base/metrics" >"$work/after"
lag=$(/usr/bin/python3 "$here/percentile.py" todo_kafka_publish_lag_seconds "$work/before" "$work/after")
stop_server

# A backlog: events committed while no relay ran (as after a long broker
# outage), written straight into the log.
psql_run "INSERT INTO user_sequences (user_id, last_seq) SELECT 'drain-' || u, $backlog / 100 FROM generate_series(0, 99) u
          ON CONFLICT (user_id) DO NOTHING;
          INSERT INTO events (user_id, seq, id, type, subject, time, summary, data)
          SELECT 'drain-' || (i % 100), i / 100 + 1, gen_random_uuid(), 'com.todo.task.updated', 'x', now(), 's',
                 '{\"task\":{\"id\":\"x\",\"title\":\"backlog\"},\"changes\":{}}'
          FROM generate_series(0, $backlog - 1) i" >/dev/null
port=$(free_port)
t0=$(date +%s%N)
start_server "$port"
delivered_now() { curl -s "http://127.0.0.1:$port/metrics" | awk '/^todo_kafka_events_delivered_total/ {print $2}'; }
until [ "$(delivered_now)" -ge "$backlog" ] 2>/dev/null; do sleep 0.05; done
t1=$(date +%s%N)
drain_ms=$(( (t1 - t0) / 1000000 ))
delivered=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^todo_kafka_events_delivered_total/ {print $2}')
stop_server

cat <<EOT
Run: bench/events.sh $secs $rate $backlog on $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ); embedded broker; each event is two records (task-events and task-updates).

| measure | result |
|---|---|
| creates offered open loop at $rate/s for $secs s | $loop |
| commit → delivery report, over those events | $lag |
| backlog of $backlog events drained (start to lag 0, including start-up) | $drain_ms ms, $(awk -v n="$backlog" -v ms="$drain_ms" 'BEGIN {printf "%.0f", n / (ms / 1000)}') events/s ($delivered delivered) |
EOT
