"""rwkv.cpp's Python names (``python/rwkv_cpp/rwkv_cpp_shared_library.py``), so scripts
written for rwkv.cpp run unchanged. Only adapts: the work is done by _native and model.

Differences from rwkv.cpp: failures raise ValueError carrying the library's message
(rwkv.cpp said "check stderr"); the library never prints.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator, List, Optional, Tuple

from . import _native
from ._native import ffi
from .errors import RwkvError
from .model import _token_arg, _token_array

__all__ = ["QUANTIZED_FORMAT_NAMES", "RWKVContext", "RWKVSharedLibrary", "load_rwkv_shared_library"]

QUANTIZED_FORMAT_NAMES: Tuple[str, ...] = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0")


@contextlib.contextmanager
def as_value_error() -> Iterator[None]:
    """rwkv.cpp's Python code raises ValueError for every failure; so do these modules,
    chaining the rwkv_cpp exception (and its message and code)."""
    try:
        yield
    except ValueError:
        raise
    except (RwkvError, TypeError) as e:
        raise ValueError(str(e)) from e


class RWKVContext:
    """A context pointer as rwkv.cpp's binding holds it (``.ptr``)."""

    def __init__(self, ptr) -> None:
        self.ptr = ptr


def _float_address(address: Optional[int]):
    return ffi.NULL if not address else ffi.cast("float *", address)


