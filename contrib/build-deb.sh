#!/usr/bin/env bash
# Builds the Debian package of jobfs and checks it with lintian.
#   contrib/build-deb.sh           build-deb/jobfs_VERSION_ARCH.deb, lintian
#   contrib/build-deb.sh --test    and then: apt-get install ./jobfs_*.deb,
#                                  check what it installed, mount with the
#                                  installed /usr/bin/jobfs (the smoke test,
#                                  and `mount -t fuse.jobfs` and an fstab line
#                                  with tests/integration/test_install.py),
#                                  and remove the package again
# As root (or with sudo): it installs the build dependencies it lacks. The
# work tree is copied to build-deb/ and built there, so that
# dpkg-buildpackage's output lands in build-deb/ and nothing is written
# outside the tree. lintian errors fail the build; its warnings are shown.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/build-deb
TEST=false
[ "${1:-}" = "--test" ] && TEST=true
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

need=()
for p in dpkg-dev debhelper lintian fakeroot; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

version=$(dpkg-parsechangelog -l debian/changelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
src=$OUT/jobfs-$version
rm -rf "$OUT"
mkdir -p "$src"
# the work tree as it is (tracked and new files), without build output
git ls-files -z --cached --others --exclude-standard | tar -C "$ROOT" --null -T - -cf - \
  | tar -C "$src" -xf -

cd "$src"
if ! dpkg-checkbuilddeps >/dev/null 2>&1; then
  echo "installing the build dependencies (apt-get build-dep)"
  $SUDO apt-get update -qq
  $SUDO apt-get build-dep -y -qq ./ >/dev/null
fi
t0=$(date +%s)
echo "== dpkg-buildpackage -us -uc -b"
dpkg-buildpackage -us -uc -b >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
deb=$OUT/jobfs_${version}_${arch}.deb
echo "   $(basename "$deb"): $(du -k "$deb" | cut -f1) KiB, built in $(($(date +%s) - t0)) s"

echo "== lintian"
lintian --fail-on error --tag-display-limit 0 "$OUT/jobfs_${version}_${arch}.changes" \
  | tee "$OUT/lintian.log" || { echo "lintian found errors" >&2; exit 1; }
echo "   $(grep -c '^E:' "$OUT/lintian.log" || true) errors, $(grep -c '^W:' "$OUT/lintian.log" || true) warnings"
cd "$ROOT"
$TEST || exit 0

echo "== apt-get install ./$(basename "$deb")"
was_installed=false
dpkg-query -W -f='${Status}' jobfs 2>/dev/null | grep -q "install ok installed" && was_installed=true
remove() {
  if ! $was_installed; then
    $SUDO apt-get remove -y -qq --purge jobfs >/dev/null && echo "   removed the package"
  else
    echo "   jobfs was installed before this test: left installed (now $version)"
  fi
}
trap remove EXIT
$SUDO apt-get install -y -qq --no-install-recommends "$deb" >/dev/null
passed=0 failed=0
check() {  # description, command...
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then passed=$((passed + 1)); echo "   ok: $what"
  else failed=$((failed + 1)); echo "   FAILED: $what"; fi
}
check "/usr/bin/jobfs --version says $version" sh -c "/usr/bin/jobfs --version | grep -qx 'jobfs $version'"
for f in /usr/bin/jobfs /usr/share/man/man1/jobfs.1.gz /usr/share/bash-completion/completions/jobfs \
         /usr/share/doc/jobfs/examples/fstab /usr/share/doc/jobfs/examples/mnt-jobs.mount \
         /usr/share/doc/jobfs/examples/mnt-jobs.automount /usr/share/doc/jobfs/examples/jobfs.conf; do
  check "installs $f" test -f "$f"
done
check "installs the system unit jobfs@.service" sh -c 'dpkg -L jobfs | grep -q "/systemd/system/jobfs@.service$"'
check "installs the user unit jobfs@.service" sh -c 'dpkg -L jobfs | grep -q "/systemd/user/jobfs@.service$"'
check "man jobfs renders" sh -c 'man -l /usr/share/man/man1/jobfs.1.gz | grep -q fusermount3'
if python3 tests/smoke_mount.py /usr/bin/jobfs; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
if /usr/bin/python3 -c 'import pytest' 2>/dev/null; then
  if JOBFS_BIN=/usr/bin/jobfs JOBFS_SRC=$ROOT /usr/bin/python3 -m pytest -q -p no:cacheprovider \
       tests/integration/test_install.py; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
fi
echo "deb: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
