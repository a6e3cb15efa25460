#!/bin/sh
# Installs what the browser end-to-end tests (tests/e2e) need, only what is missing:
# Debian's chromium, iproute2 and coturn (the TURN test starts its turnserver) (apt-get,
# after an apt-get update), then the npm packages pinned in tests/e2e/package-lock.json
# (npm ci) if node_modules is absent.
# Node.js 20 and npm come with the machine.
set -eu
cd "$(dirname "$0")/.."

scripts/apt-install.sh chromium iproute2 coturn

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "setup-e2e: $tool is not installed (Node.js 20 is needed)" >&2; exit 1; }
done
if [ ! -d tests/e2e/node_modules ]; then
  echo "setup-e2e: npm ci in tests/e2e"
  (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
fi
