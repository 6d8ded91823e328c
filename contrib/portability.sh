#!/usr/bin/env bash
# Builds jobfs and runs the C unit tests and a mount smoke test inside
# debootstrap chroots of older and newer Debian releases than the one we
# develop on, because login nodes run older libraries than our machines:
#   bullseye (Debian 11): libfuse 3.10, libcurl 7.74, json-c 0.15, meson 0.56
#                         (the class of RHEL 9 and Ubuntu 22.04)
#   trixie   (Debian 13): libfuse 3.17, libcurl 8, json-c 0.18
#
#   contrib/portability.sh [SUITE...]     default: bullseye trixie
#
# As root. Chroots live under build-chroots/ (never committed) and are made
# once; later runs reuse them (JOBFS_CHROOTS=DIR to put them elsewhere, and
# JOBFS_MIRROR=URL to use another Debian mirror than the one apt uses here;
# JOBFS_PORTABILITY_PATCH=FILE to try a patch on the copy without committing it).
# Each run copies the source tree in afresh, so what is tested is what is in
# the work tree. /proc and /dev are bind-mounted for the mount smoke test;
# everything runs in a private mount namespace, and a trap unmounts on any
# exit, so no mount outlives the script.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CHROOTS=${JOBFS_CHROOTS:-$ROOT/build-chroots}
SUITES=("$@")
[ ${#SUITES[@]} -gt 0 ] || SUITES=(bullseye trixie)

[ "$(id -u)" -eq 0 ] || { echo "portability.sh: run as root (debootstrap, chroot, mount)" >&2; exit 1; }
[ -e /dev/fuse ] || { echo "portability.sh: /dev/fuse is missing (modprobe fuse?)" >&2; exit 1; }

# Re-run inside a private mount namespace: the bind mounts then vanish with
# the process even if the trap below never runs (SIGKILL).
if [ -z "${JOBFS_PORTABILITY_NS:-}" ] && command -v unshare >/dev/null; then
  JOBFS_PORTABILITY_NS=1 exec unshare --mount --propagation private "$0" "${SUITES[@]}"
fi

if ! command -v debootstrap >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

# The mirror apt uses on this machine (deb822 URIs: or a one-line deb entry).
mirror() {
  local m
  if [ -n "${JOBFS_MIRROR:-}" ]; then echo "$JOBFS_MIRROR"; return; fi
  m=$(grep -hsE '^(URIs:|deb) ' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
        /etc/apt/sources.list.d/*.list 2>/dev/null \
      | grep -oE 'https?://[^ ]*/debian/?' | grep -v security | head -1)
  echo "${m:-http://deb.debian.org/debian}"
}
MIRROR=$(mirror)

# What the chroots need to build, unit-test and mount. python3 runs the
# bundled simulator (standard library only).
# libselinux1-dev: libfuse3-dev needs it under its virtual name
# libselinux-dev, which debootstrap's resolver does not follow.
PKGS=build-essential,meson,ninja-build,pkg-config,libfuse3-dev,libselinux1-dev,fuse3,libcurl4-openssl-dev,libjson-c-dev,python3

MOUNTS=()       # mounted paths, unmounted in reverse order by cleanup
cleanup() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null || true
  done
  MOUNTS=()
}
trap cleanup EXIT INT TERM

bind() {  # source, target inside a chroot
  mount --bind "$1" "$2"
  MOUNTS+=("$2")
}

make_chroot() {  # suite, dir
  local suite=$1 dir=$2
  if [ -f "$dir/.jobfs-ready" ]; then
    return 0
  fi
  if [ -d "$dir" ] && grep -q " $dir/" /proc/mounts; then
    echo "portability.sh: something is mounted under $dir; not touching it" >&2
    return 1
  fi
  rm -rf "$dir"
  mkdir -p "$CHROOTS"
  echo "   debootstrap $suite from $MIRROR"
  if ! debootstrap --variant=minbase --include="$PKGS" "$suite" "$dir" "$MIRROR" \
       >"$CHROOTS/$suite-debootstrap.log" 2>&1; then
    echo "portability.sh: debootstrap $suite failed; the end of $CHROOTS/$suite-debootstrap.log:" >&2
    tail -20 "$CHROOTS/$suite-debootstrap.log" >&2
    return 1
  fi
  touch "$dir/.jobfs-ready"
}

# What runs inside the chroot, as root, with the tree in /src.
INNER='
set -eu
cd /src
echo "   $(. /etc/os-release; echo "$PRETTY_NAME"): meson $(meson --version), libfuse $(pkg-config --modversion fuse3),"\
" libcurl $(pkg-config --modversion libcurl), json-c $(pkg-config --modversion json-c)"
rm -rf /tmp/build
meson setup /tmp/build -Dwerror=true >/tmp/setup.log 2>&1 || { cat /tmp/setup.log; exit 1; }
ninja -C /tmp/build >/tmp/ninja.log 2>&1 || { cat /tmp/ninja.log; exit 1; }
meson test -C /tmp/build --suite unit --print-errorlogs >/tmp/unit.log 2>&1 || { cat /tmp/unit.log; exit 1; }
echo "   unit tests: $(grep -cE "^ *[0-9]+/[0-9]+ .* OK " /tmp/unit.log) executables OK"
python3 /src/tests/smoke_mount.py /tmp/build/jobfs
'

run_suite() {  # suite
  local suite=$1 dir=$CHROOTS/$1 t0 t1 t2
  t0=$(date +%s)
  make_chroot "$suite" "$dir" || return 1   # (errexit is off in a function called with ||)
  t1=$(date +%s)
  rm -rf "$dir/src"
  mkdir -p "$dir/src"
  # the work tree as it is, tracked and new files, without build output
  git ls-files -z --cached --others --exclude-standard | tar -C "$ROOT" --null -T - -cf - \
    | tar -C "$dir/src" -xf -
  if [ -n "${JOBFS_PORTABILITY_PATCH:-}" ]; then
    patch -s -d "$dir/src" -p1 <"$JOBFS_PORTABILITY_PATCH" || return 1
  fi
  mkdir -p "$dir/proc" "$dir/dev"
  bind /proc "$dir/proc"
  bind /dev "$dir/dev"
  bind /dev/pts "$dir/dev/pts"      # test_log writes to a pseudo-terminal
  if chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
       /bin/sh -c "$INNER"; then
    result=ok
  else
    result=FAILED
  fi
  cleanup
  t2=$(date +%s)
  echo "== $suite: $result (chroot $((t1 - t0)) s, build and tests $((t2 - t1)) s, total $((t2 - t0)) s)"
  [ "$result" = ok ]
}

failed=0
for s in "${SUITES[@]}"; do
  echo "== $s"
  run_suite "$s" || failed=$((failed + 1))
done
echo "$(( ${#SUITES[@]} - failed )) passed, $failed failed"
[ "$failed" -eq 0 ]
