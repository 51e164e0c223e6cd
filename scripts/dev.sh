#!/usr/bin/env bash
# One command for a local server: installs what is missing, builds, starts a
# private PostgreSQL under .local/ (unless DATABASE_URL is set), and runs
# todo-server on :8080 (PORT to change). Ctrl-C stops everything it started.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$TODO_ROOT"

ensure_packages
build "$TODO_ROOT/build"

mkdir -p .local
started_pg=""
cleanup() {
  if [ -n "${server_pid:-}" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  [ -n "$started_pg" ] && pg_stop "$started_pg"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${DATABASE_URL:-}" ]; then
  pg_data=$(pg_data_dir "$TODO_ROOT/.local/pg")
  pg_port_file="$TODO_ROOT/.local/pg.port"
  if [ -f "$pg_data/postmaster.pid" ] && pg_run "$(pg_bin)/pg_ctl" -D "$pg_data" status >/dev/null 2>&1; then
    pg_port=$(cat "$pg_port_file")
    echo "==> PostgreSQL already running on 127.0.0.1:$pg_port (left running)"
  else
    pg_port=$(cat "$pg_port_file" 2>/dev/null || free_port)
    echo "==> starting PostgreSQL on 127.0.0.1:$pg_port, data in $pg_data"
    pg_start "$pg_data" "$pg_port"
    echo "$pg_port" >"$pg_port_file"
    started_pg="$pg_data"
  fi
  export DATABASE_URL="postgresql://todo@127.0.0.1:$pg_port/todo"
fi

if [ -z "${JWT_SECRET:-}" ] && [ -z "${JWT_PUBLIC_KEY_FILE:-}" ]; then
  [ -f .local/jwt-secret ] || head -c 48 /dev/urandom | base64 | tr -d '\n/+=' >.local/jwt-secret
  JWT_SECRET=$(cat .local/jwt-secret)
  export JWT_SECRET
fi
export PORT="${PORT:-8080}"
export BIND_ADDRESS="${BIND_ADDRESS:-127.0.0.1}"

cat <<EOT

todo-server is starting on http://127.0.0.1:$PORT

  TOKEN=\$(JWT_SECRET=\$(cat .local/jwt-secret) ./build/todo-server token --user alice)
  curl -s -X POST localhost:$PORT/api/v1/tasks -H "Authorization: Bearer \$TOKEN" \\
       -H 'Content-Type: application/json' -d '{"title": "Water the plants", "priority": "high"}'
  curl -s localhost:$PORT/api/v1/tasks -H "Authorization: Bearer \$TOKEN"

Ctrl-C stops the server and the PostgreSQL this script started.

EOT
./build/todo-server &
server_pid=$!
wait "$server_pid"
