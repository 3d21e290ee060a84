"""`rwkv-cpp bench`: decode and prompt speed against this machine's roofline.

Decode reads every weight once per token, so its floor is weight bytes / memory bandwidth.
Prompt processing reuses weights across tokens, so its ceiling is the compute peak: FP32
FMA for float weights, int8 dot products for quantized ones. Bandwidth and the FP32 peak are
measured here (numpy); the int8 peak is estimated as 4x the FP32 one on CPUs with VNNI
(four times the multiply-adds per instruction at the same width).

With --gpu-layers N the first N layers (and the head when N > n_layer) run on the GPU. Their part
is reported against the GPU's own peaks as the library reads them (rwkv_get_gpu_info): decode
against memory bandwidth (offloaded weight bytes per token), the state's trip over the bus
apart (what keeping the state on the device would remove), prompt processing against the FP32
peak (the kernels are SIMT FP32) and the dense FP16 tensor-core peak where known.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional

import numpy as np

# Real RWKV shapes: (n_layer, n_embd); vocabulary 65536 (World).
SHAPES = {"0.1B": (12, 768), "0.4B": (24, 1024), "1.5B": (24, 2048), "3B": (32, 2560)}
QUANT_TYPES = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0")

# ms/token decode and tokens/s for a 512-token prompt, rwkv.cpp | llama.cpp, 2 threads, measured
# on a 2-core Zen 4 with random weights of the real shape (see the CPU-kernels issue).
PEERS_DECODE_MS = {
    ("1.5B", "FP16"): (106.3, 83.4), ("1.5B", "Q8_0"): (76.8, 57.5), ("1.5B", "Q5_1"): (84.8, 73.0), ("1.5B", "Q4_0"): (61.1, 40.6),
    ("0.4B", "FP16"): (30.3, 31.5), ("0.4B", "Q8_0"): (25.0, 24.2), ("0.4B", "Q5_1"): (25.8, 25.1), ("0.4B", "Q4_0"): (21.5, 14.3),
}
PEERS_PROMPT_TPS = {
    ("0.4B", "FP16"): (68, 219), ("0.4B", "Q8_0"): (89, 213), ("0.4B", "Q5_1"): (70, 99), ("0.4B", "Q4_0"): (81, 297),
    ("1.5B", "FP16"): (19, 64), ("1.5B", "Q8_0"): (26, 72), ("1.5B", "Q5_1"): (21, 29), ("1.5B", "Q4_0"): (25, 83),
}


def measure_read_bandwidth(n_threads: int, n_bytes: int = 1 << 30, repeats: int = 5) -> float:
    """Bytes per second n_threads reach summing a buffer far larger than the caches."""
    data = np.ones(n_bytes // 4, dtype=np.float32)
    parts = np.array_split(data, n_threads)
    best = float("inf")
    with ThreadPoolExecutor(n_threads) as pool:
        for _ in range(repeats):
            start = time.perf_counter()
            list(pool.map(np.sum, parts))  # numpy releases the GIL while it sums
            best = min(best, time.perf_counter() - start)
    return n_bytes / best


_SGEMM_PROBE = """
import time, numpy as np
a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
best = float("inf")
for _ in range(5):
    start = time.perf_counter(); a @ a; best = min(best, time.perf_counter() - start)
print(2 * 2048**3 / best)
"""


def measure_fp32_flops(n_threads: int) -> float:
    """FP32 FLOP/s of numpy's BLAS SGEMM with n_threads (a child process: BLAS reads its
    thread count at start)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(n_threads), OMP_NUM_THREADS=str(n_threads), MKL_NUM_THREADS=str(n_threads))
    out = subprocess.run([sys.executable, "-c", _SGEMM_PROBE], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout)


# Dense FP16 tensor-core TFLOP/s by compute capability (SXM parts: A100, H100), the ceiling
# the current FP32 SIMT prompt kernels do not aim at. Absent: not printed.
TENSOR_CORE_FP16_TFLOPS = {(8, 0): 312.0, (9, 0): 989.0}


@dataclass
class Result:
    threads: int
    decode_ms: float
    prompt_tps: float
    peak_rss_bytes: int
    gpu_layers: int = 0  # layers (+ 1 for the head) the library actually offloaded


