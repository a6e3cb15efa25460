#!/bin/sh
# `make deb`: builds build/signal-server_VERSION_amd64.deb with dpkg-buildpackage from a clean
# copy of the source files in build/deb-src (so that the package's build neither sees nor
# touches this tree's build/, and dpkg-buildpackage's ../*.deb lands in build/).
set -eu
cd "$(dirname "$0")/.."

version=$(cat VERSION)
changelog=$(dpkg-parsechangelog -S Version)
if [ "$version" != "$changelog" ]; then
  echo "make deb: VERSION says $version but debian/changelog's last entry is $changelog:" >&2
  echo "  add an entry for $version to debian/changelog (dch -v $version, or by hand)" >&2
  exit 1
fi

rm -rf build/deb-src
rm -f build/signal-server_*.deb build/signal-server-dbgsym_*.deb build/signal-server-dbgsym_*.ddeb \
  build/signal-server_*.buildinfo build/signal-server_*.changes
mkdir -p build/deb-src
# The files git knows or would add (tracked and new, not ignored), as they are in the tree.
git ls-files -z --cached --others --exclude-standard | xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
  tar --null -T - -cf - | tar -xf - -C build/deb-src

jobs=$(nproc 2>/dev/null || echo 1)
(cd build/deb-src && dpkg-buildpackage -us -uc -b -j"$jobs")

deb=build/signal-server_${version}_$(dpkg-architecture -qDEB_HOST_ARCH).deb
[ -f "$deb" ] || { echo "make deb: $deb was not made" >&2; exit 1; }
echo "make deb: $deb"
