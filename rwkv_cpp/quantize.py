"""Quantize an rwkv.cpp model file (FP32/FP16) to Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0.

The work is done by the shared library (`rwkv_quantize_model_file_ex`); this module
passes the options, drives a progress bar and turns errors into exceptions. The output
is byte-identical to rwkv.cpp's quantizer for the same input and format.
"""

from __future__ import annotations

import os
from typing import Optional, TypedDict, Union

from . import _native
from ._native import ffi
from .errors import InvalidArgumentError

__all__ = ["FORMATS", "QuantizationSummary", "quantize_model_file", "describe_summary"]

# The names the library accepts, exactly as rwkv.cpp spells them (upper case only).
FORMATS = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0")

PathLike = Union[str, "os.PathLike[str]"]


class QuantizationSummary(TypedDict):
    """What `quantize_model_file` wrote."""

    format: str  # the type of the 2-D matrices, e.g. "Q5_1"
    head_format: Optional[str]  # the type of head.weight, or None when it kept its type
    n_bytes_in: int
    n_bytes_out: int


def quantize_model_file(src: PathLike, dest: PathLike, format_name: str, *,
                        head_format: Optional[str] = None, progress: bool = True) -> QuantizationSummary:
    """Quantize the FP32/FP16 model file `src` to `format_name` and write it to `dest`.

    As rwkv.cpp does, every 2-D matrix except `emb.weight` and `head.weight` is quantized
    and everything else is copied; `head_format` (e.g. "Q8_0") quantizes `head.weight`
    too, which makes the file smaller at some cost in accuracy. `dest` appears only when
    complete (it is written to a temporary file and renamed). `progress` shows a tqdm
    bar when tqdm is installed.

    Raises InvalidArgumentError for an unknown format name, ModelFileError when a file
    cannot be opened or written, ModelFormatError when `src` is not an FP32/FP16 model.

    Example::

        summary = quantize_model_file("rwkv7-0.1B-FP16.bin", "rwkv7-0.1B-Q5_1.bin", "Q5_1")
        print(summary["n_bytes_in"], "->", summary["n_bytes_out"])
    """
    src_bytes = _path_arg(src, "src")
    dest_bytes = _path_arg(dest, "dest")
    format_bytes = _name_arg(format_name, "format_name")
    head_bytes = None if head_format is None else _name_arg(head_format, "head_format")

    lib = _native.load().lib
    _native.silence(lib)
    params = ffi.new("struct rwkv_quantize_params *", lib.rwkv_quantize_default_params())
    # The char buffers and the callback must stay alive until the call returns.
    format_buffer = ffi.new("char[]", format_bytes)
    params.format_name = format_buffer
    head_buffer = ffi.NULL if head_bytes is None else ffi.new("char[]", head_bytes)
    params.head_format_name = head_buffer
    bar = _ProgressBar() if progress else None
    callback = ffi.NULL if bar is None else ffi.callback(
        "void(void *, size_t, size_t)", bar.update, onerror=bar.on_error)
    params.progress = callback
    try:
        ok = lib.rwkv_quantize_model_file_ex(src_bytes, dest_bytes, params)
    finally:
        if bar is not None:
            bar.close()
    if not ok:
        _native.raise_last_error(lib, ffi.NULL, "rwkv_quantize_model_file_ex")
    if bar is not None and bar.interrupt is not None:
        raise bar.interrupt  # Ctrl-C while the library worked: it finished the file first
    return QuantizationSummary(format=format_name, head_format=head_format,
                               n_bytes_in=os.path.getsize(src_bytes), n_bytes_out=os.path.getsize(dest_bytes))


def describe_summary(dest: PathLike, summary: QuantizationSummary) -> str:
    """One line for people: what was written and the sizes before and after."""
    n_in, n_out = summary["n_bytes_in"], summary["n_bytes_out"]
    head = f" (head {summary['head_format']})" if summary["head_format"] else ""
    return (f"wrote {os.fspath(dest)}: {summary['format']}{head}, {_mib(n_in)} -> {_mib(n_out)} "
            f"({n_out / max(n_in, 1):.1%} of the input)")


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.2f} MiB"


def _path_arg(path: PathLike, name: str) -> bytes:
    encoded = os.fsencode(os.fspath(path))
    if b"\0" in encoded:  # C would silently use the part before it
        raise InvalidArgumentError(f"{name} contains a NUL character: {os.fspath(path)!r}")
    return encoded


def _name_arg(value: str, name: str) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str such as 'Q5_1', got {type(value).__name__}")
    if "\0" in value:
        raise InvalidArgumentError(f"{name} contains a NUL character: {value!r}")
    return value.encode("utf-8")


class _ProgressBar:
    """A tqdm bar over the tensors, made on the library's first progress call (when the
    total is known); nothing when tqdm is not installed."""

    def __init__(self) -> None:
        self._bar = None
        self._tqdm_missing = False
        self.interrupt: Optional[BaseException] = None

    def update(self, user_data, n_done: int, n_total: int) -> None:
        if self._bar is None and not self._tqdm_missing:
            try:
                from tqdm import tqdm
            except ImportError:
                self._tqdm_missing = True
                return
            self._bar = tqdm(total=n_total, desc="Quantizing", unit="tensor")
        if self._bar is not None:
            self._bar.update(n_done - self._bar.n)

    def on_error(self, exc_type, exc_value, traceback) -> None:
        # An exception cannot cross the C call; keep Ctrl-C for after it, drop the bar
        # on any other (a broken terminal must not fail the quantization).
        if isinstance(exc_value, KeyboardInterrupt):
            self.interrupt = exc_value
        self.close()
        self._tqdm_missing = True

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
