"""Writing rwkv.cpp .bin files directly in tests: valid models of a given shape, or crafted
broken ones. Independent of the package's converter on purpose."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np

MAGIC = 0x67676D66
F32, F16 = 0, 1

TensorData = Union[np.ndarray, None]  # None: zeros, written as a hole in a sparse file


def tensor_record(name: str, shape: Sequence[int], data_type: int) -> bytes:
    """The header of one tensor: n_dims, key length, type, dims in ggml (reversed) order, key."""
    key = name.encode()
    return struct.pack("=iii", len(shape), len(key), data_type) + struct.pack(f"={len(shape)}i", *reversed(shape)) + key


def write_model(path: Union[str, Path], n_vocab: int, n_embed: int, n_layer: int,
                tensors: Iterable[tuple[str, Sequence[int], int, TensorData]],
                *, version: int = 101, data_type: int = F32) -> Path:
    """Writes header + tensors; a tensor whose data is None is left as zeros (sparse)."""
    path = Path(path)
    with open(path, "wb") as f:
        f.write(struct.pack("=6i", MAGIC, version, n_vocab, n_embed, n_layer, data_type))
        for name, shape, tensor_type, data in tensors:
            f.write(tensor_record(name, shape, tensor_type))
            n_bytes = int(np.prod(shape)) * (4 if tensor_type == F32 else 2)
            if data is None:
                f.seek(n_bytes, 1)
            else:
                f.write(np.ascontiguousarray(data, dtype=np.float32 if tensor_type == F32 else np.float16).tobytes())
        f.truncate()
    return path


def v4_tensors(n_vocab: int, n_embed: int, n_layer: int, matrix_type: int = F16,
               rng: Optional[np.random.Generator] = None) -> list[tuple[str, tuple[int, ...], int, TensorData]]:
    """An RWKV-4 tensor list in rwkv.cpp's layout; random when rng is given, else zero matrices."""
    C, F = n_embed, 4 * n_embed

    def matrix(n_out: int, n_in: int) -> TensorData:
        return None if rng is None else rng.normal(0, 1 / np.sqrt(n_in), (n_out, n_in))

    def vector(center: float = 0.0) -> np.ndarray:
        return np.full(C, center) if rng is None else center + 0.1 * rng.normal(size=C)

    tensors = [("emb.weight", (n_vocab, C), matrix_type, matrix(n_vocab, C)),
               ("blocks.0.ln0.weight", (C,), F32, vector(1.0)), ("blocks.0.ln0.bias", (C,), F32, vector())]
    for i in range(n_layer):
        p = f"blocks.{i}."
        tensors += [(p + "ln1.weight", (C,), F32, vector(1.0)), (p + "ln1.bias", (C,), F32, vector()),
                    (p + "ln2.weight", (C,), F32, vector(1.0)), (p + "ln2.bias", (C,), F32, vector()),
                    (p + "att.time_mix_k", (C,), F32, vector(0.5)), (p + "att.time_mix_v", (C,), F32, vector(0.5)),
                    (p + "att.time_mix_r", (C,), F32, vector(0.5)), (p + "att.time_first", (C,), F32, vector(-1.0)),
                    (p + "att.time_decay", (C,), F32, vector(-1.0))]
        tensors += [(p + f"att.{name}.weight", (C, C), matrix_type, matrix(C, C)) for name in ("key", "value", "receptance", "output")]
        tensors += [(p + "ffn.time_mix_k", (C,), F32, vector(0.5)), (p + "ffn.time_mix_r", (C,), F32, vector(0.5)),
                    (p + "ffn.key.weight", (F, C), matrix_type, matrix(F, C)), (p + "ffn.value.weight", (C, F), matrix_type, matrix(C, F)),
                    (p + "ffn.receptance.weight", (C, C), matrix_type, matrix(C, C))]
    tensors += [("ln_out.weight", (C,), F32, vector(1.0)), ("ln_out.bias", (C,), F32, vector()),
                ("head.weight", (n_vocab, C), matrix_type, matrix(n_vocab, C))]
    return tensors
