"""Convert an RWKV-LM checkpoint to rwkv.cpp's `.bin` format, as rwkv.cpp's converter writes it.

Same header, tensor order, names, shapes, transforms and FP16/FP32 choices as
rwkv.cpp's `python/convert_pytorch_to_ggml.py`, done with numpy instead of torch.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import BinaryIO, TypedDict, TypeVar

import numpy as np

from .checkpoint import Checkpoint, load_checkpoint

__all__ = ["ConversionError", "ConversionSummary", "convert_checkpoint", "convert_tensors"]

_FILE_MAGIC = 0x67676D66  # 'ggmf'
_FILE_VERSION = 101
_TYPE_FP32, _TYPE_FP16 = 0, 1
_INT32_MAX = 2**31 - 1

_DATA_TYPES = {"fp16": _TYPE_FP16, "float16": _TYPE_FP16, "fp32": _TYPE_FP32, "float32": _TYPE_FP32}

# Keys rwkv.cpp keeps in FP32 even in an FP16 file (with every 1-D tensor).
_FP32_KEY_PARTS = (".time_", ".k_k", ".k_a", ".r_k", ".x_rwkvag", ".x_k", ".w0", ".a0", ".v0")
# RWKV-7 low-rank matrices, which rwkv.cpp stores transposed.
_V7_LOW_RANK_PARTS = (".w1", ".w2", ".a1", ".a2", ".v1", ".v2", ".g1", ".g2")
# RWKV-7's six token-shift mixes, merged into one (6, 1, n_embd) tensor in this order.
_V7_MIX_ORDER = ("r", "w", "k", "v", "a", "g")
_V7_MIX_KEY = re.compile(r"blocks\.(\d+)\.att\.x_(\w+)")

T = TypeVar("T")


class ConversionError(ValueError):
    """The checkpoint is not a convertible RWKV model, or the output cannot be written."""


class ConversionSummary(TypedDict):
    """What `convert_checkpoint` wrote."""

    arch_version: str  # "4", "5.1", "5.2", "6" or "7", named as rwkv.cpp names them
    n_vocab: int
    n_embed: int
    n_layer: int
    data_type: str  # "FP16" or "FP32"
    n_bytes: int


def convert_checkpoint(src_path: str | os.PathLike, dest_path: str | os.PathLike,
                       data_type: str = "FP16", *, progress: bool = True) -> ConversionSummary:
    """Convert a `.pth` or `.safetensors` RWKV checkpoint (v4 to v7) to an rwkv.cpp `.bin` file.

    `data_type` is "FP16" or "FP32" ("float16", "float32" and any case work too). FP16
    stores matrices as float16 and keeps vectors and per-channel parameters float32,
    exactly as rwkv.cpp does. The output appears at `dest_path` only when complete.
    Raises `CheckpointError` for an unreadable source and `ConversionError` for
    unsupported content or an unwritable destination.

    Example::

        summary = convert_checkpoint("RWKV-x070-World-0.1B.pth", "rwkv7-0.1B.bin", "FP16")
        print(summary["arch_version"], summary["n_layer"], summary["n_bytes"])
    """
    return convert_tensors(load_checkpoint(src_path), dest_path, data_type, progress=progress)


def convert_tensors(checkpoint: Checkpoint, dest_path: str | os.PathLike, data_type: str = "FP16",
                    *, progress: bool = True) -> ConversionSummary:
    """`convert_checkpoint` for tensors already at hand: any read-only mapping of name to
    array in RWKV-LM's key order that also has `.path` (for messages) and `.shape(name)`,
    as `load_checkpoint` returns (e.g. `rwkv_cpp.random_model.RandomCheckpoint`)."""
    file_type = _parse_data_type(data_type)
    n_vocab, n_embed, n_layer = _model_size(checkpoint)
    arch = _detect_arch(checkpoint)
    n_head = _v6_head_count(checkpoint) if arch == "6" else 0
    plan = _output_plan(list(checkpoint), arch)

    with _atomic_output(os.fspath(dest_path)) as out:
        out.write(struct.pack("<6i", _FILE_MAGIC, _FILE_VERSION, n_vocab, n_embed, n_layer, file_type))
        for name, sources in _with_progress(plan, progress):
            tensor = _transform(name, _load_float32(checkpoint, sources), arch, n_head)
            if file_type == _TYPE_FP16 and _is_stored_as_fp16(name, tensor):
                tensor = _to_float16(tensor)
            _write_tensor(out, name, tensor)
        n_bytes = out.tell()

    return ConversionSummary(
        arch_version=arch, n_vocab=n_vocab, n_embed=n_embed, n_layer=n_layer,
        data_type="FP16" if file_type == _TYPE_FP16 else "FP32", n_bytes=n_bytes)


def _parse_data_type(data_type: str) -> int:
    file_type = _DATA_TYPES.get(str(data_type).lower())
    if file_type is None:
        raise ConversionError(f"unsupported data type {data_type!r}: expected FP16 or FP32")
    return file_type


def _model_size(checkpoint: Checkpoint) -> tuple[int, int, int]:
    """n_vocab and n_embed from emb.weight; n_layer counts blocks.{i}.ln1.weight from 0."""
    if "emb.weight" not in checkpoint:
        raise ConversionError(f"{checkpoint.path}: no emb.weight: not an RWKV-LM checkpoint")
    emb_shape = checkpoint.shape("emb.weight")
    if len(emb_shape) != 2:
        raise ConversionError(f"{checkpoint.path}: emb.weight has shape {emb_shape}, expected 2-D")
    n_layer = 0
    while f"blocks.{n_layer}.ln1.weight" in checkpoint:
        n_layer += 1
    if n_layer == 0:
        raise ConversionError(f"{checkpoint.path}: no blocks.0.ln1.weight: the model has no layers")
    return emb_shape[0], emb_shape[1], n_layer


def _detect_arch(checkpoint: Checkpoint) -> str:
    """The RWKV version, told apart by the keys rwkv.cpp looks for (newest first)."""
    if "blocks.0.att.k_k" in checkpoint:
        return "7"
    if "blocks.0.att.time_maa_x" in checkpoint:
        return "6"
    if "blocks.0.att.gate.weight" in checkpoint:
        return "5.2"
    if "blocks.0.att.ln_x.weight" in checkpoint:
        return "5.1"
    return "4"


def _v6_head_count(checkpoint: Checkpoint) -> int:
    if "blocks.0.att.time_faaaa" not in checkpoint:
        raise ConversionError(f"{checkpoint.path}: RWKV-6 checkpoint without blocks.0.att.time_faaaa")
    return checkpoint.shape("blocks.0.att.time_faaaa")[0]


def _output_plan(names: Sequence[str], arch: str) -> list[tuple[str, tuple[str, ...]]]:
    """(output name, source names) in output order.

    Every tensor maps to itself, except RWKV-7's att.x_r ... att.x_g of a layer, which
    become one `blocks.{i}.att.x_rwkvag` where the first of them stood. They are stacked
    in r, w, k, v, a, g order (RWKV-LM's own order, as rwkv.cpp's loader expects) whatever
    order the file lists them in: safetensors files list keys sorted.
    """
    plan: list[tuple[str, tuple[str, ...]]] = []
    mixes: dict[str, dict[str, str]] = {}
    for name in names:
        if arch != "7" or "att.x_" not in name:
            plan.append((name, (name,)))
            continue
        match = _V7_MIX_KEY.fullmatch(name)
        if match is None or match[2] not in _V7_MIX_ORDER:
            raise ConversionError(f"unexpected RWKV-7 token-shift tensor {name}")
        merged = f"blocks.{match[1]}.att.x_rwkvag"
        if merged not in mixes:
            mixes[merged] = {}
            plan.append((merged, ()))
        mixes[merged][match[2]] = name
    for merged, by_letter in mixes.items():
        missing = [f"x_{letter}" for letter in _V7_MIX_ORDER if letter not in by_letter]
        if missing:
            raise ConversionError(f"{merged}: RWKV-7 layer lacks att.{', att.'.join(missing)}")
    return [(name, sources or tuple(mixes[name][letter] for letter in _V7_MIX_ORDER))
            for name, sources in plan]


def _load_float32(checkpoint: Checkpoint, sources: tuple[str, ...]) -> np.ndarray:
    """The source tensor as float32 (torch's `.float()`), or the sources stacked on dim 0."""
    arrays = [checkpoint[source].astype(np.float32, copy=False) for source in sources]
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=0)


