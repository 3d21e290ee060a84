"""Decode and prompt speed of a random-weights model of a real RWKV shape, against the
machine's measured memory bandwidth (decode reads every weight once per token).

    python tools/bench_decode.py                      # 0.4B shape, RWKV-7, FP16, 1 and 2 threads
    python tools/bench_decode.py --n-layer 24 --n-embd 2048   # 1.5B shape

The model file is cached in --cache-dir (made once with tools/make_demo_checkpoint.py's
generator and the converter).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rwkv_cpp  # noqa: E402
from make_demo_checkpoint import make_v7_checkpoint, write_safetensors  # noqa: E402
from rwkv_cpp.convert import convert_checkpoint  # noqa: E402


def measure_read_bandwidth(n_threads: int, n_bytes: int = 1 << 30, repeats: int = 5) -> float:
    """Bytes per second that n_threads reach summing a buffer far larger than the caches."""
    data = np.ones(n_bytes // 4, dtype=np.float32)
    parts = np.array_split(data, n_threads)
    best = float("inf")
    with ThreadPoolExecutor(n_threads) as pool:
        for _ in range(repeats):
            start = time.perf_counter()
            list(pool.map(np.sum, parts))  # numpy releases the GIL while it sums
            best = min(best, time.perf_counter() - start)
    return n_bytes / best


def model_file(args: argparse.Namespace) -> str:
    name = f"rwkv7-L{args.n_layer}-C{args.n_embd}-V{args.n_vocab}-{args.type}.bin"
    path = os.path.join(args.cache_dir, name)
    if not os.path.exists(path):
        os.makedirs(args.cache_dir, exist_ok=True)
        source = path + ".safetensors"
        print(f"making {path} ...", flush=True)
        write_safetensors(make_v7_checkpoint(n_embd=args.n_embd, n_layer=args.n_layer, n_vocab=args.n_vocab,
                                             head_size=64, seed=0), source)
        convert_checkpoint(source, path, args.type, progress=False)
        os.remove(source)
    return path


def weight_bytes_per_token(path: str, n_vocab: int, n_embd: int, type_bytes: int) -> int:
    """Every weight is read once per token except the embedding, of which one row is."""
    return os.path.getsize(path) - (n_vocab - 1) * n_embd * type_bytes


def bench(path: str, threads: int, n_decode: int, n_prompt: int) -> tuple[float, float]:
    with rwkv_cpp.Model(path, thread_count=threads) as model:
        tokens = np.random.default_rng(0).integers(0, model.n_vocab, n_prompt).tolist()
        logits, state = model.eval_sequence(tokens[:8])  # warm up: pages in, caches
        times = []
        for token in tokens[:n_decode]:
            start = time.perf_counter()
            model.eval(token, state, out_state=state, out_logits=logits)
            times.append(time.perf_counter() - start)
        decode_ms = statistics.median(times) * 1e3
        start = time.perf_counter()
        model.eval_sequence(tokens, None)
        prompt_tps = n_prompt / (time.perf_counter() - start)
    return decode_ms, prompt_tps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-layer", type=int, default=24)
    parser.add_argument("--n-embd", type=int, default=1024)
    parser.add_argument("--n-vocab", type=int, default=65536)
    parser.add_argument("--type", default="FP16", choices=["FP16", "FP32"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--cache-dir", default=os.path.join(os.path.expanduser("~"), ".cache", "rwkv_cpp_bench"))
    args = parser.parse_args()

    path = model_file(args)
    type_bytes = 2 if args.type == "FP16" else 4
    weight_bytes = weight_bytes_per_token(path, args.n_vocab, args.n_embd, type_bytes)
    print(f"model {os.path.basename(path)}: {os.path.getsize(path) / 2**20:.0f} MiB, "
          f"{weight_bytes / 2**20:.0f} MiB of weights read per token")
    print(f"library: {rwkv_cpp.system_info()}")
    print(f"{'threads':>7} {'GB/s':>6} {'floor ms':>9} {'decode ms':>10} {'% of floor':>10} {'prompt tok/s':>13}")
    for threads in args.threads:
        bandwidth = measure_read_bandwidth(threads)
        floor_ms = weight_bytes / bandwidth * 1e3
        decode_ms, prompt_tps = bench(path, threads, args.decode_tokens, args.prompt_tokens)
        print(f"{threads:7d} {bandwidth / 1e9:6.1f} {floor_ms:9.2f} {decode_ms:10.2f} "
              f"{100 * floor_ms / decode_ms:9.0f}% {prompt_tps:13.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
