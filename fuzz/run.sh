#!/bin/sh
# fuzz/run.sh: builds the libFuzzer harnesses with clang and runs each one.
#
#   FUZZ_SECONDS=60   time per harness (-max_total_time); 5 makes a smoke run
#   FUZZ_BUILD=build-fuzz   build and work dir (relative to the repo root)
#   CC=clang          compiler (Debian: clang-14 with libclang-rt-14-dev)
#   FUZZ_ONLY="muse"  run a subset (bacalhau, bacalhau_v1, muse, names, slurm)
#   FUZZ_SRCS="..."   src/ modules to link (default: the parsers' closure)
#
# Seeds in fuzz/corpus/NAME are copied into $FUZZ_BUILD/corpus/NAME, which is
# the working corpus (it keeps growing across runs); nothing is written into
# the repo. Crash inputs land in $FUZZ_BUILD/artifacts/NAME/, logs in
# $FUZZ_BUILD/logs/. Prints one line per harness:
#   fuzz_NAME: N execs, 0 crashes
# and exits 1 if any harness crashed (with the crash file and the report's
# tail printed), 2 if the build failed.
# Reproduce a crash: $FUZZ_BUILD/fuzz_NAME CRASHFILE
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD:-build-fuzz}
cc=${CC:-clang}
only=${FUZZ_ONLY:-bacalhau bacalhau_v1 muse names slurm}
case $build in /*) ;; *) build=$root/$build ;; esac

# What the parsers need, and nothing that pulls in libfuse. jsonscan (the
# streaming list scanner) is linked once it exists.
srcs=${FUZZ_SRCS:-"snapshot blob jsonutil bacalhau bacalhau_v1 bacalhau_v1_job bacalhau_orch bacalhau_auth muse backend log http slurm_job slurm_split slurm_token"}
[ -n "${FUZZ_SRCS:-}" ] || [ ! -f src/jsonscan.c ] || srcs="$srcs jsonscan"
# The quotes around fuzz are meant literally: the macro is a C string.
# shellcheck disable=SC2089
cflags="-g -O1 -fno-omit-frame-pointer -std=gnu11 -Wall -Wextra -Iinclude
        -DJOBFS_VERSION=\"fuzz\" -DFUSE_USE_VERSION=312 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64
        -fno-sanitize-recover=all $(pkg-config --cflags json-c libcurl)"
libs="$(pkg-config --libs json-c libcurl) -lpthread"

mkdir -p "$build/obj" "$build/logs"
# src/ gets coverage instrumentation without libFuzzer's main; harnesses link it.
for s in $srcs; do
        # shellcheck disable=SC2086,SC2090
        $cc $cflags -fsanitize=fuzzer-no-link,address,undefined -c "src/$s.c" -o "$build/obj/$s.o" ||
                { echo "build failed: src/$s.c" >&2; exit 2; }
done
objs=$(for s in $srcs; do printf '%s ' "$build/obj/$s.o"; done)
for h in $only; do
        # shellcheck disable=SC2086,SC2090
        $cc $cflags -fsanitize=fuzzer,address,undefined "fuzz/fuzz_$h.c" $objs $libs \
                -o "$build/fuzz_$h" || { echo "build failed: fuzz/fuzz_$h.c" >&2; exit 2; }
done

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

status=0
for h in $only; do
        corpus=$build/corpus/$h
        artifacts=$build/artifacts/$h/
        log=$build/logs/fuzz_$h.log
        mkdir -p "$corpus" "$artifacts"
        cp -R "fuzz/corpus/$h/." "$corpus/"
        rm -f "$corpus/README"
        case $h in
        names) extra="-max_len=1024" ;;         # names are <= 255 bytes; room to go past
        *) extra="-max_len=65536 -dict=fuzz/json.dict" ;;
        esac
        # shellcheck disable=SC2086
        if "$build/fuzz_$h" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
                $extra -print_final_stats=1 -artifact_prefix="$artifacts" "$corpus" >"$log" 2>&1; then
                crashed=0
        else
                crashed=1
        fi
        execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
        [ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
        [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -n 1)
        [ -n "$execs" ] || execs=0
        crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        if [ "$crashed" = 0 ]; then
                echo "fuzz_$h: $execs execs, 0 crashes"
        else
                status=1
                echo "fuzz_$h: $execs execs, 1 crashes: ${crash:-no crash file, see $log}"
                echo "--- tail of $log:"
                grep -v -e '^#[0-9]' -e '^0x' "$log" | tail -n 60
                echo "--- reproduce: $build/fuzz_$h ${crash:-CRASHFILE}"
        fi
done
exit $status
