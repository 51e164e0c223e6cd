#!/usr/bin/env bash
# Shared by dev.sh and test.sh: packages, build, a private PostgreSQL.
# Sourced, not run.

TODO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian packages the build and the tests need.
TODO_PACKAGES=(
  cmake ninja-build g++ ccache pkg-config
  libboost1.81-dev libpq-dev librdkafka-dev libsimdjson-dev libssl-dev
  libhowardhinnant-date-dev tzdata catch2 libcurl4-openssl-dev
  postgresql-15 postgresql-client-15
  curl jq python3 python3-dateutil python3-yaml kcat
  python3-websockets python3-aiosmtpd python3-psycopg2
  yamllint shellcheck prometheus
  clang libclang-rt-14-dev
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "need root (or sudo) to run: $*" >&2
    return 1
  fi
}

ensure_packages() {
  local missing=()
  local p
  for p in "${TODO_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

# build DIR [cmake args...]
build() {
  local dir=$1
  shift
  export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
  # Hits across checkouts in other directories, and with the precompiled header.
  export CCACHE_BASEDIR="$TODO_ROOT"
  export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
  cmake -S "$TODO_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  # TODO_BUILD_TARGETS: only these (space-separated), not everything.
  # shellcheck disable=SC2086 # one word per target
  cmake --build "$dir" -j "$(nproc)" ${TODO_BUILD_TARGETS:+--target $TODO_BUILD_TARGETS}
}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

pg_bin() {
  local d
  # shellcheck disable=SC2012 # versioned directory names only
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] || { echo "PostgreSQL server binaries not found" >&2; return 1; }
  echo "$d"
}

# PostgreSQL refuses to run as root: as root, run it as the postgres user.
pg_run() {
  if [ "$(id -u)" -eq 0 ]; then
    # From /, so a private working directory does not trouble the postgres user.
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# pg_start DATADIR PORT [extra postgres -c settings...]: a private cluster on
# 127.0.0.1, trust auth for the local user "todo", database "todo".
pg_start() {
  local data=$1 port=$2
  shift 2
  local bin
  bin=$(pg_bin) || return 1
  mkdir -p "$data"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$data"
    chmod 700 "$data"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    pg_run "$bin/initdb" -D "$data" -U todo -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  local opts="-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$data -c max_connections=200"
  local s
  for s in "$@"; do opts="$opts -c $s"; done
  pg_run "$bin/pg_ctl" -D "$data" -l "$data/server.log" -o "$opts" -w -t 30 start >/dev/null
  pg_run "$bin/psql" -h 127.0.0.1 -p "$port" -U todo -d postgres -qtAc \
    "SELECT 1 FROM pg_database WHERE datname='todo'" | grep -q 1 ||
    pg_run "$bin/createdb" -h 127.0.0.1 -p "$port" -U todo todo
}

pg_stop() {
  local data=$1
  local bin
  bin=$(pg_bin) || return 0
  [ -f "$data/postmaster.pid" ] && pg_run "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1
  return 0
}

# A directory the postgres user can reach when we run as root.
pg_data_dir() {
  local wanted=$1
  if [ "$(id -u)" -ne 0 ]; then
    echo "$wanted"
    return
  fi
  mkdir -p "$wanted"
  chown postgres: "$wanted"
  if runuser -u postgres -- test -w "$wanted"; then
    echo "$wanted"
  else
    local alt
    alt=$(mktemp -d /tmp/todo-pg.XXXXXX)
    chown postgres: "$alt"
    echo "$alt"
  fi
}

# The npm tools of tests/tooling (the workflow linter), installed from its
# package-lock.json; a stamp of that lock file keeps later runs offline.
ensure_node_tooling() {
  local dir="$TODO_ROOT/tests/tooling"
  local stamp="$dir/node_modules/.lock.sha256"
  local want
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> npm ci in tests/tooling"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$stamp"
  fi
}
