#!/usr/bin/env bash
# Builds the library under each sanitizer and runs the C tests (ctest) and a pytest subset
# (loading, bad input, several contexts in several threads, tokenizing, sampling, state files,
# quantizing) against it. Any sanitizer report fails the run.
#
#   tools/sanitize.sh [address] [thread]      default: both
#
# address: AddressSanitizer + UndefinedBehaviorSanitizer (RWKV_SANITIZE=address);
# thread:  ThreadSanitizer (RWKV_SANITIZE=thread).
# Builds go to $BUILD_ROOT/<mode> (default build-sanitize). CC picks the compiler (default cc);
# Python runs with the compiler's sanitizer runtime preloaded and RWKV_CPP_LIBRARY pointing at
# the sanitized library. PYTEST_ARGS adds pytest options (e.g. -x). Prints each stage's time.
set -euo pipefail
cd "$(dirname "$0")/.."

MODES=("$@")
if [ ${#MODES[@]} -eq 0 ]; then
    MODES=(address thread)
fi
BUILD_ROOT=${BUILD_ROOT:-build-sanitize}
CC=${CC:-cc}
PYTHON=${PYTHON:-python3}
# The Python tests that drive the library hardest; the oracle comparisons (torch) add nothing here.
PYTEST_FILES=(tests/test_python_api.py tests/test_bad_input.py tests/test_bad_input_api.py tests/test_tokenizers.py
              tests/test_sampling.py tests/test_generate.py tests/test_quantize.py)

# The runtime library the compiler links for a sanitizer, for LD_PRELOAD into Python.
runtime_of() {
    local name
    for name in "$@"; do
        local path
        path=$("$CC" -print-file-name="$name")
        if [ -f "$path" ]; then
            echo "$path"
            return
        fi
    done
    echo "sanitize.sh: $CC has none of $* (install the compiler's sanitizer runtime)" >&2
    exit 2
}

stage() {
    local name=$1
    shift
    local start=$SECONDS
    echo "== $name"
    "$@"
    echo "   $name: $((SECONDS - start)) s"
}

for mode in "${MODES[@]}"; do
    build="$BUILD_ROOT/$mode"
    case "$mode" in
        address)
            preload=$(runtime_of libasan.so libclang_rt.asan-x86_64.so libclang_rt.asan-aarch64.so)
            # Python and numpy are not built with ASan: their allocations look like leaks.
            sanitizer_env=(ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_init_order=1
                           UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1)
            ;;
        thread)
            preload=$(runtime_of libtsan.so libclang_rt.tsan-x86_64.so libclang_rt.tsan-aarch64.so)
            sanitizer_env=(TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1)
            ;;
        *)
            echo "sanitize.sh: unknown mode $mode (expected address or thread)" >&2
            exit 2
            ;;
    esac
    total_start=$SECONDS
    echo "### RWKV_SANITIZE=$mode ($CC, $build)"
    stage configure cmake -S . -B "$build" -G Ninja -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DRWKV_SANITIZE="$mode" -DRWKV_BUILD_EXAMPLES=OFF
    stage build cmake --build "$build"
    stage ctest env "${sanitizer_env[@]}" ctest --test-dir "$build" --output-on-failure
    # Subprocesses the tests start (CLI runs) inherit the preload and the library.
    stage pytest env "${sanitizer_env[@]}" LD_PRELOAD="$preload" RWKV_CPP_LIBRARY="$PWD/$build/librwkv.so" \
        "$PYTHON" -m pytest -q -p no:cacheprovider ${PYTEST_ARGS:-} "${PYTEST_FILES[@]}"
    echo "### RWKV_SANITIZE=$mode: no reports, $((SECONDS - total_start)) s"
done
