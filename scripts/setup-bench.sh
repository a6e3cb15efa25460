#!/bin/sh
# Installs what `make bench` needs beyond scripts/setup.sh, only what is missing:
# Debian's python3-matplotlib (plots) and Node.js with npm, then PeerJS server
# (npm package `peer`, version pinned in bench/package.json) into bench/node_modules.
set -eu
cd "$(dirname "$0")/.."

missing=""
for p in python3-matplotlib; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"

if [ -n "$missing" ]; then
  echo "setup-bench: installing$missing"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

if [ ! -f bench/node_modules/peer/dist/bin/peerjs.js ]; then
  echo "setup-bench: installing PeerJS server (npm package peer) into bench/node_modules"
  if [ -f bench/package-lock.json ]; then
    (cd bench && npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd bench && npm install --no-audit --no-fund --loglevel=error)
  fi
fi