def _transform(name: str, tensor: np.ndarray, arch: str, n_head: int) -> np.ndarray:
    """Reshape, transpose and precompute a float32 tensor the way rwkv.cpp's loader expects."""
    try:
        if ".time_" in name:
            tensor = tensor.squeeze()
        if arch == "7":
            if any(part in name for part in _V7_LOW_RANK_PARTS):
                tensor = tensor.swapaxes(0, 1)
        elif arch == "6":
            if ".time_faaaa" in name:
                tensor = tensor[..., np.newaxis]
            if ".time_maa_w1" in name or ".time_decay_w" in name:
                tensor = tensor.swapaxes(0, 1)
            if ".time_maa_w2" in name:
                tensor = tensor.swapaxes(1, 2)
            if ".time_decay" in name and "_w" not in name:
                tensor = tensor.reshape(n_head, -1, 1)
        elif arch in ("5.1", "5.2"):
            if ".time_decay" in name:
                decay = _exp_float32(-_exp_float32(tensor))
                tensor = decay[..., np.newaxis] if arch == "5.2" else decay.reshape(-1, 1, 1)
            if ".time_first" in name:
                tensor = _exp_float32(tensor).reshape(-1, 1, 1)
            if ".time_faaaa" in name:
                tensor = tensor[..., np.newaxis]
        elif ".time_decay" in name:
            tensor = -_exp_float32(tensor)
    except ValueError as error:  # numpy's complaint about a shape that does not fit
        raise ConversionError(f"tensor {name} of shape {tensor.shape}: {error}") from None
    return tensor