def gpu_info() -> Optional[dict]:
    """The GPU the library offloads to (name, compute capability, SMs, clock, memory, bandwidth
    and FP32 peak), or None without one; the reason is then in the library's last message."""
    from . import _native

    library = _native.load()
    info = _native.ffi.new("struct rwkv_gpu_info *")
    if not library.lib.rwkv_get_gpu_info(info):
        return None
    return {
        "name": _native.ffi.string(info.name).decode("utf-8", "replace"),
        "compute_capability": (int(info.compute_major), int(info.compute_minor)),
        "sm_count": int(info.sm_count),
        "clock_ghz": float(info.clock_ghz),
        "memory_bytes": int(info.memory_bytes),
        "memory_bandwidth_gbs": float(info.memory_bandwidth_gbs),
        "fp32_tflops": float(info.fp32_tflops),
    }


def gpu_unavailable_reason() -> str:
    from . import _native

    return _native.ffi.string(_native.load().lib.rwkv_get_last_error_message(_native.ffi.NULL)).decode("utf-8", "replace")


_BENCH_CHILD = """
import json, resource, statistics, sys, time
import numpy as np
import rwkv_cpp
import warnings
path, threads, n_decode, n_prompt, gpu_layers = sys.argv[1], *map(int, sys.argv[2:6])
with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)  # no GPU: the parent has said so already
    model = rwkv_cpp.Model(path, thread_count=threads, gpu_layer_count=gpu_layers)
with model:
    tokens = np.random.default_rng(0).integers(0, model.n_vocab, max(n_prompt, n_decode)).tolist()
    logits, state = model.eval_sequence(tokens[:8])  # warm up: pages in, caches
    times = []
    for token in tokens[:n_decode]:
        start = time.perf_counter()
        model.eval(token, state, out_state=state, out_logits=logits)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    model.eval_sequence(tokens[:n_prompt])
    prompt_s = time.perf_counter() - start
    offloaded = model.gpu_layer_count
def peak_rss():
    # VmHWM belongs to this program; ru_maxrss would carry the parent's peak across fork + exec.
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
print(json.dumps({"decode_ms": statistics.median(times) * 1e3, "prompt_tps": n_prompt / prompt_s, "gpu_layers": offloaded,
                  "peak_rss_bytes": peak_rss()}))
"""


def bench_model(path: str, threads: int, n_decode: int, n_prompt: int, gpu_layers: int = 0) -> Result:
    """Decode and prompt timings in a fresh process, so its peak RSS is the model's alone."""
    import json

    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([package_parent, os.environ.get("PYTHONPATH", "")]),
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", _BENCH_CHILD, path, str(threads), str(n_decode), str(n_prompt), str(gpu_layers)],
                         capture_output=True, text=True, env=env, check=True)
    return Result(threads=threads, **json.loads(out.stdout))


def _on_gpu(name: str, gpu_layers: int, n_layer: int) -> bool:
    """Whether a tensor is offloaded with gpu_layers: the first layers, then ln_out and head."""
    if name.startswith("blocks."):
        return int(name.split(".")[1]) < min(gpu_layers, n_layer)
    return gpu_layers > n_layer and name.startswith(("head.", "ln_out."))


def weight_stats(path: str, gpu_layers: int = 0) -> tuple[int, int, bool]:
    """(bytes read per decoded token, multiply-adds per token, quantized?) from the file's
    tensor table: every matrix once, of the embedding one row. With gpu_layers > 0: only the
    offloaded matrices (the GPU's share)."""
    from .model_file import read_tensor_table

    header, tensors = read_tensor_table(path)
    bytes_per_token = macs = 0
    quantized = False
    for t in tensors:
        if len(t.shape) < 2 or (gpu_layers > 0 and not _on_gpu(t.name, gpu_layers, header.n_layer)):
            continue
        rows = int(np.prod(t.shape[:-1]))
        if t.name == "emb.weight":
            bytes_per_token += t.n_bytes // rows
            continue
        bytes_per_token += t.n_bytes
        macs += rows * t.shape[-1]
        quantized = quantized or t.type_name.startswith("Q")
    return bytes_per_token, macs, quantized


