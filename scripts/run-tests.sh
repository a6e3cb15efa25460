#!/bin/sh
# The whole test suite, as `make test` runs it: cmocka unit tests, plain and under
# ASan+UBSan; each libFuzzer target for 20 s; the pytest integration suite against
# the release build and again against the ASan+UBSan build (where any sanitizer
# report fails the run); the packaging tests (make install, the unit, the man page,
# make deb); the benchmark's smoke mode and the self-test of its load generator
# against deliberately broken servers; real-WebRTC browser tests last (node's
# pass/fail lines close the output).
set -eu
cd "$(dirname "$0")/.."
PYTHON=/usr/bin/python3

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

echo "== unit tests"
for t in build/tests/test_* build/asan/tests/test_*; do
  [ -x "$t" ] || continue
  echo "-- $t"
  "$t"
done

echo "== fuzz targets, 20 s each (make fuzz runs them longer)"
scripts/fuzz.sh 20 $(ls fuzz/fuzz_*.c | sed 's|fuzz/fuzz_||; s|\.c$||')

run_integration() {
  echo "== integration tests: $1"
  SIG_SERVER_BIN="$1" "$PYTHON" -m pytest -q -p no:cacheprovider tests/integration
}

run_integration build/signal-server
run_integration build/asan/signal-server

echo "== packaging: make install, the systemd unit, the man page, logrotate, make deb and lintian (~40 s)"
"$PYTHON" -m pytest -q -p no:cacheprovider tests/packaging

echo "== benchmark harness, smoke mode (seconds; the full run is make bench)"
"$PYTHON" bench/run.py --smoke

echo "== benchmark generator self-test: its JSON parser, then the real server passes and broken servers fail (~30 s)"
build/bench/test_bjson
"$PYTHON" bench/run.py --self-test

echo "== browser end-to-end tests"
scripts/setup-e2e.sh
tests/e2e/run.sh
