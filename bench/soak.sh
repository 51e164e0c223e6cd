#!/usr/bin/env bash
# The fault soak, loopback only and bounded in time: mixed load from several
# users with the server killed (SIGKILL) every minute, PostgreSQL stopped the
# hard way once and the Kafka broker taken away twice, then a checker over
# PostgreSQL, Kafka and every WebSocket client's stream. See bench/soak.py.
#
# usage: bench/soak.sh [duration_seconds=600] [soak.py options...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../scripts/lib.sh"
cd "$TODO_ROOT"

ensure_packages
ensure_node_tooling
build "$TODO_ROOT/build" >/dev/null
export TODO_BINARY="$TODO_ROOT/build/todo-server"
TODO_PG_BIN=$(pg_bin)
export TODO_PG_BIN
duration=${1:-600}
shift || true
exec /usr/bin/python3 "$here/soak.py" --duration "$duration" "$@"
