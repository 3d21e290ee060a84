#!/usr/bin/env bash
# Cross-builds rwkv.dll (and the C tests, the example) for 64-bit Windows with MinGW-w64 and runs
# them under wine. Checks that rwkv.dll exports exactly the C API and imports only system DLLs.
#   apt-get install gcc-mingw-w64-x86-64 wine64      # once (Debian / Ubuntu)
#   tools/test_windows.sh                            # BUILD_DIR=build-win by default
# The C tests find rwkv.cpp's tiny model files in FIXTURE_DIR (default ../shared/fixtures/rwkvcpp);
# wine maps the Unix file system to drive Z:, so Unix paths work unchanged. The programs are
# built beside rwkv.dll, where Windows looks for it; `ctest` in the build directory runs them
# through wine by itself (CMAKE_CROSSCOMPILING_EMULATOR, set by the toolchain file).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build-win}"
fixtures="${FIXTURE_DIR:-$root/../shared/fixtures/rwkvcpp}"
export WINEDEBUG="${WINEDEBUG:--all}"

for tool in x86_64-w64-mingw32-gcc cmake ninja; do
    command -v "$tool" >/dev/null || { echo "test_windows: $tool not found (apt-get install gcc-mingw-w64-x86-64 cmake ninja-build)" >&2; exit 2; }
done
wine="$(command -v wine64 || command -v wine || true)"
[ -n "$wine" ] || { echo "test_windows: wine not found (apt-get install wine64)" >&2; exit 2; }

echo "== build ($build)"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchains/mingw-w64-x86_64.cmake" \
    -DRWKV_TEST_FIXTURE_DIR="$fixtures" >/dev/null
cmake --build "$build"
dll="$build/rwkv.dll"

echo "== exports"
"$root/tools/check_exports.sh" "$dll"

echo "== imports (system DLLs only)"
imports="$(x86_64-w64-mingw32-objdump -p "$dll" | sed -nE 's/^[[:space:]]*DLL Name: (.*)$/\1/p' | sort -u)"
echo "$imports" | sed 's/^/  /'
unexpected="$(echo "$imports" | grep -viE '^(kernel32|msvcrt|ucrtbase|advapi32|user32|ntdll)\.dll$|^api-ms-win-' || true)"
if [ -n "$unexpected" ]; then
    echo "test_windows: rwkv.dll needs non-system DLLs: $unexpected" >&2
    exit 1
fi

echo "== C tests under $(basename "$wine") ($("$wine" --version 2>/dev/null))"
status=0
(cd "$build" && ctest --output-on-failure --timeout 600) || status=1

echo "== example"
model="$fixtures/tiny-rwkv-5v2-730K-FP16.bin"
if [ -f "$model" ]; then
    out="$("$wine" "$build/rwkv-generate.exe" "$model" "In the beginning" -n 32 -t 0 -j 2 2>/dev/null | tr -d '\r')" || status=1
    echo "  $out"
    [[ "$out" == "In the beginning"* ]] || { echo "test_windows: the example printed no continuation" >&2; status=1; }
else
    echo "  skipped: $model not found"
fi

if [ "$status" -eq 0 ]; then
    echo "test_windows: ok"
else
    echo "test_windows: FAILED"
fi
exit "$status"
