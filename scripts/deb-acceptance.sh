#!/bin/sh
# The package's acceptance on this machine, on purpose (make test never installs it): installs
# build/signal-server_VERSION_ARCH.deb with dpkg, checks what it installed (the unit verified,
# enabled; --check-config of the installed configuration; the man page renders), then purges it
# and checks that nothing is left. Refuses when signal-server is installed already (it would be
# replaced, then purged). As root; run `make deb` first.
set -eu
cd "$(dirname "$0")/.."

deb=build/signal-server_$(cat VERSION)_$(dpkg --print-architecture).deb
[ -f "$deb" ] || { echo "deb-acceptance: no $deb (run make deb first)" >&2; exit 1; }
state=$(dpkg-query -W -f='${db:Status-Status}' signal-server 2>/dev/null || true)
if [ -n "$state" ] && [ "$state" != "not-installed" ]; then
  echo "deb-acceptance: signal-server is on this machine already ($state): not touching it" >&2
  exit 1
fi

purge() { dpkg --purge signal-server >/dev/null 2>&1 || true; }
trap purge EXIT

step() { echo "== $*"; }
step "dpkg -i $deb"
dpkg -i "$deb"
step "the unit, verified where it was installed"
(cd / && systemd-analyze verify /lib/systemd/system/signal-server.service)
step "enabled (multi-user.target.wants)"
test -L /etc/systemd/system/multi-user.target.wants/signal-server.service
step "signal-server --check-config on the installed configuration"
/usr/sbin/signal-server --check-config --config /etc/signal-server/signal-server.toml
step "the man page renders"
test -f /usr/share/man/man8/signal-server.8.gz
MANWIDTH=80 man -P cat signal-server | head -n 8
step "dpkg --purge signal-server"
trap - EXIT
dpkg --purge signal-server
for f in /usr/sbin/signal-server /etc/signal-server /etc/logrotate.d/signal-server \
  /lib/systemd/system/signal-server.service /usr/share/man/man8/signal-server.8.gz \
  /etc/systemd/system/multi-user.target.wants/signal-server.service /var/log/signal-server; do
  if [ -e "$f" ] || [ -L "$f" ]; then echo "deb-acceptance: $f is left after purge" >&2; exit 1; fi
done
echo "deb-acceptance: ok"
