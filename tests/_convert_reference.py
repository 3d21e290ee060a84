"""The expected output of the converter: rwkv.cpp's conversion steps done with torch, and a .bin reader.

`write_reference` follows rwkv.cpp's python/convert_pytorch_to_ggml.py step by step
(`.float()`, `.squeeze()`, `torch.exp`, `.half()`, `tofile`), so tests compare our
numpy converter against torch doing the same work.
"""

from __future__ import annotations

import math
import struct
from typing import Callable

import numpy as np
import torch

FP32_KEY_PARTS = (".time_", ".k_k", ".k_a", ".r_k", ".x_rwkvag", ".x_k", ".w0", ".a0", ".v0")
V7_LOW_RANK_PARTS = (".w1", ".w2", ".a1", ".a2", ".v1", ".v2", ".g1", ".g2")


def exact_exp(tensor: torch.Tensor) -> torch.Tensor:
    """float32 exp rounded once from float64: what rwkv_cpp.convert computes."""
    return torch.exp(tensor.double()).float()


def write_reference(state_dict: dict[str, torch.Tensor], path, data_type: str,
                    exp: Callable[[torch.Tensor], torch.Tensor] = torch.exp) -> None:
    """Write `state_dict` as rwkv.cpp's converter does; `exp` replaces torch.exp if given."""
    n_layer = 0
    while f"blocks.{n_layer}.ln1.weight" in state_dict:
        n_layer += 1
    n_vocab, n_embed = state_dict["emb.weight"].shape
    is_v5 = "blocks.0.att.ln_x.weight" in state_dict
    is_v5_2 = "blocks.0.att.gate.weight" in state_dict
    is_v6 = "blocks.0.att.time_maa_x" in state_dict
    is_v7 = "blocks.0.att.k_k" in state_dict
    if is_v7:
        state_dict = _merge_v7_mixes(state_dict)
    n_head = state_dict["blocks.0.att.time_faaaa"].shape[0] if is_v6 else 0
    is_fp16 = data_type in ("FP16", "float16")

    with open(path, "wb") as out:
        out.write(struct.pack("=iiiiii", 0x67676D66, 101, n_vocab, n_embed, n_layer, int(is_fp16)))
        for key, value in state_dict.items():
            tensor = value.float()
            if ".time_" in key:
                tensor = tensor.squeeze()
            if is_v7:
                if any(part in key for part in V7_LOW_RANK_PARTS):
                    tensor = tensor.transpose(0, 1)
            elif is_v6:
                if ".time_faaaa" in key:
                    tensor = tensor.unsqueeze(-1)
                if ".time_maa_w1" in key or ".time_decay_w" in key:
                    tensor = tensor.transpose(0, 1)
                if ".time_maa_w2" in key:
                    tensor = tensor.transpose(1, 2)
                if ".time_decay" in key and "_w" not in key:
                    tensor = tensor.reshape(n_head, -1, 1)
            elif is_v5:
                if ".time_decay" in key:
                    decay = exp(-exp(tensor))
                    tensor = decay.unsqueeze(-1) if is_v5_2 else decay.reshape(-1, 1, 1)
                if ".time_first" in key:
                    tensor = exp(tensor).reshape(-1, 1, 1)
                if ".time_faaaa" in key:
                    tensor = tensor.unsqueeze(-1)
            elif ".time_decay" in key:
                tensor = -exp(tensor)
            if is_fp16 and tensor.dim() > 1 and not any(part in key for part in FP32_KEY_PARTS):
                tensor = tensor.half()
            encoded = key.encode("utf-8")
            out.write(struct.pack("=iii", tensor.dim(), len(encoded), int(tensor.dtype == torch.float16)))
            for size in reversed(tensor.shape):
                out.write(struct.pack("=i", size))
            out.write(encoded)
            tensor.numpy().tofile(out)


def _merge_v7_mixes(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """att.x_* of each layer concatenated on dim 0 in dict order, where the first one stood."""
    merged: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if "att.x_" in key:
            name = f"blocks.{key.split('.')[1]}.att.x_rwkvag"
            merged[name] = torch.cat([merged[name], value]) if name in merged else value
        else:
            merged[key] = value
    return merged


def read_bin(data: bytes) -> tuple[tuple[int, ...], dict[str, np.ndarray]]:
    """(header fields, tensors by name in file order) of an rwkv.cpp .bin file."""
    header = struct.unpack_from("<6i", data, 0)
    position, tensors = 24, {}
    while position < len(data):
        n_dims, key_length, file_type = struct.unpack_from("<3i", data, position)
        position += 12
        shape = struct.unpack_from(f"<{n_dims}i", data, position)[::-1]
        position += 4 * n_dims
        name = data[position:position + key_length].decode("utf-8")
        position += key_length
        dtype = np.dtype("<f2" if file_type == 1 else "<f4")
        count = math.prod(shape)
        tensors[name] = np.frombuffer(data, dtype, count, position).reshape(shape)
        position += count * dtype.itemsize
    return header, tensors
