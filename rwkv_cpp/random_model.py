"""Random RWKV-7 (and RWKV-6) checkpoints of any shape (RWKV-LM tensor names), numpy only.

For benchmarks (`rwkv-cpp bench --shape 1.5B`) and for trying the tools without a download:
    python -m rwkv_cpp.random_model demo.safetensors
    rwkv-cpp convert demo.safetensors demo.bin --type FP16
Tensors are made on access, each from its own seed, so a 1.5B model never sits in memory.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import zlib
from collections.abc import Iterator, Mapping

import numpy as np

LORA = 32  # low-rank width of w, a, v, g


def v7_shapes(n_embd: int, n_layer: int, n_vocab: int, head_size: int = 64) -> dict[str, tuple[int, ...]]:
    """Every tensor of an RWKV-7 checkpoint with its shape, in RWKV-LM's key order."""
    C, H = n_embd, n_embd // head_size
    shapes: dict[str, tuple[int, ...]] = {"emb.weight": (n_vocab, C)}
    for i in range(n_layer):
        p = f"blocks.{i}."
        for name in ("ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias") + (("ln0.weight", "ln0.bias") if i == 0 else ()):
            shapes[p + name] = (C,)
        for name in ("x_r", "x_w", "x_k", "x_v", "x_a", "x_g", "w0", "a0", "v0"):
            shapes[p + "att." + name] = (1, 1, C)
        for low, high in (("w1", "w2"), ("a1", "a2"), ("v1", "v2"), ("g1", "g2")):
            shapes[p + "att." + low] = (C, LORA)  # used as x @ w1
            shapes[p + "att." + high] = (LORA, C)
        shapes[p + "att.k_k"] = shapes[p + "att.k_a"] = (1, 1, C)
        shapes[p + "att.r_k"] = (H, head_size)
        for name in ("receptance", "key", "value", "output"):
            shapes[p + f"att.{name}.weight"] = (C, C)
        shapes[p + "att.ln_x.weight"] = shapes[p + "att.ln_x.bias"] = (C,)
        shapes[p + "ffn.x_k"] = (1, 1, C)
        shapes[p + "ffn.key.weight"] = (4 * C, C)
        shapes[p + "ffn.value.weight"] = (C, 4 * C)
    shapes["ln_out.weight"] = shapes["ln_out.bias"] = (C,)
    shapes["head.weight"] = (n_vocab, C)
    return shapes


def v6_shapes(n_embd: int, n_layer: int, n_vocab: int, head_size: int = 64) -> dict[str, tuple[int, ...]]:
    """Every tensor of an RWKV-6 checkpoint with its shape, in RWKV-LM's key order."""
    C, H, F = n_embd, n_embd // head_size, int(n_embd * 3.5) // 32 * 32
    shapes: dict[str, tuple[int, ...]] = {"emb.weight": (n_vocab, C)}
    for i in range(n_layer):
        p = f"blocks.{i}."
        for name in ("ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias") + (("ln0.weight", "ln0.bias") if i == 0 else ()):
            shapes[p + name] = (C,)
        for name in ("x", "w", "k", "v", "r", "g"):
            shapes[p + "att.time_maa_" + name] = (1, 1, C)
        shapes[p + "att.time_maa_w1"] = (C, 5 * LORA)
        shapes[p + "att.time_maa_w2"] = (5, LORA, C)
        shapes[p + "att.time_decay"] = (1, 1, C)
        shapes[p + "att.time_decay_w1"] = (C, 2 * LORA)
        shapes[p + "att.time_decay_w2"] = (2 * LORA, C)
        shapes[p + "att.time_faaaa"] = (H, head_size)
        for name in ("receptance", "key", "value", "gate", "output"):
            shapes[p + f"att.{name}.weight"] = (C, C)
        shapes[p + "att.ln_x.weight"] = shapes[p + "att.ln_x.bias"] = (C,)
        shapes[p + "ffn.time_maa_k"] = shapes[p + "ffn.time_maa_r"] = (1, 1, C)
        shapes[p + "ffn.key.weight"] = (F, C)
        shapes[p + "ffn.value.weight"] = (C, F)
        shapes[p + "ffn.receptance.weight"] = (C, C)
    shapes["ln_out.weight"] = shapes["ln_out.bias"] = (C,)
    shapes["head.weight"] = (n_vocab, C)
    return shapes


