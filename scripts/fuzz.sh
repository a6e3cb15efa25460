#!/bin/sh
# Runs libFuzzer targets: scripts/fuzz.sh SECONDS TARGET... (targets are the X of
# fuzz/fuzz_X.c, built as build/fuzz/fuzz_X). Each runs for SECONDS on its own corpus
# (build/fuzz/corpus/X, seeded from fuzz/corpus/X) with its dictionary, two at a time;
# a crash leaves its input in build/fuzz/ and fails the run. Prints each target's
# executions per second and coverage from libFuzzer's last status line.
set -eu
cd "$(dirname "$0")/.."
seconds=$1
shift
mkdir -p build/fuzz/corpus build/fuzz/logs
run_one() {
  t=$1
  mkdir -p "build/fuzz/corpus/$t"
  dict=""
  [ -f "fuzz/$t.dict" ] && dict="-dict=fuzz/$t.dict"
  # shellcheck disable=SC2086
  if "build/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
      -print_final_stats=1 -artifact_prefix="build/fuzz/$t-" $dict \
      "build/fuzz/corpus/$t" "fuzz/corpus/$t" >"build/fuzz/logs/$t.log" 2>&1; then
    last=$(grep -E '^#[0-9]+' "build/fuzz/logs/$t.log" | tail -1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "build/fuzz/logs/$t.log")
    echo "fuzz $t: ok, $execs runs in ${seconds}s ($((execs / seconds))/s); $last"
  else
    echo "fuzz $t: FAILED (build/fuzz/logs/$t.log)"
    tail -40 "build/fuzz/logs/$t.log"
    return 1
  fi
}
export seconds
status=0
pids=""
for t in "$@"; do
  run_one "$t" &
  pids="$pids $!"
  set -- $pids
  if [ $# -ge 2 ]; then
    wait "$1" || status=1
    shift
    pids="$*"
  fi
done
for p in $pids; do wait "$p" || status=1; done
exit $status
