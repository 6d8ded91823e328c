#!/usr/bin/env bash
# The whole test suite, as CI runs it: dependencies, a warnings-as-errors
# build, unit + integration tests, then the same suite again under
# AddressSanitizer and UndefinedBehaviorSanitizer, then each libFuzzer
# harness for FUZZ_SECONDS (default 30) under ASan+UBSan, then a ThreadSanitizer
# build of the unit tests and the concurrency tests, then the Debian
# package (built, lintian, installed, mounted with, removed: ~20 s) and the
# Debian 11 and 13 chroots (build, unit tests, mount smoke test: ~2 min the
# first time, for debootstrap, ~10 s once build-chroots/ exists).
#   contrib/test.sh            everything
#   contrib/test.sh --quick    the plain build only (no sanitizer, fuzz,
#                              package or chroot pass)
set -euo pipefail
cd "$(dirname "$0")/.."
contrib/install-deps.sh
[ -e /dev/fuse ] || { echo "test.sh: /dev/fuse is missing (modprobe fuse?)" >&2; exit 1; }
# the SLURM tests bring up a real one-node cluster (tests/slurm/cluster.sh,
# which installs Debian's slurm packages); here one that does not come up fails
export JOBFS_REQUIRE_SLURM=1

build() {  # dir, extra meson options...
  local dir=$1; shift
  if [ -d "$dir" ]; then
    meson setup --reconfigure "$dir" -Dwerror=true "$@" >/dev/null
  else
    meson setup "$dir" -Dwerror=true "$@" >/dev/null
  fi
  ninja -C "$dir" >/dev/null
}

# Adds up the "N passed, M failed" lines of the unit tests and pytest in a
# meson test log into the totals printed at the end.
passed=0 failed=0
tally() {
  local p f
  read -r p f < <(grep -hoE '^(test_[a-z_]+\.c: )?[0-9]+ passed(, [0-9]+ failed)?|[0-9]+ (passed|failed)' "$1" \
    | awk '{for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i }}
           END { print p + 0, f + 0 }')
  passed=$((passed + p)) failed=$((failed + f))
}

echo "== build (-Wall -Wextra -Werror) and test"
build build
meson test -C build --num-processes 2 --print-errorlogs
tally build/meson-logs/testlog.txt

if [ "${1:-}" != "--quick" ]; then
  echo "== build and test under ASan + UBSan"
  build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-asan --num-processes 2 --print-errorlogs
  tally build-asan/meson-logs/testlog.txt

  echo "== ThreadSanitizer: the unit tests and the concurrency tests"
  build build-tsan -Db_sanitize=thread -Db_lundef=false -Dbuildtype=debug
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    meson test -C build-tsan --suite unit --num-processes 2 --print-errorlogs
  tally build-tsan/meson-logs/testlog.txt
  # a daemon's race report fails its test (conftest.py reads the mount's log)
  # test_notify and test_wait whole (the replay threads; parked waits, their
  # interrupt callback and poll records), and test_core's concurrency tests
  : > build-tsan/integration.log
  tsan_pytest() {
    # in an if, a failure does not end the script (set -e): both runs run
    if ! JOBFS_BIN=build-tsan/jobfs JOBFS_SRC=$PWD TSAN_OPTIONS=halt_on_error=0:second_deadlock_stack=1 \
        /usr/bin/python3 -m pytest -q -ra -p no:cacheprovider "$@" 2>&1 | tee -a build-tsan/integration.log; then
      tsan_failed=1
    fi
  }
  tsan_pytest tests/integration/test_notify.py tests/integration/test_wait.py
  tsan_pytest tests/integration/test_core.py -k "stuck or parallel or sigterm or handle or fs_watch or churn"
  tally build-tsan/integration.log
  [ -z "${tsan_failed:-}" ] || { echo "ThreadSanitizer pass failed"; exit 1; }

  echo "== fuzz the reply parsers and name checks (${FUZZ_SECONDS:-30} s each)"
  FUZZ_SECONDS=${FUZZ_SECONDS:-30} fuzz/run.sh

  # each script closes with one "N passed, M failed" line: the one counted
  echo "== the Debian package: build, lintian, apt-get install, mount, remove"
  contrib/build-deb.sh --test 2>&1 | tee build/deb.log
  tail -n1 build/deb.log >build/deb.tally
  tally build/deb.tally

  echo "== Debian 11 (libfuse 3.10) and 13 (libfuse 3.17) chroots"
  contrib/portability.sh 2>&1 | tee build/portability.log
  tail -n1 build/portability.log >build/portability.tally
  tally build/portability.tally
fi
echo "== totals (unit checks and pytest cases, every pass)"
echo "$passed passed, $failed failed"
