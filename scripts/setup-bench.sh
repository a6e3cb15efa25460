#!/bin/sh
# Installs what `make bench` needs beyond scripts/setup.sh, only what is missing:
# Go and gorilla/websocket from Debian (the Go peer, bench/goserver, built offline), nginx
# (terminating TLS in front of the plain server, beside signal-server's own TLS), and the
# npm packages pinned in bench/package-lock.json into bench/node_modules: PeerJS server
# (`peer`) with the optional native add-ons of its WebSocket library (`bufferutil`,
# `utf-8-validate`).
set -eu
cd "$(dirname "$0")/.."

scripts/apt-install.sh golang-go golang-github-gorilla-websocket-dev nginx valgrind

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "setup-bench: $tool is not installed (Node.js 20 is needed)" >&2; exit 1; }
done
if [ ! -f bench/node_modules/peer/dist/bin/peerjs.js ] || [ ! -f bench/node_modules/bufferutil/package.json ] ||
  [ ! -f bench/node_modules/utf-8-validate/package.json ]; then
  echo "setup-bench: npm ci in bench (PeerJS server, bufferutil, utf-8-validate)"
  (cd bench && npm ci --no-audit --no-fund --loglevel=error)
fi
