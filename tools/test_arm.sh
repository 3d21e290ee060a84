#!/usr/bin/env bash
# Cross-builds the library, the C tests and the example for 64-bit ARM Linux and runs them under
# qemu-user: the NEON kernels against the scalar ones (test_kernels), the rest of ctest, and
# the exported symbols. Also checks that kernels_neon.c compiles with clang for Apple silicon
# when clang is installed (no macOS SDK needed: it uses ACLE intrinsics only).
#   apt-get install gcc-aarch64-linux-gnu qemu-user   # once (Debian / Ubuntu); clang optional
#   tools/test_arm.sh                                 # BUILD_DIR=build-arm by default
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build-arm}"
fixtures="${FIXTURE_DIR:-$root/../shared/fixtures/rwkvcpp}"
sysroot=/usr/aarch64-linux-gnu

for tool in aarch64-linux-gnu-gcc cmake ninja; do
    command -v "$tool" >/dev/null || { echo "test_arm: $tool not found (apt-get install gcc-aarch64-linux-gnu cmake ninja-build)" >&2; exit 2; }
done
qemu="$(command -v qemu-aarch64 || command -v qemu-aarch64-static || true)"
[ -n "$qemu" ] || { echo "test_arm: qemu-aarch64 not found (apt-get install qemu-user)" >&2; exit 2; }

echo "== build ($build)"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchains/aarch64-linux-gnu.cmake" \
    -DRWKV_TEST_FIXTURE_DIR="$fixtures" >/dev/null
cmake --build "$build"

echo "== exports"
"$root/tools/check_exports.sh" "$build/librwkv.so"

status=0
echo "== C tests under $("$qemu" --version | head -n 1)"
# The toolchain file makes ctest run each test through qemu with the target's libraries.
(cd "$build" && ctest --output-on-failure --timeout 900) || status=1

echo "== the library picks the NEON kernels"
info="$("$qemu" -L "$sysroot" "$build/examples/rwkv-generate" "$fixtures/tiny-rwkv-5v2-730K-FP16.bin" "In the" -n 16 -t 0 -j 2 2>&1 >/dev/null || true)"
echo "$info" | sed 's/^/  /'
if [ -f "$fixtures/tiny-rwkv-5v2-730K-FP16.bin" ]; then
    echo "$info" | grep -q "kernels = neon" || { echo "test_arm: the NEON kernels were not picked" >&2; status=1; }
fi

if command -v clang >/dev/null; then
    echo "== kernels_neon.c with clang for arm64-apple-macos11"
    # Without a macOS SDK: freestanding, with a stand-in string.h declaring memcpy / memset.
    stub="$(mktemp -d)"
    printf '#include <stddef.h>\nvoid *memcpy(void *, const void *, size_t);\nvoid *memset(void *, int, size_t);\n' > "$stub/string.h"
    if clang --target=arm64-apple-macos11 -ffreestanding -isystem "$stub" -std=c11 -O2 -Wall -Wextra -Werror \
            -ffp-contract=off -DRWKV_HAVE_NEON_KERNELS -I"$root/native/src" \
            -c "$root/native/src/kernels_neon.c" -o "$stub/kernels_neon.o"; then
        echo "  ok: $(file -b "$stub/kernels_neon.o" 2>/dev/null || echo compiled)"
    else
        status=1
    fi
    rm -rf "$stub"
fi

if [ "$status" -eq 0 ]; then
    echo "test_arm: ok"
else
    echo "test_arm: FAILED"
fi
exit "$status"
