#!/usr/bin/env bash
# Checks that a built library exports exactly the C API: the functions declared RWKV_API in
# native/include/rwkv.h, nothing more (no internal symbol leaks) and nothing less.
#   tools/check_exports.sh build/librwkv.so
#   tools/check_exports.sh build-win/rwkv.dll      (needs x86_64-w64-mingw32-objdump or objdump)
#   tools/check_exports.sh build/librwkv.dylib
# Exit status 0 when they match, 1 with the differences listed otherwise.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
header="${RWKV_HEADER:-$root/native/include/rwkv.h}"
lib="${1:?usage: $0 LIBRARY (librwkv.so, rwkv.dll or librwkv.dylib)}"
[ -f "$lib" ] || { echo "no such file: $lib" >&2; exit 2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Declared: the first `rwkv_name(` on each line that starts with RWKV_API.
grep -E '^[[:space:]]*RWKV_API[[:space:]]' "$header" \
    | grep -oE 'rwkv_[A-Za-z0-9_]+[[:space:]]*\(' | sed -E 's/[[:space:]]*\($//' \
    | sort -u > "$tmp/declared"

case "$lib" in
    *.dll)
        objdump="$(command -v x86_64-w64-mingw32-objdump || command -v objdump)"
        # The export table's name pointer table: "[   3] rwkv_eval".
        "$objdump" -p "$lib" \
            | sed -n '/\[Ordinal\/Name Pointer\] Table/,/^[[:space:]]*$/p' \
            | sed -nE 's/^[[:space:]]*\[[[:space:]]*[0-9]+\][[:space:]]+([^[:space:]]+).*/\1/p' \
            | sort -u > "$tmp/exported"
        ;;
    *.dylib)
        nm -gU "$lib" | awk '$2 ~ /^[TDBS]$/ {print $3}' | sed 's/^_//' | sort -u > "$tmp/exported"
        ;;
    *)
        nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWiu]$/ {print $3}' \
            | grep -vE '^(_init|_fini|_edata|_end|__bss_start)$' | sort -u > "$tmp/exported"
        ;;
esac

n_declared=$(wc -l < "$tmp/declared")
n_exported=$(wc -l < "$tmp/exported")
missing="$(comm -23 "$tmp/declared" "$tmp/exported")"
extra="$(comm -13 "$tmp/declared" "$tmp/exported")"
if [ -n "$missing" ] || [ -n "$extra" ]; then
    [ -n "$missing" ] && printf 'declared RWKV_API in rwkv.h but not exported:\n%s\n' "$missing"
    [ -n "$extra" ] && printf 'exported but not declared RWKV_API in rwkv.h:\n%s\n' "$extra"
    echo "check_exports: FAILED ($lib: $n_exported exported, $n_declared declared)"
    exit 1
fi
echo "check_exports: ok ($lib exports exactly the $n_declared functions of rwkv.h)"
