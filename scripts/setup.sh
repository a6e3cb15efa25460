#!/bin/sh
# Installs the Debian packages signal-server needs to build, run and test,
# only those that are missing (so a second run costs one dpkg query).
# A test that needs a new package adds it here, in the same commit.
set -eu
cd "$(dirname "$0")/.."

# build and run
BUILD="make gcc pkg-config xxd libuv1-dev libhttp-parser-dev libssl-dev libjwt-dev libsystemd-dev libhiredis-dev"
# unit and integration tests (tests/unit, tests/integration, bench/run.py --smoke)
TEST="libcmocka-dev python3-pytest python3-pytest-timeout python3-websockets python3-psutil
python3-jwt python3-cryptography redis-server prometheus"
# libFuzzer targets (fuzz/), built with clang
FUZZ="clang libclang-rt-14-dev libfuzzer-14-dev"
# bench/run.py, whose smoke mode runs in `make test` (it imports matplotlib for its plots)
BENCH="python3-matplotlib"
# make install, make deb and their tests (tests/packaging): the package build, lintian,
# systemd-analyze, man and groff, logrotate, readelf
PACKAGE="dpkg-dev debhelper lintian systemd man-db groff-base logrotate binutils"

# shellcheck disable=SC2086
exec scripts/apt-install.sh $BUILD $TEST $FUZZ $BENCH $PACKAGE