def _torch_exp():
    """torch.exp when torch is installed (it is never required), else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch.exp


def _exp_float32(values: np.ndarray) -> np.ndarray:
    """float32 exp as rwkv.cpp's converter computes it, so the output is byte-identical.

    rwkv.cpp runs torch.exp on float32 tensors. In torch's x86 wheels (built with MKL)
    that is MKL VML's vsExp in HA mode, which is not correctly rounded and whose
    algorithm is not public; torch builds without MKL use yet other code. So when torch
    is installed we call it. Without torch we round exp from float64 once: measured on
    1,000,000 float32 inputs uniform in [-8, 3] against torch 2.13.0 (MKL 2024.2),
    10,048 values (1 %) differ by 1 ulp, and for exp(-exp(x)) 14,988 by up to 32 ulp
    (2e-6 relative: torch's 1-ulp error in the inner exp, amplified); numpy's own float32
    exp would differ in 393,757. Only v4 and v5 decays (time_decay, time_first) use exp.
    """
    torch_exp = _torch_exp()
    if torch_exp is not None:
        import torch

        return torch_exp(torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))).numpy()
    with np.errstate(over="ignore", under="ignore"):
        return np.exp(values.astype(np.float64)).astype(np.float32)


def _is_stored_as_fp16(name: str, tensor: np.ndarray) -> bool:
    return tensor.ndim > 1 and not any(part in name for part in _FP32_KEY_PARTS)


def _to_float16(tensor: np.ndarray) -> np.ndarray:
    """Round to nearest even, overflowing to inf, as torch's `.half()` does."""
    with np.errstate(over="ignore"):
        return tensor.astype(np.float16)


def _write_tensor(out: BinaryIO, name: str, tensor: np.ndarray) -> None:
    """n_dims, key length, type; the shape innermost first (ggml order); the key; the data."""
    key = name.encode("utf-8")
    if any(size > _INT32_MAX for size in tensor.shape) or len(key) > _INT32_MAX:
        raise ConversionError(f"tensor {name} of shape {tensor.shape} is too large for the format")
    file_type = _TYPE_FP16 if tensor.dtype == np.float16 else _TYPE_FP32
    out.write(struct.pack("<3i", tensor.ndim, len(key), file_type))
    out.write(struct.pack(f"<{tensor.ndim}i", *reversed(tensor.shape)))
    out.write(key)
    little_endian = "<f2" if file_type == _TYPE_FP16 else "<f4"
    out.write(np.ascontiguousarray(tensor, dtype=little_endian).reshape(-1).data)


def _with_progress(items: list[T], enabled: bool) -> Iterable[T]:
    """The items, under a tqdm progress bar when asked for and tqdm is installed."""
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc="Converting", unit="tensor")


@contextlib.contextmanager
def _atomic_output(dest_path: str) -> Iterator[BinaryIO]:
    """A file that replaces `dest_path` when the block completes and vanishes if it fails."""
    target = os.path.realpath(dest_path)  # write through a symlink, as open() would
    if os.path.isdir(target):
        raise ConversionError(f"output path is a directory: {dest_path}")
    if os.path.exists(target) and not os.path.isfile(target):
        raise ConversionError(f"output path exists and is not a regular file: {dest_path}")
    try:
        fd, temp_path = _create_temp_file(target)
    except OSError as error:
        raise ConversionError(
            f"cannot create the output file next to {dest_path}: {error.strerror or error}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_path, target)
    except OSError as error:
        _remove_quietly(temp_path)
        raise ConversionError(f"cannot write {dest_path}: {error.strerror or error}") from None
    except BaseException:
        _remove_quietly(temp_path)
        raise


def _create_temp_file(target: str) -> tuple[int, str]:
    """A new file `<target>.tmp-<random>`, created with the usual umask-governed mode."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temp_path = f"{target}.tmp-{secrets.token_hex(4)}"
        try:
            return os.open(temp_path, flags, 0o666), temp_path
        except FileExistsError:
            continue


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)