class RWKVSharedLibrary:
    """The shared library, with one method per C function (rwkv.cpp's names and arguments).

    ``shared_library_path`` None finds the library as :class:`rwkv_cpp.Model` does.
    """

    def __init__(self, shared_library_path: Optional[str] = None) -> None:
        with as_value_error():
            self._native = _native.load(shared_library_path)
        self.library = self._native.lib
        self.nullptr = ffi.NULL

    def _check(self, ok: bool, ctx, what: str) -> None:
        if not ok:
            with as_value_error():
                _native.raise_last_error(self.library, ctx, what)

    def rwkv_init_from_file(self, model_file_path: str, thread_count: int, gpu_layer_count: int = 0) -> RWKVContext:
        _native.silence(self.library)
        ptr = self.library.rwkv_init_from_file(os.fsencode(model_file_path), thread_count, gpu_layer_count)
        self._check(ptr != ffi.NULL, ffi.NULL, "rwkv_init_from_file")
        _native.silence(self.library, ptr)
        return RWKVContext(ptr)

    def rwkv_clone_context(self, ctx: RWKVContext, thread_count: int) -> RWKVContext:
        ptr = self.library.rwkv_clone_context(ctx.ptr, thread_count)
        self._check(ptr != ffi.NULL, ctx.ptr, "rwkv_clone_context")
        _native.silence(self.library, ptr)
        return RWKVContext(ptr)

    def rwkv_gpu_offload_layers(self, ctx: RWKVContext, layer_count: int) -> bool:
        """Returns True if at least one layer is on the GPU (rwkv.cpp's meaning)."""
        if not layer_count >= 0:
            raise ValueError("Layer count must be >= 0")
        self._check(self.library.rwkv_gpu_offload_layers(ctx.ptr, layer_count), ctx.ptr, "rwkv_gpu_offload_layers")
        return self.library.rwkv_get_gpu_layer_count(ctx.ptr) > 0

    def rwkv_eval(self, ctx: RWKVContext, token: int, state_in_address: Optional[int],
                  state_out_address: int, logits_out_address: int) -> None:
        with as_value_error():
            token = _token_arg(token, self.rwkv_get_n_vocab(ctx))
        ok = self.library.rwkv_eval(ctx.ptr, token, _float_address(state_in_address),
                                    _float_address(state_out_address), _float_address(logits_out_address))
        self._check(ok, ctx.ptr, "rwkv_eval")

    def rwkv_eval_sequence(self, ctx: RWKVContext, tokens: List[int], state_in_address: Optional[int],
                           state_out_address: int, logits_out_address: int) -> None:
        with as_value_error():
            array = _token_array(tokens, self.rwkv_get_n_vocab(ctx))
        ok = self.library.rwkv_eval_sequence(ctx.ptr, ffi.from_buffer("uint32_t[]", array), len(array),
                                             _float_address(state_in_address), _float_address(state_out_address),
                                             _float_address(logits_out_address))
        self._check(ok, ctx.ptr, "rwkv_eval_sequence")

    def rwkv_eval_sequence_in_chunks(self, ctx: RWKVContext, tokens: List[int], chunk_size: int,
                                     state_in_address: Optional[int], state_out_address: int,
                                     logits_out_address: int) -> None:
        with as_value_error():
            array = _token_array(tokens, self.rwkv_get_n_vocab(ctx))
        ok = self.library.rwkv_eval_sequence_in_chunks(ctx.ptr, ffi.from_buffer("uint32_t[]", array), len(array),
                                                       chunk_size, _float_address(state_in_address),
                                                       _float_address(state_out_address),
                                                       _float_address(logits_out_address))
        self._check(ok, ctx.ptr, "rwkv_eval_sequence_in_chunks")

    def rwkv_get_arch_version_major(self, ctx: RWKVContext) -> int:
        return self.library.rwkv_get_arch_version_major(ctx.ptr)

    def rwkv_get_arch_version_minor(self, ctx: RWKVContext) -> int:
        return self.library.rwkv_get_arch_version_minor(ctx.ptr)

    def rwkv_get_n_vocab(self, ctx: RWKVContext) -> int:
        return self.library.rwkv_get_n_vocab(ctx.ptr)

    def rwkv_get_n_embed(self, ctx: RWKVContext) -> int:
        return self.library.rwkv_get_n_embed(ctx.ptr)

    def rwkv_get_n_layer(self, ctx: RWKVContext) -> int:
        return self.library.rwkv_get_n_layer(ctx.ptr)

    def rwkv_get_state_len(self, ctx: RWKVContext) -> int:
        return self.library.rwkv_get_state_len(ctx.ptr)

    def rwkv_get_logits_len(self, ctx: RWKVContext) -> int:
        return self.library.rwkv_get_logits_len(ctx.ptr)

    def rwkv_get_state_buffer_element_count(self, ctx: RWKVContext) -> int:
        return self.library.rwkv_get_state_buffer_element_count(ctx.ptr)

    def rwkv_get_logits_buffer_element_count(self, ctx: RWKVContext) -> int:
        return self.library.rwkv_get_logits_buffer_element_count(ctx.ptr)

    def rwkv_init_state(self, ctx: RWKVContext, state_address: int) -> None:
        self.library.rwkv_init_state(ctx.ptr, _float_address(state_address))

    def rwkv_free(self, ctx: RWKVContext) -> None:
        self.library.rwkv_free(ctx.ptr)
        ctx.ptr = ffi.NULL

    def rwkv_quantize_model_file(self, model_file_path_in: str, model_file_path_out: str, format_name: str) -> None:
        if format_name not in QUANTIZED_FORMAT_NAMES:
            raise ValueError(f"Unknown format name {format_name}, use one of {QUANTIZED_FORMAT_NAMES}")
        _native.silence(self.library)
        ok = self.library.rwkv_quantize_model_file(os.fsencode(model_file_path_in), os.fsencode(model_file_path_out),
                                                   format_name.encode("utf-8"))
        self._check(ok, ffi.NULL, "rwkv_quantize_model_file")

    def rwkv_get_system_info_string(self) -> str:
        return ffi.string(self.library.rwkv_get_system_info_string()).decode("utf-8", "replace")


def load_rwkv_shared_library() -> RWKVSharedLibrary:
    """Finds the library (RWKV_CPP_LIBRARY, the installed package, a source build) and loads it."""
    return RWKVSharedLibrary()
