#!/usr/bin/env bash
# Installs what jobfs needs to build, run and test on Debian 12 (as root, or
# through sudo). Safe to run again: apt-get skips what is there.
set -euo pipefail
PKGS=(
  build-essential meson ninja-build pkg-config
  libfuse3-dev fuse3 libcurl4-openssl-dev libjson-c-dev
  python3 python3-pytest python3-watchdog inotify-tools entr curl jq openssl unzip
  clang libclang-rt-14-dev
  nginx-light
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