def random_tensor(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Values in the ranges trained models have, chosen by the tensor's role."""
    parts = name.split(".")
    last, owner = parts[-1], parts[-2] if len(parts) > 1 else ""
    if name == "emb.weight":
        values = rng.standard_normal(shape)
    elif last == "bias" or last in ("a0", "v0"):
        values = 0.1 * rng.standard_normal(shape)
    elif last == "weight" and owner.startswith("ln"):  # ln0, ln1, ln2, ln_x, ln_out
        values = 1 + 0.1 * rng.standard_normal(shape)
    elif last.startswith("x_") or (last.startswith("time_maa_") and len(shape) == 3 and shape[:2] == (1, 1)):
        values = rng.uniform(0, 1, shape)
    elif last == "time_decay":
        values = rng.uniform(-6, 1, shape)
    elif last == "time_faaaa":
        values = 0.5 * rng.standard_normal(shape)
    elif last in ("time_maa_w1", "time_decay_w1"):  # used as x @ w: fan-in is the rows
        values = 0.1 * rng.standard_normal(shape) / np.sqrt(shape[0])
    elif last in ("time_maa_w2", "time_decay_w2"):
        values = 0.1 * rng.standard_normal(shape) / np.sqrt(shape[-2])
    elif last == "w0":
        values = rng.uniform(-6, -0.5, shape)
    elif last in ("k_k", "k_a"):
        values = 1 + 0.1 * rng.standard_normal(shape)
    elif last == "r_k":
        values = 0.5 + 0.1 * rng.standard_normal(shape)
    elif last in ("w1", "w2", "a1", "a2", "v1", "v2", "g1", "g2"):  # used as x @ w: fan-in is the rows
        values = 0.5 * rng.standard_normal(shape) / np.sqrt(shape[0])
    else:  # [out, in] matrices
        values = rng.standard_normal(shape) / np.sqrt(shape[-1]) * (0.5 if owner == "value" else 1.0)
    return values.astype(np.float32)


class RandomCheckpoint(Mapping):
    """A read-only checkpoint whose tensors are generated when read (same seed, same values)."""

    def __init__(self, *, n_embd: int, n_layer: int, n_vocab: int, head_size: int = 64, seed: int = 0, arch: str = "7"):
        if n_embd % head_size:
            raise ValueError(f"n_embd {n_embd} is not a multiple of head_size {head_size}")
        if arch not in ("6", "7"):
            raise ValueError(f"random checkpoints are RWKV-6 or RWKV-7, not {arch!r}")
        self.path = f"<random RWKV-{arch}: {n_layer} layers, n_embd {n_embd}, vocabulary {n_vocab}>"
        shapes = v7_shapes if arch == "7" else v6_shapes
        self._shapes = shapes(n_embd, n_layer, n_vocab, head_size)
        self._seed = seed

    def __getitem__(self, name: str) -> np.ndarray:
        rng = np.random.default_rng([self._seed, zlib.crc32(name.encode())])
        return random_tensor(name, self._shapes[name], rng)

    def __iter__(self) -> Iterator[str]:
        return iter(self._shapes)

    def __len__(self) -> int:
        return len(self._shapes)

    def shape(self, name: str) -> tuple[int, ...]:
        return self._shapes[name]


def make_v7_checkpoint(*, n_embd: int, n_layer: int, n_vocab: int, head_size: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    """A small random RWKV-7 checkpoint as a dict (float32)."""
    return dict(RandomCheckpoint(n_embd=n_embd, n_layer=n_layer, n_vocab=n_vocab, head_size=head_size, seed=seed))


def write_safetensors(tensors: Mapping[str, np.ndarray], path: str) -> None:
    """The safetensors layout: u64 header size, JSON header, raw little-endian float32 data."""
    header: dict[str, dict] = {}
    offset = 0
    for name in tensors:
        n_bytes = int(np.prod(tensors[name].shape)) * 4
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + n_bytes]}
        offset += n_bytes
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for name in tensors:
            f.write(np.ascontiguousarray(tensors[name], dtype="<f4").tobytes())


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
    write_safetensors(make_v7_checkpoint(n_embd=args.n_embd, n_layer=args.n_layer, n_vocab=args.n_vocab,
                                         head_size=args.head_size, seed=args.seed), args.out)
    print(f"wrote {args.out}: RWKV-7, {args.n_layer} layers, n_embd {args.n_embd}, vocabulary {args.n_vocab}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
