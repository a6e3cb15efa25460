#!/bin/sh
# Installs the Debian packages signal-server needs to build, run and test,
# only those that are missing (so a second run costs one dpkg query).
set -eu

PKGS="make gcc pkg-config xxd libuv1-dev libhttp-parser-dev libssl-dev
libcmocka-dev python3-pytest python3-websockets python3-pytest-timeout"

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

echo "setup: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
