#!/usr/bin/env bash
# WebSocket benchmarks: commit -> frame latency with many sockets at a
# steady write rate, fan-out of one change to many sockets of one user,
# frames delivered per second in total, and memory per idle socket.
# Loopback only; bounded in time. The steady and idle clients are one Python
# process (python3-websockets); fan-out and throughput use bench/ws_client
# (C++, an epoll loop reading every socket), since a Python client decoding 1,000 frames at once
# measures itself. Every client shares the 2 cores with the server, so its
# own processing time is part of every latency figure.
#
# usage: bench/websocket.sh [sockets=1000] [idle=10000] [writes_per_s=200]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sockets=${1:-1000}
idle=${2:-10000}
rate=${3:-200}
secs=10
conc=1
. "$here/common.sh"
cmake --build "$TODO_ROOT/build" --target ws_client >/dev/null
client="$TODO_ROOT/build/bench/ws_client"
token=$(head -1 "$work/tokens")
# Both processes hold one descriptor per socket.
ulimit -n "$(ulimit -Hn)"
max_idle=$(( $(ulimit -n) - sockets - 200 ))
if [ "$idle" -gt "$max_idle" ]; then
  echo "open-file limit $(ulimit -n): measuring $max_idle idle sockets instead of $idle" >&2
  idle=$max_idle
fi
export WS_MAX_PER_USER=$((idle + sockets)) WS_MAX_CONNECTIONS=$((idle + sockets + 100))

port=$(free_port)
start_server "$port"
steady=$(/usr/bin/python3 "$here/websocket.py" "$port" "$work/tokens" steady "$sockets" 100 100 10)
fanout=$("$client" "$port" "$token" fanout "$sockets" 50)
ticks_before=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
throughput=$("$client" "$port" "$token" rate "$sockets" "$rate" 10)
ticks_after=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
# The server's CPU per frame over the rate phase, in microseconds.
server_us=$(awk -v d=$((ticks_after - ticks_before)) -v hz="$(getconf CLK_TCK)" -v f=$((sockets * rate * 10)) \
  'BEGIN {printf "%.1f", d / hz * 1e6 / f}')

rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")
coproc IDLE { /usr/bin/python3 "$here/websocket.py" "$port" "$work/tokens" idle "$idle"; }
read -r opened <&"${IDLE[0]}"
sleep 1
rss_after=$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")
# Closing the coprocess's stdin tells it to close its sockets and exit.
# shellcheck disable=SC1083,SC2093 # bash's {array[i]}>&- form, not a brace group
exec {IDLE[1]}>&-
wait "$IDLE_PID" || true
stop_server

cat <<EOT
Run: bench/websocket.sh $sockets $idle $rate on $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ).

| measure | result |
|---|---|
| $sockets sockets over 100 users, 100 writes/s for 10 s | $steady |
| one change fanned out to $sockets sockets of one user (50 changes, one at a time) | $fanout |
| $rate changes/s for 10 s, each to $sockets sockets of one user | $throughput; server CPU per frame $server_us µs |
| memory per idle socket | $(( (rss_after - rss_before) / idle )) KiB ($idle sockets: RSS $((rss_before / 1024)) MiB -> $((rss_after / 1024)) MiB; $opened) |
EOT