def print_gpu_figures(path: str, r: Result, info: dict, n_prompt: int) -> None:
    """The offloaded part of one run against the GPU's peaks (docs/cuda.md). Ratios only."""
    from .model import Model

    with Model(path, thread_count=1) as model:  # shapes only
        n_layer, state_len = model.n_layer, model.state_len
    gpu_bytes, gpu_macs, _ = weight_stats(path, r.gpu_layers)
    state_bytes = 2 * 4 * state_len // n_layer * min(r.gpu_layers, n_layer)  # up and down once per call
    bandwidth = info["memory_bandwidth_gbs"] * 1e9
    decode_tps = 1e3 / r.decode_ms
    floor_ms = gpu_bytes / bandwidth * 1e3
    print(f"{'':7} GPU: {gpu_bytes / 2**20:.0f} MiB of weights, {floor_ms:.3f} ms floor at {info['memory_bandwidth_gbs']:.0f} GB/s; "
          f"decode at {gpu_bytes * decode_tps / bandwidth:.1%} of bandwidth "
          f"({(gpu_bytes + state_bytes) * decode_tps / bandwidth:.1%} counting the state copies); "
          f"state over the bus {state_bytes / 2**20:.2f} MiB per call")
    flops = 2 * gpu_macs * r.prompt_tps
    line = (f"{'':7} GPU: prompt {flops / 1e12:.2f} TFLOP/s in the offloaded part ({n_prompt} tokens), "
            f"{flops / (info['fp32_tflops'] * 1e12):.1%} of the FP32 peak {info['fp32_tflops']:.1f} TFLOP/s")
    tensor_peak = TENSOR_CORE_FP16_TFLOPS.get(info["compute_capability"])
    if tensor_peak:
        line += f", {flops / (tensor_peak * 1e12):.2%} of the FP16 tensor-core peak {tensor_peak:.0f}"
    print(line)


def bench_file(path: str, n_embd: int, n_layer: int, n_vocab: int, type_name: str, arch: str = "7") -> None:
    """Makes a random RWKV-7 (or 6) model of the given shape in path (cached by the caller)."""
    from .convert import convert_tensors
    from .quantize import quantize_model_file
    from .random_model import RandomCheckpoint

    checkpoint = RandomCheckpoint(n_embd=n_embd, n_layer=n_layer, n_vocab=n_vocab, arch=arch)
    if type_name in QUANT_TYPES:
        source = path + ".fp16.tmp"
        convert_tensors(checkpoint, source, "FP16", progress=True)
        try:
            quantize_model_file(source, path, type_name, progress=True)
        finally:
            os.remove(source)
    else:
        convert_tensors(checkpoint, path, type_name, progress=True)


def model_for_shape(shape: str, type_name: str, arch: str, cache_dir: str) -> str:
    """A random model of a real shape, made once and kept in cache_dir."""
    n_layer, n_embd = SHAPES[shape]
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, f"rwkv{arch}-{shape}-{type_name}.bin")
    if not os.path.exists(path):
        print(f"making a random RWKV-{arch} {shape} {type_name} model in {path} (once) ...", file=sys.stderr, flush=True)
        bench_file(path, n_embd, n_layer, 65536, type_name, arch)
    return path


def measure(model: str, thread_counts: list[int], n_decode: int, n_prompt: int, gpu_layers: int = 0) -> dict:
    """Everything `run` prints, as a dict (the --json output)."""
    bytes_per_token, macs, quantized = weight_stats(model)
    # Two-level 8-bit activations: two integer multiply-adds per weight.
    ops_per_token = 2 * macs * (2 if quantized else 1)
    rows = []
    for threads in thread_counts:
        bandwidth = measure_read_bandwidth(threads)
        peak = measure_fp32_flops(threads) * (4 if quantized else 1)
        r = bench_model(model, threads, n_decode, n_prompt, gpu_layers)
        # The CPU's share: what the GPU does not read or compute (all of it without offload).
        gpu_bytes, gpu_macs, _ = weight_stats(model, r.gpu_layers) if r.gpu_layers else (0, 0, False)
        floor_ms = (bytes_per_token - gpu_bytes) / bandwidth * 1e3
        achieved = r.prompt_tps * (ops_per_token - 2 * gpu_macs * (2 if quantized else 1))
        rows.append({"threads": threads, "gpu_layers": r.gpu_layers, "result": r, "bandwidth_gbs": bandwidth / 1e9, "floor_ms": floor_ms,
                     "decode_ms": r.decode_ms, "decode_of_floor": floor_ms / r.decode_ms,
                     "prompt_tps": r.prompt_tps, "prompt_gops": achieved / 1e9, "peak_gops": peak / 1e9,
                     "prompt_of_peak": achieved / peak, "peak_rss_bytes": r.peak_rss_bytes})
    return {"model": model, "file_bytes": os.path.getsize(model), "bytes_per_token": bytes_per_token,
            "quantized": quantized, "rows": rows}


