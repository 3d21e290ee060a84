"""Reading the header and tensor table of an rwkv.cpp `.bin` file without loading weights
(for `info` and `bench`; the C library is what validates and evaluates files)."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

MAGIC = 0x67676D66
TYPE_NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q5_0", 8: "Q5_1", 9: "Q8_0"}
# (elements, bytes) per block
_BLOCKS = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 7: (32, 22), 8: (32, 24), 9: (32, 34)}


class ModelFileFormatError(ValueError):
    """The file is not a readable rwkv.cpp model file."""


@dataclass(frozen=True)
class FileHeader:
    version: int
    n_vocab: int
    n_embed: int
    n_layer: int
    data_type: str


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # PyTorch order
    type_name: str
    n_bytes: int


def read_tensor_table(path: str | os.PathLike) -> tuple[FileHeader, list[TensorInfo]]:
    size = os.path.getsize(path)
    tensors: list[TensorInfo] = []
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            raise ModelFileFormatError(f"{path}: too short for a model header")
        magic, version, n_vocab, n_embed, n_layer, data_type = struct.unpack("<6i", head)
        if magic != MAGIC:
            raise ModelFileFormatError(f"{path}: not an rwkv.cpp model file (magic 0x{magic & 0xffffffff:08x})")
        header = FileHeader(version, n_vocab, n_embed, n_layer, TYPE_NAMES.get(data_type, f"type {data_type}"))
        while f.tell() < size:
            record = f.read(12)
            if len(record) < 12:
                raise ModelFileFormatError(f"{path}: truncated tensor record at byte {f.tell()}")
            n_dims, name_length, type_id = struct.unpack("<3i", record)
            if not 1 <= n_dims <= 3 or not 0 < name_length <= 255 or type_id not in _BLOCKS:
                raise ModelFileFormatError(f"{path}: bad tensor record at byte {f.tell() - 12}")
            dims = struct.unpack(f"<{n_dims}i", f.read(4 * n_dims))
            name = f.read(name_length).decode("utf-8", "replace")
            elements = 1
            for d in dims:
                elements *= d
            per_block, block_bytes = _BLOCKS[type_id]
            n_bytes = elements // per_block * block_bytes
            tensors.append(TensorInfo(name, tuple(reversed(dims)), TYPE_NAMES[type_id], n_bytes))
            f.seek(n_bytes, 1)
    return header, tensors
