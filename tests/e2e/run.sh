#!/bin/sh
# Runs the browser end-to-end tests (node's test runner, TAP output) inside a private
# network namespace: loopback plus a veth pair and a dead-end default route, which
# Chromium needs to gather ICE candidates, while no packet can leave the machine.
# As root it uses `unshare -n`; otherwise a user namespace (`unshare -rn`).
# Run scripts/setup-e2e.sh first. SIG_SERVER_BIN picks the server binary
# (default build/signal-server); extra arguments go to node (--test-name-pattern=…).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

if [ "${SIG_E2E_IN_NETNS:-}" != 1 ]; then
  userns=""
  [ "$(id -u)" -ne 0 ] && userns="-r"
  exec env SIG_E2E_IN_NETNS=1 unshare $userns -n sh -c '
    set -e
    ip link set lo up
    ip link add v0 type veth peer name v1
    ip addr add 10.200.0.1/24 dev v0
    ip addr add 10.200.0.2/24 dev v1
    ip link set v0 up
    ip link set v1 up
    ip route add default via 10.200.0.254 dev v0 onlink
    exec "$0" "$@"' "$here/run.sh" "$@"
fi

# --test-timeout bounds the whole file (each test in it has a minute).
exec node --experimental-websocket --disable-warning=ExperimentalWarning \
  --test --test-reporter=tap --test-concurrency=1 --test-timeout=300000 "$@" e2e.test.mjs tls.test.mjs turn.test.mjs
