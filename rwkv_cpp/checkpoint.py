"""Read RWKV-LM checkpoints (PyTorch zip `.pth`, `.safetensors`) as numpy arrays, without torch.

A `.pth` file's pickle is replayed by a restricted unpickler that knows only the few
globals `torch.save` uses for a state dict of tensors; anything else is refused before
it can run. Tensor data is read on demand, one tensor at a time.
"""

from __future__ import annotations

import collections
import io
import json
import math
import os
import pickle
import struct
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["Checkpoint", "CheckpointError", "load_checkpoint"]

# A safetensors header larger than this is not a model's (the safetensors library uses the same cap).
_MAX_SAFETENSORS_HEADER_BYTES = 100 * 1024 * 1024


class CheckpointError(ValueError):
    """The checkpoint is missing, unreadable, malformed, or asks to run code."""


@dataclass(frozen=True)
class _DType:
    """A tensor element type as stored in a file."""

    name: str
    stored: np.dtype  # bfloat16 is stored as its raw 16 bits


_DTYPES = {
    "F32": _DType("F32", np.dtype("<f4")),
    "F16": _DType("F16", np.dtype("<f2")),
    "BF16": _DType("BF16", np.dtype("<u2")),
    "F64": _DType("F64", np.dtype("<f8")),
}

_TORCH_STORAGE_DTYPES = {
    "FloatStorage": _DTYPES["F32"],
    "HalfStorage": _DTYPES["F16"],
    "BFloat16Storage": _DTYPES["BF16"],
    "DoubleStorage": _DTYPES["F64"],
}


@dataclass(frozen=True)
class _TensorLayout:
    """Where a tensor's elements lie in its storage (all counts in elements)."""

    dtype: _DType
    storage_numel: int
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    read_storage: Callable[[], bytes]
    big_endian: bool = False


