#!/usr/bin/env bash
# Builds the libFuzzer targets of native/fuzz (clang, ASan + UBSan) and runs each for a while.
#
#   tools/fuzz.sh [SECONDS] [TARGET...]      default: 600 seconds, every target
#
# Targets: model_file tokenizer state_file vocab. They run side by side, FUZZ_JOBS at a time
# (default: the number of CPUs). Each starts from native/fuzz/corpus/<target> and keeps what it
# finds in $BUILD_DIR/corpus/<target> (default BUILD_DIR: build-fuzz), so a second run goes on
# where the first stopped; the source tree is never written. An input that crashes a target is
# saved under $BUILD_DIR/crashes/<target>/; the script then exits 1. Fix the bug, copy the input
# to native/fuzz/regressions/<target>/ with a name saying what it was, and ctest replays it
# (test_fuzz_regressions) in every build from then on.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${1:-600}
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(model_file tokenizer state_file vocab)
fi
BUILD_DIR=${BUILD_DIR:-build-fuzz}
JOBS=${FUZZ_JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)}
CC=${CC:-clang}

if ! "$CC" --version 2>/dev/null | grep -qi clang; then
    echo "fuzz.sh: libFuzzer needs clang (CC=$CC); on Debian: apt-get install clang libclang-rt-dev" >&2
    exit 2
fi
CC="$CC" cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRWKV_FUZZ=ON \
    -DRWKV_BUILD_EXAMPLES=OFF -DRWKV_BUILD_TESTS=OFF > "$BUILD_DIR.configure.log" 2>&1 \
    || { cat "$BUILD_DIR.configure.log" >&2; exit 1; }
rm -f "$BUILD_DIR.configure.log"
cmake --build "$BUILD_DIR" --target $(printf 'fuzz_%s ' "${TARGETS[@]}") > /dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

run_target() {
    local target=$1
    local corpus="$BUILD_DIR/corpus/$target" crashes="$BUILD_DIR/crashes/$target"
    mkdir -p "$corpus" "$crashes"
    # -timeout: an input taking 10 s is a hang; -rss_limit_mb: a leak or an allocation that
    # size checks should have refused.
    "$BUILD_DIR/native/fuzz/fuzz_$target" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$crashes/" "$corpus" "native/fuzz/corpus/$target" \
        > "$BUILD_DIR/fuzz_$target.log" 2>&1
}

echo "fuzzing ${TARGETS[*]} for ${SECONDS_EACH} s each, $JOBS at a time (logs in $BUILD_DIR/fuzz_<target>.log)"
pids=()
for target in "${TARGETS[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
        sleep 1
    done
    run_target "$target" &
    pids+=($!)
done
status=0
for i in "${!TARGETS[@]}"; do
    target=${TARGETS[$i]}
    if wait "${pids[$i]}"; then result=ok; else result=FAILED; status=1; fi
    log="$BUILD_DIR/fuzz_$target.log"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' || true)
    echo "$target: $result, ${execs:-?} executions, ${last:-no stats}"
    if [ "$result" = FAILED ]; then
        grep -E 'ERROR:|runtime error|fuzz target:|SUMMARY' "$log" | head -5 | sed 's/^/    /'
        ls "$BUILD_DIR/crashes/$target" | sed "s|^|    saved: $BUILD_DIR/crashes/$target/|"
    fi
done
exit $status
