#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a working mount:
# installs the dependencies, builds jobfs, starts the bundled simulators of
# both APIs on their default ports (Bacalhau 1234, muse 8000) with jobs that
# progress over time, mounts on ./mnt (or $1), and says what to try.
#   contrib/demo.sh [MOUNTPOINT]     start
#   contrib/demo.sh stop [MOUNTPOINT]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=$ROOT/build/demo
if [ "${1:-}" = "stop" ]; then
  MNT=$(realpath -m "${2:-mnt}")
  fusermount3 -u -z "$MNT" 2>/dev/null || true
  [ -f "$STATE/sim.pid" ] && kill "$(cat "$STATE/sim.pid")" 2>/dev/null || true
  rm -f "$STATE/sim.pid"
  echo "stopped"
  exit 0
fi
MNT=$(realpath -m "${1:-mnt}")

contrib/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null

mkdir -p "$STATE" "$MNT"
if [ -f "$STATE/sim.pid" ] && kill -0 "$(cat "$STATE/sim.pid")" 2>/dev/null; then
  echo "simulators already running (pid $(cat "$STATE/sim.pid"))"
else
  rm -f "$STATE/ports.json"
  # Bacalhau as people run it today: the v1 orchestrator API of v1.9.3
  /usr/bin/python3 tests/sim/jobsim.py --scenario demo --bacalhau-version v1.9.3 \
    --bacalhau-port 1234 --muse-port 8000 \
    --ports-file "$STATE/ports.json" >"$STATE/sim.log" 2>&1 &
  echo $! >"$STATE/sim.pid"
  for _ in $(seq 100); do [ -s "$STATE/ports.json" ] && break; sleep 0.1; done
  [ -s "$STATE/ports.json" ] || { echo "simulators did not start:"; cat "$STATE/sim.log"; exit 1; }
fi
grep -q " $MNT fuse" /proc/mounts || build/jobfs "$MNT"

cat <<MSG

jobfs is mounted on $MNT (simulators: Bacalhau v1.9.3 http://127.0.0.1:1234, muse http://127.0.0.1:8000/api/).
Try:
  ls $MNT/jobs/                                  # Bacalhau jobs (GET /api/v1/orchestrator/jobs)
  cat $MNT/jobs/*/state                          # job states
  grep -r . $MNT/jobs/j-1efa8fb5-a3ce-4c15-8660-e6c5cd4fe981/ | head
  tail -f $MNT/jobs/j-de300000-0000-4000-8000-000000000001/history   # a job as it runs
  ls $MNT/software/ $MNT/software/sw_example/58ae6cea-df31-4059-9466-b817c337985d/
  cat $MNT/software/sw_example/58ae6cea-df31-4059-9466-b817c337985d/stdout
  inotifywait -m -r $MNT/jobs/                   # watch jobs change (Ctrl-C to stop)
  cat $MNT/.jobfs/status                         # endpoint health and counters
Stop with: contrib/demo.sh stop $MNT
MSG
