#!/bin/sh
# Installs what `make bench` needs beyond scripts/setup.sh, only what is missing:
# PeerJS server (npm package `peer`, version pinned in bench/package.json) into
# bench/node_modules.
set -eu
cd "$(dirname "$0")/.."

if [ ! -f bench/node_modules/peer/dist/bin/peerjs.js ]; then
  echo "setup-bench: installing PeerJS server (npm package peer) into bench/node_modules"
  if [ -f bench/package-lock.json ]; then
    (cd bench && npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd bench && npm install --no-audit --no-fund --loglevel=error)
  fi
fi
