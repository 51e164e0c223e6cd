#!/usr/bin/env bash
# Installs what is missing, builds, starts a private PostgreSQL on a free
# loopback port, runs every test through ctest, and stops what it started.
#
# usage: scripts/test.sh [--sanitize | --tsan]
#   --sanitize  the same suite against an AddressSanitizer + UndefinedBehavior-
#               Sanitizer build (build-sanitize/); any report fails the test
#   --tsan      the integration tests (the database pool, the event bus, the
#               Kafka producer, outbound transfers, the WebSocket writer's
#               socket: the code that runs on several threads) against a
#               ThreadSanitizer build (build-tsan/); any report fails them
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$TODO_ROOT"

build_dir="$TODO_ROOT/build"
cmake_args=()
ctest_args=()
case "${1:-}" in
  "") ;;
  --sanitize)
    build_dir="$TODO_ROOT/build-sanitize"
    cmake_args=(-DTODO_SANITIZE=ON)
    # A finding ends the process with an error: tests that expect exit 0
    # (SIGTERM drains) or answers fail with it.
    export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:strict_string_checks=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    ;;
  --tsan)
    build_dir="$TODO_ROOT/build-tsan"
    cmake_args=(-DTODO_TSAN=ON)
    export TODO_BUILD_TARGETS=integration_tests
    export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
    ctest_args=(-R '^integration$')
    ;;
  *) echo "usage: scripts/test.sh [--sanitize | --tsan]" >&2; exit 2 ;;
esac

ensure_packages python3-websockets
# Debian's kubectl (kustomize built in) renders k8s/ in the deploy test,
# unless a kubectl is there already (another vendor's package would clash).
command -v kubectl >/dev/null 2>&1 || ensure_packages kubernetes-client
# Debian's npm only where Node.js brought none (NodeSource's nodejs has it).
command -v npm >/dev/null 2>&1 || ensure_packages npm
ensure_node_tooling
build "$build_dir" "${cmake_args[@]}"

run_dir=$(mktemp -d /tmp/todo-test.XXXXXX)
pg_data=$(pg_data_dir "$run_dir/pg")
pg_port=$(free_port)
cleanup() {
  pg_stop "$pg_data"
  rm -rf "$run_dir"
  [ "$pg_data" = "$run_dir/pg" ] || rm -rf "$pg_data"
}
trap cleanup EXIT INT TERM

# The server crash tests do not crash PostgreSQL, so its own durability is
# traded for speed here. Benchmarks use the defaults.
pg_start "$pg_data" "$pg_port" fsync=off synchronous_commit=off full_page_writes=off

export TODO_TEST_DATABASE_URL="postgresql://todo@127.0.0.1:$pg_port/todo"
export TODO_BINARY="$build_dir/todo-server"
export TODO_PG_BIN
TODO_PG_BIN=$(pg_bin)

cd "$build_dir"
ctest --output-on-failure -j "$(nproc)" --timeout 600 "${ctest_args[@]}"
