"""Loading maps the file instead of copying it: peak RSS stays under file size + 64 MiB, both
right after loading and after evaluating (which touches every weight)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import rwkv_cpp
from model_files import F16, v4_tensors, write_model

LOAD_OVERHEAD_LIMIT = 64 * 2**20  # the bound beyond the file size

CHILD = """
import json, sys
def peak_rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) * 1024
import numpy, rwkv_cpp
rwkv_cpp.system_info()  # opens the library before the baseline
baseline = peak_rss()
model = rwkv_cpp.Model(sys.argv[1], thread_count=2)
after_load = peak_rss()
model.eval_sequence([1, 2, 3])
after_eval = peak_rss()
print(json.dumps({"baseline": baseline, "after_load": after_load, "after_eval": after_eval}))
"""


def test_peak_rss_stays_under_file_size_plus_64_mib(tmp_path: Path) -> None:
    if not Path("/proc/self/status").exists():
        import pytest
        pytest.skip("needs /proc to read peak RSS")
    # About 300 MiB of FP16 weights, written as a sparse file in no time.
    path = write_model(tmp_path / "big.bin", 32768, 1024, 8, v4_tensors(32768, 1024, 8, F16), data_type=F16)
    file_size = os.path.getsize(path)
    package_dir = str(Path(rwkv_cpp.__file__).parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([package_dir, os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, env=env, check=True)
    rss = json.loads(result.stdout)
    grown_by_load = rss["after_load"] - rss["baseline"]
    grown_by_eval = rss["after_eval"] - rss["baseline"]
    print(f"file {file_size / 2**20:.0f} MiB; RSS grew {grown_by_load / 2**20:.1f} MiB on load, "
          f"{grown_by_eval / 2**20:.1f} MiB after eval")
    assert grown_by_load < LOAD_OVERHEAD_LIMIT, "loading must not read the weights"
    assert grown_by_eval < file_size + LOAD_OVERHEAD_LIMIT
