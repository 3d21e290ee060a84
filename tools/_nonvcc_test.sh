#!/usr/bin/env bash
# Checks the CUDA backend as far as this machine allows.
# With nvcc: builds the library with RWKV_CUDA=ON and checks that it compiles for every configured
#   architecture, exports exactly the C API (the static CUDA runtime stays hidden), loads and runs
#   on the CPU without a driver, and passes ctest; test_cuda runs on a CUDA device when there is
#   one and skips itself (exit 77) otherwise.
# On x86-64 Linux, with or without nvcc: test_cuda in a CPU emulation of CUDA's execution model
#   (tools/cuda_emulation): every kernel and the whole offloaded forward pass run as plain C++
#   with CUDA's thread, barrier and shuffle semantics, against the CPU code. This checks logic,
#   not what only a GPU shows (speed, alignment faults, register limits, memory ordering).
#   tools/check_cuda_build.sh [BUILD_DIR]                  (default: build-cuda in the checkout)
#   RWKV_CUDA_ARCHITECTURES="90" tools/check_cuda_build.sh (fewer architectures: a faster build)
#   RWKV_CUDA_EMULATION=0 tools/check_cuda_build.sh        (skip the emulated run)
# Exit status 0 when everything it could check passed, 1 on a failure, 2 when it could check
# nothing (no nvcc and no emulation on this platform).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build-cuda}"
src="$root/native/src"
checked=0

nvcc_path=""
if [ -z "$nvcc_path" ] && false; then
    nvcc_path=/usr/local/cuda/bin/nvcc
fi

generator=()
if command -v ninja >/dev/null 2>&1; then
    generator=(-G Ninja)
fi

if [ -n "$nvcc_path" ]; then
    echo "check_cuda_build: $("$nvcc_path" --version | grep -m1 release)"
    args=(-S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DRWKV_CUDA=ON -DRWKV_BUILD_EXAMPLES=OFF
          "-DCMAKE_CUDA_COMPILER=$nvcc_path")
    if [ -n "${RWKV_CUDA_ARCHITECTURES:-}" ]; then
        args+=("-DCMAKE_CUDA_ARCHITECTURES=$RWKV_CUDA_ARCHITECTURES")
    fi
    cmake "${args[@]}"
    cmake --build "$build" --parallel

    library="$build/librwkv.so"
    if [ -f "$library" ]; then
        "$root/tools/check_exports.sh" "$library"
        # Loads and runs on the CPU without a GPU or driver: the CUDA runtime is linked statically
        # and looks for the driver only when asked for a device.
        python3 - "$library" <<'PY'
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.rwkv_get_system_info_string.restype = ctypes.c_char_p
print("check_cuda_build: library loads:", lib.rwkv_get_system_info_string().decode())
PY
    fi

    ctest --test-dir "$build" --output-on-failure --exclude-regex '^cuda$'
    set +e
    "$build/test_cuda"
    status=$?
    set -e
    case "$status" in
        0) echo "check_cuda_build: test_cuda ran on a CUDA device and passed" ;;
        77) echo "check_cuda_build: built; CPU tests passed; no CUDA device here, so test_cuda skipped" ;;
        *) echo "check_cuda_build: test_cuda failed (exit $status)" >&2; exit 1 ;;
    esac
    checked=1
else
    echo "check_cuda_build: nvcc not found: the CUDA build is not checked (install the CUDA toolkit or put nvcc on PATH)"
fi

if [ "${RWKV_CUDA_EMULATION:-1}" != "0" ] && [ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ] \
        && command -v g++ >/dev/null 2>&1; then
    if [ -z "$nvcc_path" ]; then
        # The library's C objects, from a CPU-only build.
        cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DRWKV_BUILD_TESTS=OFF -DRWKV_BUILD_EXAMPLES=OFF
        cmake --build "$build" --parallel --target rwkv_objects
    fi
    emulation="$root/tools/cuda_emulation"
    out="$build/cuda-emulation"
    rm -rf "$out"
    mkdir -p "$out/gen" "$out/obj"
    for f in "$src"/cuda/*.cu; do
        python3 "$emulation/convert.py" "$f" "$out/gen/$(basename "${f%.cu}").cpp"
    done
    includes=(-I"$emulation/include" -I"$src/cuda" -I"$src" -I"$root/native/include")
    cxxflags=(-std=c++17 -O2 -g -DRWKV_BUILD -fno-strict-aliasing "${includes[@]}")
    pids=()
    for f in "$out"/gen/*.cpp; do
        g++ "${cxxflags[@]}" -c "$f" -o "$out/obj/$(basename "${f%.cpp}").o" & pids+=($!)
    done
    g++ "${cxxflags[@]}" -c "$emulation/emulator.cpp" -o "$out/obj/emulator.o" & pids+=($!)
    gcc -std=c11 -O2 -g -DRWKV_BUILD "${includes[@]:1}" -c "$src/cuda/gpu_model.c" -o "$out/obj/gpu_model.o" & pids+=($!)
    gcc -std=c11 -O2 -g -D_GNU_SOURCE -DRWKV_TEST_FIXTURE_DIR="\"$root/../shared/fixtures/rwkvcpp\"" "${includes[@]:1}" \
        -I"$root/native/tests" -c "$root/native/tests/test_cuda.c" -o "$out/obj/test_cuda.o" & pids+=($!)
    for pid in "${pids[@]}"; do
        wait "$pid"
    done
    library_objects=()
    for o in "$build"/CMakeFiles/rwkv_objects.dir/native/src/*.o; do
        case "$o" in *gpu_none.c.o) ;; *) library_objects+=("$o") ;; esac
    done
    g++ -o "$out/test_cuda" "$out"/obj/*.o "${library_objects[@]}" -lpthread -lm
    if ! "$out/test_cuda"; then
        echo "check_cuda_build: test_cuda failed in the CPU emulation of CUDA" >&2
        exit 1
    fi
    echo "check_cuda_build: test_cuda passed in the CPU emulation of CUDA (logic only; no GPU ran)"
    checked=1
fi

if [ "$checked" = 0 ]; then
    echo "check_cuda_build: nothing checked (no nvcc, and the emulation needs x86-64 Linux with g++)" >&2
    exit 2
fi
echo "check_cuda_build: ok"
