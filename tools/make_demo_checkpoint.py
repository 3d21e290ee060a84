"""Writes a small random RWKV checkpoint (RWKV-LM tensor names, .safetensors) with numpy only.

It stands in for a downloaded checkpoint until the trained demo model exists:
    python tools/make_demo_checkpoint.py demo.safetensors --arch 7
    rwkv-cpp convert demo.safetensors demo.bin --type FP16
"""

from __future__ import annotations

import argparse
import json
import struct
import sys

import numpy as np


def _layer_v7(rng: np.random.Generator, i: int, C: int, H: int, lora: int) -> dict[str, np.ndarray]:
    def matrix(n_out: int, n_in: int) -> np.ndarray:
        return rng.normal(0, 1 / np.sqrt(n_in), (n_out, n_in))

    def mix() -> np.ndarray:
        return rng.uniform(0, 1, (1, 1, C))

    p = f"blocks.{i}."
    layer = {
        p + "ln1.weight": 1 + 0.1 * rng.normal(size=C), p + "ln1.bias": 0.1 * rng.normal(size=C),
        p + "ln2.weight": 1 + 0.1 * rng.normal(size=C), p + "ln2.bias": 0.1 * rng.normal(size=C),
    }
    if i == 0:
        layer[p + "ln0.weight"] = 1 + 0.1 * rng.normal(size=C)
        layer[p + "ln0.bias"] = 0.1 * rng.normal(size=C)
    for name in ("x_r", "x_w", "x_k", "x_v", "x_a", "x_g"):
        layer[p + "att." + name] = mix()
    layer[p + "att.w0"] = rng.uniform(-6, -0.5, (1, 1, C))
    layer[p + "att.a0"] = 0.1 * rng.normal(size=(1, 1, C))
    layer[p + "att.v0"] = 0.1 * rng.normal(size=(1, 1, C))
    for low, high in (("w1", "w2"), ("a1", "a2"), ("v1", "v2"), ("g1", "g2")):
        layer[p + "att." + low] = matrix(lora, C).T.copy() * 0.5  # RWKV-LM stores (C, D): x @ w1
        layer[p + "att." + high] = matrix(C, lora).T.copy() * 0.5  # and (D, C)
    layer[p + "att.k_k"] = 1 + 0.1 * rng.normal(size=(1, 1, C))
    layer[p + "att.k_a"] = 1 + 0.1 * rng.normal(size=(1, 1, C))
    layer[p + "att.r_k"] = 0.5 + 0.1 * rng.normal(size=(H, C // H))
    for name in ("receptance", "key", "value", "output"):
        layer[p + f"att.{name}.weight"] = matrix(C, C)
    layer[p + "att.ln_x.weight"] = 1 + 0.1 * rng.normal(size=C)
    layer[p + "att.ln_x.bias"] = 0.1 * rng.normal(size=C)
    layer[p + "ffn.x_k"] = mix()
    layer[p + "ffn.key.weight"] = matrix(4 * C, C)
    layer[p + "ffn.value.weight"] = matrix(C, 4 * C) * 0.5
    return layer


def make_v7_checkpoint(*, n_embd: int, n_layer: int, n_vocab: int, head_size: int, seed: int) -> dict[str, np.ndarray]:
    """Random RWKV-7 weights in RWKV-LM's key order, float32."""
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {"emb.weight": rng.normal(0, 1, (n_vocab, n_embd))}
    for i in range(n_layer):
        tensors.update(_layer_v7(rng, i, n_embd, n_embd // head_size, lora=32))
    tensors["ln_out.weight"] = 1 + 0.1 * rng.normal(size=n_embd)
    tensors["ln_out.bias"] = 0.1 * rng.normal(size=n_embd)
    tensors["head.weight"] = rng.normal(0, 1 / np.sqrt(n_embd), (n_vocab, n_embd))
    return {name: np.ascontiguousarray(t, dtype=np.float32) for name, t in tensors.items()}


def write_safetensors(tensors: dict[str, np.ndarray], path: str) -> None:
    """The safetensors layout: u64 header size, JSON header, raw little-endian data."""
    header: dict[str, dict] = {}
    offset = 0
    for name, t in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for t in tensors.values():
            f.write(t.astype("<f4").tobytes())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="output .safetensors path")
    parser.add_argument("--n-embd", type=int, default=256)
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-vocab", type=int, default=256, help="256: byte-level vocabulary")
    parser.add_argument("--head-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.n_embd % args.head_size:
        parser.error("--n-embd must be a multiple of --head-size")
    tensors = make_v7_checkpoint(n_embd=args.n_embd, n_layer=args.n_layer, n_vocab=args.n_vocab,
                                 head_size=args.head_size, seed=args.seed)
    write_safetensors(tensors, args.out)
    print(f"wrote {args.out}: RWKV-7, {args.n_layer} layers, n_embd {args.n_embd}, vocabulary {args.n_vocab}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
