#!/bin/sh
# The whole test suite, as `make test` runs it: cmocka unit tests, then the
# pytest integration suite against the release build and again against the
# ASan+UBSan build (where any sanitizer report fails the run).
set -eu
cd "$(dirname "$0")/.."
PYTHON=/usr/bin/python3

echo "== unit tests"
for t in build/tests/test_*; do
  [ -x "$t" ] || continue
  echo "-- $t"
  "$t"
done

run_integration() {
  echo "== integration tests: $1"
  SIG_SERVER_BIN="$1" "$PYTHON" -m pytest -q -p no:cacheprovider tests/integration
}

run_integration build/signal-server
ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  run_integration build/asan/signal-server

echo "== browser end-to-end tests"
scripts/setup-e2e.sh
tests/e2e/run.sh
