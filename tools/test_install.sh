#!/usr/bin/env bash
# Installs the library into a temporary prefix and builds a separate project against it, the
# way a native host would: with find_package(rwkv) (rwkv::rwkv), with pkg-config through CMake,
# and with pkg-config on a plain compiler command line; from C and from C++. Runs each program,
# and examples/c/generate.c, on rwkv.cpp's tiny model when FIXTURE_DIR has it (default
# ../shared/fixtures/rwkvcpp).
#   tools/test_install.sh                 # BUILD_DIR: reuse a build directory (default: a temp one)
# Needs cmake, ninja, a C and a C++ compiler, pkg-config (the pkg-config steps are skipped without it).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/rwkv-install-test.XXXXXX")"
trap 'rm -rf "$work"' EXIT
build="${BUILD_DIR:-$work/build}"
prefix="$work/prefix with space"   # a space: the installed files must quote their paths
fixtures="${FIXTURE_DIR:-$root/../shared/fixtures/rwkvcpp}"
model="$fixtures/tiny-rwkv-5v2-730K-FP16.bin"
[ -f "$model" ] || model=""
cc="${CC:-cc}"
cxx="${CXX:-c++}"

step() { echo "== $*"; }
fail() { echo "test_install: FAILED: $*" >&2; exit 1; }

step "build and install into $prefix"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRWKV_BUILD_TESTS=OFF -DRWKV_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$build" >/dev/null
cmake --install "$build" --prefix "$prefix" >/dev/null
(cd "$prefix" && find . -type f -o -type l | sort | sed 's/^\.\//  /')

libdir="$(cd "$prefix" && dirname "$(find . -name 'librwkv.so' -o -name 'librwkv.dylib' | head -n 1)")"
[ "$libdir" != "." ] || fail "no librwkv installed"
libdir="$prefix/${libdir#./}"
for f in include/rwkv.h; do [ -f "$prefix/$f" ] || fail "$f not installed"; done
for f in rwkvConfig.cmake rwkvConfigVersion.cmake rwkvTargets.cmake; do
    [ -f "$libdir/cmake/rwkv/$f" ] || fail "$libdir/cmake/rwkv/$f not installed"
done
[ -f "$libdir/pkgconfig/rwkv.pc" ] || fail "rwkv.pc not installed"

run_consumers() {  # $1: build directory of the consumer
    "$1/consumer_c" ${model:+"$model"}
    "$1/consumer_cpp" ${model:+"$model"}
}

step "consumer with find_package(rwkv 0.1)"
cmake -S "$root/tests/cmake_consumer" -B "$work/consumer-cmake" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/consumer-cmake" >/dev/null
run_consumers "$work/consumer-cmake"

step "find_package(rwkv 99.0) must fail (version file)"
if cmake -S "$root/tests/cmake_consumer" -B "$work/consumer-too-new" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
        -DRWKV_CONSUMER_VERSION=99.0 >/dev/null 2>&1; then
    fail "find_package(rwkv 99.0) accepted version $(grep -o 'PACKAGE_VERSION "[^"]*"' "$libdir/cmake/rwkv/rwkvConfigVersion.cmake")"
fi
echo "  refused, as it should be"

if command -v pkg-config >/dev/null; then
    export PKG_CONFIG_PATH="$libdir/pkgconfig"
    step "pkg-config: $(pkg-config --modversion rwkv): $(pkg-config --cflags --libs rwkv)"
    step "consumer with pkg-config through CMake"
    cmake -S "$root/tests/cmake_consumer" -B "$work/consumer-pc" -G Ninja -DRWKV_CONSUMER_PKG_CONFIG=ON >/dev/null
    cmake --build "$work/consumer-pc" >/dev/null
    run_consumers "$work/consumer-pc"

    step "consumer with pkg-config on the command line"
    # pkg-config escapes spaces with a backslash, as a shell word would: let the shell split.
    eval "cflags=($(pkg-config --cflags rwkv))"
    eval "libs=($(pkg-config --libs rwkv))"
    "$cc" -std=c99 -Wall -Wextra -Wpedantic -Werror "$root/tests/cmake_consumer/main.c" "${cflags[@]}" "${libs[@]}" -lm \
        -Wl,-rpath,"$libdir" -o "$work/consumer_c"
    "$cxx" -std=c++11 -Wall -Wextra -Wpedantic -Werror "$root/tests/cmake_consumer/main.cpp" "${cflags[@]}" "${libs[@]}" \
        -Wl,-rpath,"$libdir" -o "$work/consumer_cpp"
    run_consumers "$work"
else
    step "pkg-config not found: skipped the pkg-config builds"
fi

if [ -n "$model" ]; then
    step "example: rwkv-generate"
    out="$("$build/examples/rwkv-generate" "$model" "In the beginning" -n 24 -t 0 -j 2 2>/dev/null)"
    echo "  $out"
    [[ "$out" == "In the beginning"?* ]] || fail "rwkv-generate printed no continuation"
fi

echo "test_install: ok"
