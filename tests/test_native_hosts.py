"""Native hosts of the C library: an installed copy (library, rwkv.h, CMake package, rwkv.pc)
used from a separate C and C++ project, the example program, and the exported symbols of the
built library against the RWKV_API functions of rwkv.h.

Runs tools/test_install.sh (which builds with CMake and Ninja) and tools/check_exports.sh;
skipped where those tools or a C/C++ compiler are missing. The build directory is kept under
tests/.cache/ so that later runs rebuild only what changed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / "tests" / ".cache" / "native-hosts-build"
TIMEOUT_S = 300  # a cold build on a slow machine; about 15 s here

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="the scripts are bash; Windows is covered by tools/test_windows.sh"),
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in ("bash", "cmake", "ninja")),
        reason="needs bash, cmake and ninja",
    ),
    pytest.mark.skipif(
        not (shutil.which(os.environ.get("CC", "cc")) and shutil.which(os.environ.get("CXX", "c++"))),
        reason="needs a C and a C++ compiler",
    ),
]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, BUILD_DIR=str(BUILD_DIR))
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def test_install_and_consume_from_c_and_cpp():
    result = _run(["bash", "tools/test_install.sh"])
    assert "test_install: ok" in result.stdout
    assert "consumer_cpp: library" in result.stdout


@pytest.mark.skipif(not shutil.which("nm"), reason="needs nm")
def test_library_exports_exactly_the_c_api():
    library = BUILD_DIR / ("librwkv.dylib" if sys.platform == "darwin" else "librwkv.so")
    if not library.exists():
        _run(["bash", "tools/test_install.sh"])
    result = _run(["bash", "tools/check_exports.sh", str(library)])
    assert "check_exports: ok" in result.stdout
