"""rwkv.cpp's ``RWKVModel`` (``python/rwkv_cpp/rwkv_cpp_model.py``), so scripts written
for rwkv.cpp run unchanged. Only adapts :class:`rwkv_cpp.Model`: torch tensors become
zero-copy numpy views, errors become ValueError as in rwkv.cpp.

torch is optional and imported only when a call needs it (a tensor argument, or
``use_numpy=False`` with no array given).
"""

from __future__ import annotations

import multiprocessing
from typing import Any, List, Optional, Tuple

from .model import Model
from .rwkv_cpp_shared_library import RWKVSharedLibrary, as_value_error, load_rwkv_shared_library

__all__ = ["RWKVModel"]

# A numpy.ndarray or a torch.Tensor.
NumpyArrayOrPyTorchTensor = Any


class RWKVModel:
    """An RWKV model, with rwkv.cpp's Python interface.

    Example (rwkv.cpp style)::

        library = load_rwkv_shared_library()
        model = RWKVModel(library, "model.bin")
        logits, state = model.eval(34, None, use_numpy=True)
        logits, state = model.eval(105, state, state, logits)   # in place
        model.free()
    """

    def __init__(
        self,
        shared_library: Optional[RWKVSharedLibrary],
        model_path: str,
        thread_count: int = max(1, multiprocessing.cpu_count() // 2),
        gpu_layer_count: int = 0,
        **kwargs: Any,
    ) -> None:
        if "gpu_layers_count" in kwargs:  # rwkv.cpp's older spelling
            gpu_layer_count = kwargs["gpu_layers_count"]
        if shared_library is None:
            shared_library = load_rwkv_shared_library()
        self._library = shared_library
        self._valid = False
        with as_value_error():
            self._model = Model._from_library(shared_library._native, model_path, thread_count, gpu_layer_count)
        self._valid = True

    @property
    def arch_version_major(self) -> int:
        return int(self._model.arch_version.partition(".")[0])

    @property
    def arch_version_minor(self) -> int:
        return int(self._model.arch_version.partition(".")[2] or 0)

    @property
    def n_vocab(self) -> int:
        return self._model.n_vocab

    @property
    def n_embed(self) -> int:
        return self._model.n_embed

    @property
    def n_layer(self) -> int:
        return self._model.n_layer

    def eval(
        self,
        token: int,
        state_in: Optional[NumpyArrayOrPyTorchTensor],
        state_out: Optional[NumpyArrayOrPyTorchTensor] = None,
        logits_out: Optional[NumpyArrayOrPyTorchTensor] = None,
        use_numpy: bool = False,
    ) -> Tuple[NumpyArrayOrPyTorchTensor, NumpyArrayOrPyTorchTensor]:
        """Feeds one token; returns (logits, state). Tensors given decide the returned
        type; with none, ``use_numpy`` does (default torch, as in rwkv.cpp)."""
        return self._call(self._model.eval, token, state_in, state_out, logits_out, use_numpy)

    def eval_sequence(
        self,
        tokens: List[int],
        state_in: Optional[NumpyArrayOrPyTorchTensor],
        state_out: Optional[NumpyArrayOrPyTorchTensor] = None,
        logits_out: Optional[NumpyArrayOrPyTorchTensor] = None,
        use_numpy: bool = False,
    ) -> Tuple[NumpyArrayOrPyTorchTensor, NumpyArrayOrPyTorchTensor]:
        """Feeds many tokens; returns the logits after the last one and the state."""
        return self._call(self._model.eval_sequence, tokens, state_in, state_out, logits_out, use_numpy)

    def eval_sequence_in_chunks(
        self,
        tokens: List[int],
        state_in: Optional[NumpyArrayOrPyTorchTensor],
        state_out: Optional[NumpyArrayOrPyTorchTensor] = None,
        logits_out: Optional[NumpyArrayOrPyTorchTensor] = None,
        chunk_size: int = 16,
        use_numpy: bool = False,
    ) -> Tuple[NumpyArrayOrPyTorchTensor, NumpyArrayOrPyTorchTensor]:
        """:meth:`eval_sequence` in pieces of at most ``chunk_size`` tokens."""
        return self._call(self._model.eval_sequence, tokens, state_in, state_out, logits_out, use_numpy,
                          chunk_size=chunk_size)

    def free(self) -> None:
        """Frees the model; it must not be used afterwards."""
        if not self._valid:
            raise ValueError("Already freed")
        self._valid = False
        self._model.close()

    def __del__(self) -> None:
        if getattr(self, "_valid", False):
            self.free()

    def _call(self, method, tokens, state_in, state_out, logits_out, use_numpy: bool, **options):
        if not self._valid:
            raise ValueError("Model was freed")
        torch = _torch_if_used((state_in, state_out, logits_out), use_numpy)
        if torch is not None:
            if state_out is None:
                state_out = torch.empty(self._model.state_len, dtype=torch.float32)
            if logits_out is None:
                logits_out = torch.empty(self._model.logits_len, dtype=torch.float32)
        with as_value_error():
            logits, state = method(
                tokens,
                _as_numpy(state_in, "state_in"),
                out_state=_as_numpy(state_out, "state_out"),
                out_logits=_as_numpy(logits_out, "logits_out"),
                **options,
            )
        return (logits if logits_out is None else logits_out, state if state_out is None else state_out)


def _is_torch_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch")


def _torch_if_used(arrays, use_numpy: bool):
    """The torch module when outputs should be tensors (rwkv.cpp's rule: the first array
    given decides; with none, ``use_numpy``), else None."""
    for array in arrays:
        if array is not None:
            return _import_torch() if _is_torch_tensor(array) else None
    return None if use_numpy else _import_torch()


def _import_torch():
    try:
        import torch
    except ImportError:
        raise ImportError(
            "PyTorch is not installed: pass use_numpy=True to get numpy arrays, or install torch"
        ) from None
    return torch


def _as_numpy(array, name: str):
    """A torch CPU tensor as a numpy view of the same memory; anything else unchanged."""
    if array is None or not _is_torch_tensor(array):
        return array
    if array.device.type != "cpu":
        raise ValueError(f"{name} is not on CPU")
    return array.detach().numpy()