def run(model: Optional[str], shape: Optional[str], type_name: str, thread_counts: list[int],
        n_decode: int, n_prompt: int, cache_dir: str, gpu_layers: int = 0, *, arch: str = "7", as_json: bool = False) -> dict:
    import json

    from .model import system_info

    if model is None:
        model = model_for_shape(shape, type_name, arch, cache_dir)
    result = measure(model, thread_counts, n_decode, n_prompt, gpu_layers)
    result["system"] = system_info()
    info = gpu_info() if gpu_layers > 0 else None
    result["gpu"] = info
    if as_json:
        print(json.dumps(result, default=lambda value: None))
        return result
    print(f"model      {model} ({result['file_bytes'] / 2**20:.0f} MiB, {result['bytes_per_token'] / 2**20:.0f} MiB read per token)")
    print(f"library    {result['system']}")
    if gpu_layers > 0:
        if info is None:
            print(f"gpu        none: {gpu_unavailable_reason()}; every layer runs on the CPU")
        else:
            major, minor = info["compute_capability"]
            print(f"gpu        {info['name']} (compute {major}.{minor}, {info['sm_count']} SMs, {info['clock_ghz']:.2f} GHz, "
                  f"{info['memory_bytes'] / 2**30:.0f} GiB, {info['memory_bandwidth_gbs']:.0f} GB/s, "
                  f"{info['fp32_tflops']:.1f} FP32 TFLOP/s)")
    peak_kind = "int8 (est. 4x FP32)" if result["quantized"] else "FP32 FMA"
    print(f"{'threads':>7} {'GB/s':>6} {'floor ms':>8} {'decode ms':>9} {'of floor':>8} | "
          f"{'prompt tok/s':>12} {'GOP/s':>7} {'peak GOP/s':>10} {'of peak':>7} | {'peak RSS':>9}   ({peak_kind})")
    for row in result["rows"]:
        if row["gpu_layers"]:
            print(f"{'':7} {row['gpu_layers']} GPU layers in use (of {gpu_layers} asked); the CPU columns count the CPU's part only")
        print(f"{row['threads']:7d} {row['bandwidth_gbs']:6.1f} {row['floor_ms']:8.2f} {row['decode_ms']:9.2f} "
              f"{row['decode_of_floor']:8.0%} | {row['prompt_tps']:12.1f} {row['prompt_gops']:7.1f} "
              f"{row['peak_gops']:10.1f} {row['prompt_of_peak']:7.0%} | {row['peak_rss_bytes'] / 2**20:6.0f} MiB")
        if row["gpu_layers"] and info is not None:
            print_gpu_figures(model, row["result"], info, n_prompt)
    rows = result["rows"]
    if len(rows) > 1:
        print(f"one thread to {rows[-1]['threads']}: decode x{rows[0]['decode_ms'] / rows[-1]['decode_ms']:.2f}, "
              f"prompt x{rows[-1]['prompt_tps'] / rows[0]['prompt_tps']:.2f}")
    if shape is not None and (shape, type_name) in PEERS_DECODE_MS and rows[-1]["threads"] == 2:
        (cpp_ms, llama_ms), (cpp_tps, llama_tps) = PEERS_DECODE_MS[shape, type_name], PEERS_PROMPT_TPS[shape, type_name]
        r = rows[-1]
        print(f"peers (2 threads, same shape, measured on a 2-core Zen 4): decode rwkv.cpp {cpp_ms} ms (x{cpp_ms / r['decode_ms']:.2f}), "
              f"llama.cpp {llama_ms} ms (x{llama_ms / r['decode_ms']:.2f}); prompt rwkv.cpp {cpp_tps} tok/s (x{r['prompt_tps'] / cpp_tps:.2f}), "
              f"llama.cpp {llama_tps} tok/s (x{r['prompt_tps'] / llama_tps:.2f})")
    return result
