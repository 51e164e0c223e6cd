#!/usr/bin/env bash
# The libFuzzer targets of tests/fuzz/ (see tests/fuzz/README.md), built
# with clang under ASan and UBSan in build-fuzz/.
#
# usage: scripts/fuzz.sh build
#        scripts/fuzz.sh smoke TARGET [SECONDS]
#            TARGET over its seed corpus for SECONDS (default 3); what it
#            finds new is thrown away. ctest runs this for every target.
#        scripts/fuzz.sh run TARGET SECONDS [libFuzzer flags...]
#            a long run; new inputs are kept in build-fuzz/corpus/TARGET,
#            crashes in build-fuzz/crash-*
set -euo pipefail
. "$(dirname "$0")/lib.sh"

fuzz_dir="$TODO_ROOT/build-fuzz"
seeds="$TODO_ROOT/tests/fuzz/corpus"
# A leak or a slow input is a finding too: one input over 10 s is a hang.
common=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "-artifact_prefix=$fuzz_dir/")

target_binary() {
  local bin="$fuzz_dir/tests/fuzz/fuzz_$1"
  [ -x "$bin" ] || { echo "no fuzz target $1 (run: scripts/fuzz.sh build)" >&2; return 1; }
  [ -d "$seeds/$1" ] || { echo "no seed corpus $seeds/$1" >&2; return 1; }
  echo "$bin"
}

case "${1:-}" in
  build)
    build "$fuzz_dir" -DTODO_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++
    ;;
  smoke)
    bin=$(target_binary "${2:?target}")
    out=$(mktemp -d /tmp/todo-fuzz.XXXXXX)
    trap 'rm -rf "$out"' EXIT
    "$bin" "${common[@]}" -max_total_time="${3:-3}" "$out" "$seeds/$2"
    ;;
  run)
    bin=$(target_binary "${2:?target}")
    mkdir -p "$fuzz_dir/corpus/$2"
    "$bin" "${common[@]}" -max_total_time="${3:?seconds}" "${@:4}" "$fuzz_dir/corpus/$2" "$seeds/$2"
    ;;
  *)
    echo "usage: scripts/fuzz.sh build | smoke TARGET [SECONDS] | run TARGET SECONDS [flags...]" >&2
    exit 2
    ;;
esac