class Checkpoint(Mapping):
    """The tensors of a checkpoint by name, in the file's order.

    Each lookup reads that tensor from disk and returns a new C-contiguous array:
    float32, float16 and float64 tensors keep their type, bfloat16 is widened to float32.

    Example::

        checkpoint = load_checkpoint("RWKV-x070-World-0.1B.pth")
        n_vocab, n_embd = checkpoint.shape("emb.weight")
        emb = checkpoint["emb.weight"]
    """

    def __init__(self, path: str, layouts: dict[str, _TensorLayout]):
        self.path = path
        self._layouts = layouts

    def __getitem__(self, name: str) -> np.ndarray:
        return _materialize(self.path, name, self._layouts[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._layouts)

    def __len__(self) -> int:
        return len(self._layouts)

    def __contains__(self, name: object) -> bool:
        return name in self._layouts

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of a tensor, without reading its data."""
        return self._layouts[name].shape


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Open a `.pth` (PyTorch zip format) or `.safetensors` checkpoint.

    The format is found from the content, not the file name. Raises `CheckpointError`
    when the file is missing, malformed, truncated, of an unsupported tensor type, or
    (for `.pth`) when its pickle names any global beyond those of a tensor state dict.

    Example::

        for name, array in load_checkpoint("model.safetensors").items():
            print(name, array.shape, array.dtype)
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise CheckpointError(f"checkpoint is a directory, not a file: {path}")
    try:
        file_size = os.stat(path).st_size
        with open(path, "rb") as file:
            head = file.read(16)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except OSError as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error.strerror or error}") from None
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return Checkpoint(path, _read_pytorch_layouts(path))
    if len(head) >= 9 and head[8:9] == b"{":
        return Checkpoint(path, _read_safetensors_layouts(path, file_size))
    if head.startswith(b"\x80"):
        raise CheckpointError(
            f"{path}: legacy (non-zip) PyTorch checkpoint; re-save it with a current "
            "torch.save (zip format) or as .safetensors")
    raise CheckpointError(
        f"{path}: not a PyTorch zip checkpoint or a .safetensors file "
        f"({file_size} bytes; truncated or of another format?)")


# --- .pth (PyTorch zip format) ----------------------------------------------------------


@dataclass(frozen=True)
class _StorageRef:
    """A storage named in data.pkl; its bytes are the zip entry `<archive>/data/<key>`."""

    key: str
    dtype: _DType
    numel: int


@dataclass(frozen=True)
class _PendingTensor:
    """A tensor rebuilt by the unpickler, before its storage is bound to the zip entry."""

    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


@dataclass(frozen=True)
class _StorageType:
    """What the unpickler hands out for `torch.FloatStorage` and its siblings."""

    dtype: _DType


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, int) for v in value):
        raise CheckpointError(f"{what} is not a list of integers: {value!r}")
    if any(v < 0 for v in value):
        raise CheckpointError(f"{what} has a negative entry: {value!r}")
    return tuple(value)


def _rebuild_tensor(storage: Any, offset: Any, shape: Any, stride: Any, *_ignored: Any) -> _PendingTensor:
    """Stands in for `torch._utils._rebuild_tensor(_v2)`: records the layout, reads nothing."""
    if not isinstance(storage, _StorageRef):
        raise CheckpointError(f"tensor storage is not a persistent storage reference: {storage!r}")
    if not isinstance(offset, int) or offset < 0:
        raise CheckpointError(f"tensor storage offset is not a non-negative integer: {offset!r}")
    shape, stride = _int_tuple(shape, "tensor shape"), _int_tuple(stride, "tensor stride")
    if len(shape) != len(stride):
        raise CheckpointError(f"tensor shape {shape} and stride {stride} differ in length")
    return _PendingTensor(storage, offset, shape, stride)


def _rebuild_parameter(data: Any, *_ignored: Any) -> _PendingTensor:
    """Stands in for `torch._utils._rebuild_parameter`: a parameter is its data tensor."""
    if not isinstance(data, _PendingTensor):
        raise CheckpointError(f"parameter data is not a tensor: {data!r}")
    return data


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(dtype) for name, dtype in _TORCH_STORAGE_DTYPES.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Replays data.pkl with stand-ins for the tensor globals and refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is not None:
            return allowed
        if module == "torch" and name.endswith("Storage"):
            raise CheckpointError(
                f"unsupported tensor type torch.{name} (supported: "
                f"{', '.join('torch.' + n for n in _TORCH_STORAGE_DTYPES)})")
        raise CheckpointError(
            f"refused global {module}.{name} in data.pkl: a checkpoint may only rebuild tensors")

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError(f"unsupported persistent id in data.pkl: {pid!r}")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"persistent id names no tensor storage type: {storage_type!r}")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise CheckpointError(f"malformed storage reference in data.pkl: {pid!r}")
        return _StorageRef(key, storage_type.dtype, numel)


def _read_pytorch_layouts(path: str) -> dict[str, _TensorLayout]:
    try:
        with zipfile.ZipFile(path) as archive:
            entries = {info.filename: info for info in archive.infolist()}
            prefix = _archive_prefix(path, entries)
            byteorder = archive.read(prefix + "byteorder").decode("ascii", "replace") \
                if prefix + "byteorder" in entries else "little"
            pickled = archive.read(prefix + "data.pkl")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as error:
        raise CheckpointError(f"{path}: corrupt or truncated zip archive: {error}") from None
    if byteorder not in ("little", "big"):
        raise CheckpointError(f"{path}: unknown byteorder {byteorder!r}")
    pending = _unpickle_state_dict(path, pickled)

    layouts = {}
    for name, tensor in pending.items():
        entry_name = f"{prefix}data/{tensor.storage.key}"
        entry = entries.get(entry_name)
        if entry is None:
            raise CheckpointError(f"{path}: tensor {name}: storage {entry_name} is missing")
        expected = tensor.storage.numel * tensor.storage.dtype.stored.itemsize
        if entry.file_size < expected:
            raise CheckpointError(
                f"{path}: tensor {name}: storage {entry_name} is truncated "
                f"({entry.file_size} of {expected} bytes)")
        layouts[name] = _TensorLayout(
            dtype=tensor.storage.dtype, storage_numel=tensor.storage.numel, offset=tensor.offset,
            shape=tensor.shape, stride=tensor.stride, big_endian=byteorder == "big",
            read_storage=_zip_entry_reader(path, entry_name))
        _check_extent(path, name, layouts[name])
    return layouts


def _archive_prefix(path: str, entries: Mapping[str, zipfile.ZipInfo]) -> str:
    """The top folder of a torch.save archive (its name varies), with the trailing slash."""
    pickles = [name for name in entries if name.endswith("/data.pkl") and name.count("/") == 1]
    if len(pickles) != 1:
        raise CheckpointError(
            f"{path}: not a PyTorch checkpoint: expected one <archive>/data.pkl, found {len(pickles)}")
    return pickles[0][: -len("data.pkl")]


def _unpickle_state_dict(path: str, pickled: bytes) -> dict[str, _PendingTensor]:
    try:
        state_dict = _RestrictedUnpickler(io.BytesIO(pickled)).load()
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None
    except Exception as error:  # any failure of untrusted pickle data is a format error
        raise CheckpointError(f"{path}: malformed data.pkl: {type(error).__name__}: {error}") from None
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{path}: data.pkl holds a {type(state_dict).__name__}, not a state dict")
    for name, value in state_dict.items():
        if not isinstance(name, str) or not isinstance(value, _PendingTensor):
            raise CheckpointError(
                f"{path}: state dict entry {name!r} is a {type(value).__name__}, not a tensor")
    return state_dict


def _zip_entry_reader(path: str, entry_name: str) -> Callable[[], bytes]:
    def read() -> bytes:
        with zipfile.ZipFile(path) as archive:
            return archive.read(entry_name)

    return read


# --- .safetensors ------------------------------------------------------------------------


def _read_safetensors_layouts(path: str, file_size: int) -> dict[str, _TensorLayout]:
    with open(path, "rb") as file:
        (header_size,) = struct.unpack("<Q", file.read(8))
        if header_size > min(file_size - 8, _MAX_SAFETENSORS_HEADER_BYTES):
            raise CheckpointError(
                f"{path}: safetensors header of {header_size} bytes does not fit in the "
                f"{file_size}-byte file (truncated?)")
        header_bytes = file.read(header_size)
    try:
        header = json.loads(header_bytes, object_pairs_hook=_no_duplicate_keys)
    except (ValueError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: malformed safetensors header: {error}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: safetensors header is not a JSON object")

    data_start = 8 + header_size
    data_size = file_size - data_start
    layouts = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
            raise CheckpointError(f"{path}: tensor {name}: malformed header entry {entry!r}")
        dtype = _DTYPES.get(entry["dtype"])
        if dtype is None:
            raise CheckpointError(
                f"{path}: tensor {name}: unsupported dtype {entry['dtype']!r} "
                f"(supported: {', '.join(_DTYPES)})")
        shape = _int_tuple(entry["shape"], f"{path}: tensor {name}: shape")
        offsets = _int_tuple(entry["data_offsets"], f"{path}: tensor {name}: data_offsets")
        if len(offsets) != 2:
            raise CheckpointError(f"{path}: tensor {name}: data_offsets must be [begin, end]")
        begin, end = offsets
        numel = math.prod(shape)
        if end < begin or end - begin != numel * dtype.stored.itemsize:
            raise CheckpointError(
                f"{path}: tensor {name}: data_offsets {[begin, end]} do not hold "
                f"{numel} {dtype.name} elements")
        if end > data_size:
            raise CheckpointError(
                f"{path}: tensor {name}: data ends at byte {data_start + end}, past the end of "
                f"the {file_size}-byte file (truncated?)")
        layouts[name] = _TensorLayout(
            dtype=dtype, storage_numel=numel, offset=0, shape=shape,
            stride=_contiguous_stride(shape),
            read_storage=_file_range_reader(path, data_start + begin, end - begin))
    return layouts


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _contiguous_stride(shape: tuple[int, ...]) -> tuple[int, ...]:
    stride, step = [], 1
    for size in reversed(shape):
        stride.append(step)
        step *= size
    return tuple(reversed(stride))


def _file_range_reader(path: str, start: int, size: int) -> Callable[[], bytes]:
    def read() -> bytes:
        with open(path, "rb") as file:
            file.seek(start)
            data = file.read(size)
        if len(data) != size:
            raise CheckpointError(f"{path}: truncated: {len(data)} of {size} bytes at offset {start}")
        return data

    return read


# --- tensors from storages ---------------------------------------------------------------


def _check_extent(path: str, name: str, layout: _TensorLayout) -> None:
    """Refuse a layout that would reach past its storage, or repeat elements (a hostile size)."""
    numel = math.prod(layout.shape)
    if numel == 0:
        return
    if numel > layout.storage_numel:
        raise CheckpointError(
            f"{path}: tensor {name}: shape {layout.shape} has more elements than its "
            f"{layout.storage_numel}-element storage")
    last = layout.offset + sum((size - 1) * step for size, step in zip(layout.shape, layout.stride))
    if last >= layout.storage_numel:
        raise CheckpointError(
            f"{path}: tensor {name}: shape {layout.shape}, stride {layout.stride} and offset "
            f"{layout.offset} reach element {last} of a {layout.storage_numel}-element storage")


def _materialize(path: str, name: str, layout: _TensorLayout) -> np.ndarray:
    try:
        data = layout.read_storage()
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise CheckpointError(f"{path}: tensor {name}: cannot read data: {error}") from None
    stored = layout.dtype.stored.newbyteorder(">" if layout.big_endian else "<")
    elements = np.frombuffer(data, dtype=stored, count=layout.storage_numel)
    view = np.lib.stride_tricks.as_strided(
        elements[layout.offset:], shape=layout.shape,
        strides=tuple(step * stored.itemsize for step in layout.stride), writeable=False)
    if layout.dtype.name == "BF16":
        # bfloat16 is the upper half of a float32: widening is exact.
        return (np.array(view, dtype=np.uint32, order="C") << 16).view(np.float32)
    return np.array(view, dtype=stored.newbyteorder("="), order="C")
