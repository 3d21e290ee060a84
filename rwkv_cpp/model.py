"""Model: a loaded RWKV model evaluated through the shared library, with numpy arrays."""

from __future__ import annotations

import operator
import os
import threading
import warnings
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import _native
from ._native import ffi
from .errors import InvalidArgumentError, InvalidTokenError, RwkvError, StateSizeError

__all__ = ["Model", "system_info", "library_path"]

FloatArray = npt.NDArray[np.float32]
PathLike = Union[str, "os.PathLike[str]"]
Tokens = Union[Sequence[int], npt.NDArray[np.integer]]

_FLOAT_BYTES = 4


class Model:
    """An RWKV model file (rwkv.cpp's ``.bin`` format) loaded for inference.

    The state is a flat float32 array of ``state_len`` elements in rwkv.cpp's layout;
    ``None`` means the fresh state. Outputs are new arrays unless ``out_logits`` /
    ``out_state`` are given, in which case those are filled and returned (no
    allocation). One evaluation runs at a time per Model; :meth:`clone` gives another
    Model sharing the weights for use in another thread (the GIL is released while the
    library computes).

    Example::

        with rwkv_cpp.Model("tiny-rwkv-5v2-730K-FP32.bin") as model:
            logits, state = model.eval_sequence([34, 105, 110])
            logits, state = model.eval(int(logits.argmax()), state, out_state=state)
    """

    def __init__(
        self,
        path: PathLike,
        *,
        thread_count: Optional[int] = None,
        gpu_layer_count: int = 0,
    ) -> None:
        """Loads ``path``. ``thread_count`` None lets the library pick; ``gpu_layer_count``
        layers go to the GPU (a warning says so when the library has no GPU support).

        Raises ModelFileError (missing or unreadable file), ModelFormatError (not a
        valid model file), LibraryNotFoundError / LibraryVersionError.
        """
        self._ctx = None
        self._load(_native.load(), path, thread_count, gpu_layer_count)

    @classmethod
    def _from_library(
        cls, library: _native.Library, path: PathLike, thread_count: Optional[int], gpu_layer_count: int
    ) -> "Model":
        """A Model opened through a given shared library (rwkv.cpp-style explicit path)."""
        model = cls.__new__(cls)
        model._ctx = None
        model._load(library, path, thread_count, gpu_layer_count)
        return model

    def _load(self, library: _native.Library, path: PathLike, thread_count: Optional[int], gpu_layer_count: int) -> None:
        path = os.fspath(path)
        n_threads = _thread_count_arg(thread_count)
        n_gpu_layers = _count_arg(gpu_layer_count, "gpu_layer_count", minimum=0)
        lib = library.lib
        _native.silence(lib)
        ctx = lib.rwkv_init_from_file(os.fsencode(path), n_threads, n_gpu_layers)
        if ctx == ffi.NULL:
            _native.raise_last_error(lib, ffi.NULL, "rwkv_init_from_file")
        self._adopt(library, ctx, path)
        if n_gpu_layers > 0 and self.gpu_layer_count == 0:
            note = ffi.string(lib.rwkv_get_last_error_message(ctx)).decode("utf-8", "replace")
            warnings.warn(note or "no layers were offloaded to the GPU", RuntimeWarning, stacklevel=3)

    def _adopt(self, library: _native.Library, ctx, path: str) -> None:
        lib = library.lib
        _native.silence(lib, ctx)
        self._library = library
        self._lib = lib
        self._ctx = ffi.gc(ctx, lib.rwkv_free)
        self._lock = threading.Lock()
        self._path = path
        self._n_vocab = int(lib.rwkv_get_n_vocab(ctx))
        self._n_embed = int(lib.rwkv_get_n_embed(ctx))
        self._n_layer = int(lib.rwkv_get_n_layer(ctx))
        self._state_len = int(lib.rwkv_get_state_len(ctx))
        self._logits_len = int(lib.rwkv_get_logits_len(ctx))
        major = int(lib.rwkv_get_arch_version_major(ctx))
        minor = int(lib.rwkv_get_arch_version_minor(ctx))
        self._arch_version = f"{major}.{minor}" if minor else str(major)

    # ---- lifetime ----

    def close(self) -> None:
        """Frees the context (the weights go with the last Model sharing them). Idempotent."""
        ctx = self._ctx
        if ctx is None:
            return
        with self._lock:
            ctx, self._ctx = self._ctx, None
        if ctx is not None:
            ffi.release(ctx)

    @property
    def closed(self) -> bool:
        return self._ctx is None

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _live_ctx(self):
        ctx = self._ctx
        if ctx is None:
            raise RwkvError(f"model {self._path!r} is closed")
        return ctx

    def clone(self, thread_count: Optional[int] = None) -> "Model":
        """A new Model sharing this one's weights (never copied), with its own scratch
        memory: use one per thread. ``thread_count`` None lets the library pick."""
        n_threads = _thread_count_arg(thread_count)
        with self._lock:
            ctx = self._live_ctx()
            new_ctx = self._lib.rwkv_clone_context(ctx, n_threads)
            if new_ctx == ffi.NULL:
                _native.raise_last_error(self._lib, ctx, "rwkv_clone_context")
        clone = type(self).__new__(type(self))
        clone._adopt(self._library, new_ctx, self._path)
        return clone

    # ---- properties ----

    @property
    def path(self) -> str:
        return self._path

    @property
    def n_vocab(self) -> int:
        return self._n_vocab

    @property
    def n_embed(self) -> int:
        return self._n_embed

    @property
    def n_layer(self) -> int:
        return self._n_layer

    @property
    def state_len(self) -> int:
        """Number of float32 elements in a state."""
        return self._state_len

    @property
    def logits_len(self) -> int:
        """Number of float32 elements in the logits."""
        return self._logits_len

    @property
    def arch_version(self) -> str:
        """RWKV architecture of the file: "4", "5", "5.1", "5.2", "6" or "7"."""
        return self._arch_version

    @property
    def gpu_layer_count(self) -> int:
        """Layers actually on the GPU (0 on a CPU-only build)."""
        with self._lock:
            return int(self._lib.rwkv_get_gpu_layer_count(self._live_ctx()))

    def __repr__(self) -> str:
        closed = " closed" if self._ctx is None else ""
        return (
            f"<rwkv_cpp.Model {self._path!r} RWKV v{self._arch_version} n_layer={self._n_layer} "
            f"n_embed={self._n_embed} n_vocab={self._n_vocab}{closed}>"
        )

    # ---- text ----

    @property
    def tokenizer(self):
        """The tokenizer picked from the vocabulary size (World for 65536, GPT-NeoX 20B for
        50277, bytes for 256); assign another one to override."""
        if getattr(self, "_tokenizer", None) is None:
            from .tokenizers import tokenizer_for_vocab_size

            self._tokenizer = tokenizer_for_vocab_size(self._n_vocab)
        return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, tokenizer) -> None:
        self._tokenizer = tokenizer

    def generate(self, prompt, *, state: Optional[FloatArray] = None, **sampling):
        """Streams generated text: returns a :class:`rwkv_cpp.generate.TextStream` to
        iterate over; ``.state`` afterwards continues the conversation. ``prompt`` is text
        or token ids; ``sampling`` are :class:`rwkv_cpp.SamplingParams` fields
        (temperature, top_p, top_k, min_p, penalties, seed, max_tokens, stop, stop_tokens)
        or ``params=SamplingParams(...)``.

        Example::

            for piece in model.generate("ROMEO:", max_tokens=200, temperature=0.8):
                print(piece, end="", flush=True)
        """
        from .generate import generate

        return generate(self, prompt, state=state, **sampling)

    def generate_text(self, prompt, *, state: Optional[FloatArray] = None, **sampling) -> str:
        """:meth:`generate` without streaming: the whole text at once.

        Example: ``text = model.generate_text("ROMEO:", max_tokens=50, seed=1)``
        """
        return self.generate(prompt, state=state, **sampling).text()

    def save_state(self, path: PathLike, state: FloatArray) -> None:
        """Writes ``state`` to a file that only this model (same file) will load back.

        Example: ``model.save_state("chat.state", stream.state)``
        """
        ptr = _float_pointer(state, "state", self._state_len, writable=False)
        with self._lock:
            ctx = self._live_ctx()
            if not self._lib.rwkv_state_save(ctx, os.fsencode(os.fspath(path)), ptr):
                _native.raise_last_error(self._lib, ctx, "rwkv_state_save")

    def load_state(self, path: PathLike, *, out: Optional[FloatArray] = None) -> FloatArray:
        """Reads a state written by :meth:`save_state`; refuses one of another model.

        Example: ``state = model.load_state("chat.state")``
        """
        if out is None:
            out = np.empty(self._state_len, dtype=np.float32)
        ptr = _float_pointer(out, "out", self._state_len, writable=True)
        with self._lock:
            ctx = self._live_ctx()
            if not self._lib.rwkv_state_load(ctx, os.fsencode(os.fspath(path)), ptr):
                _native.raise_last_error(self._lib, ctx, "rwkv_state_load")
        return out

    @classmethod
    def demo(cls, *, thread_count: Optional[int] = None) -> "Model":
        """The small RWKV-7 trained on Shakespeare that ships inside the package.

        Example: ``print(rwkv_cpp.Model.demo().generate_text("ROMEO:", max_tokens=200))``
        """
        return cls(demo_model_path(), thread_count=thread_count)

    # ---- evaluation ----

    def init_state(self, *, out: Optional[FloatArray] = None) -> FloatArray:
        """The fresh state (what ``state=None`` means), in a new array or in ``out``.

        Example: ``state = model.init_state()``
        """
        self._live_ctx()
        if out is None:
            out = np.empty(self._state_len, dtype=np.float32)
        ptr = _float_pointer(out, "out", self._state_len, writable=True)
        with self._lock:
            self._lib.rwkv_init_state(self._live_ctx(), ptr)
        return out

    def eval(
        self,
        token: int,
        state: Optional[FloatArray] = None,
        *,
        out_logits: Optional[FloatArray] = None,
        out_state: Optional[FloatArray] = None,
    ) -> Tuple[FloatArray, FloatArray]:
        """Feeds one token; returns ``(logits, new_state)``.

        ``state`` is not modified unless it is also passed as ``out_state``.

        Example: ``logits, state = model.eval(34, state)``
        """
        self._live_ctx()
        token = _token_arg(token, self._n_vocab)
        return self._evaluate(
            "rwkv_eval",
            lambda ctx, s_in, s_out, logits: self._lib.rwkv_eval(ctx, token, s_in, s_out, logits),
            state, out_logits, out_state,
        )

    def eval_sequence(
        self,
        tokens: Tokens,
        state: Optional[FloatArray] = None,
        *,
        chunk_size: Optional[int] = None,
        out_logits: Optional[FloatArray] = None,
        out_state: Optional[FloatArray] = None,
    ) -> Tuple[FloatArray, FloatArray]:
        """Feeds many tokens (a list of ints or an integer numpy array); returns the logits
        after the last one and the state after all. Same result as calling :meth:`eval`
        for each token. ``chunk_size`` bounds the tokens processed at once (memory).

        Example: ``logits, state = model.eval_sequence([34, 105, 110], chunk_size=16)``
        """
        self._live_ctx()
        array = _token_array(tokens, self._n_vocab)
        n_tokens = array.shape[0]
        token_ptr = ffi.from_buffer("uint32_t[]", array)
        if chunk_size is None:
            call = lambda ctx, s_in, s_out, logits: self._lib.rwkv_eval_sequence(  # noqa: E731
                ctx, token_ptr, n_tokens, s_in, s_out, logits)
            what = "rwkv_eval_sequence"
        else:
            chunk = _count_arg(chunk_size, "chunk_size", minimum=1)
            call = lambda ctx, s_in, s_out, logits: self._lib.rwkv_eval_sequence_in_chunks(  # noqa: E731
                ctx, token_ptr, n_tokens, chunk, s_in, s_out, logits)
            what = "rwkv_eval_sequence_in_chunks"
        return self._evaluate(what, call, state, out_logits, out_state)

    def eval_sequence_logits(self, tokens: Tokens, state: Optional[FloatArray] = None) -> Tuple[FloatArray, FloatArray]:
        """Like :meth:`eval_sequence`, but returns the logits after every token, shape
        (len(tokens), n_vocab), for scoring and perplexity.

        Example: ``all_logits, state = model.eval_sequence_logits(tokens)``
        """
        self._live_ctx()
        array = _token_array(tokens, self._n_vocab)
        n_tokens = array.shape[0]
        token_ptr = ffi.from_buffer("uint32_t[]", array)
        logits = np.empty((n_tokens, self._logits_len), dtype=np.float32)
        logits_ptr = ffi.from_buffer("float[]", logits)
        state_in = ffi.NULL if state is None else _float_pointer(state, "state", self._state_len, writable=False)
        out_state = np.empty(self._state_len, dtype=np.float32)
        state_out = _float_pointer(out_state, "out_state", self._state_len, writable=True)
        with self._lock:
            ctx = self._live_ctx()
            if not self._lib.rwkv_eval_sequence_all_logits(ctx, token_ptr, n_tokens, state_in, state_out, logits_ptr):
                _native.raise_last_error(self._lib, ctx, "rwkv_eval_sequence_all_logits")
        return logits, out_state

    def _evaluate(self, what, call, state, out_logits, out_state):
        state_in = ffi.NULL
        if state is not None:
            state_in = _float_pointer(state, "state", self._state_len, writable=False)
        if out_state is None:
            out_state = np.empty(self._state_len, dtype=np.float32)
        if out_logits is None:
            out_logits = np.empty(self._logits_len, dtype=np.float32)
        state_out = _float_pointer(out_state, "out_state", self._state_len, writable=True)
        logits_out = _float_pointer(out_logits, "out_logits", self._logits_len, writable=True)
        _check_no_overlap(state_in, state_out, self._state_len, logits_out, self._logits_len)
        with self._lock:
            ctx = self._live_ctx()
            if not call(ctx, state_in, state_out, logits_out):
                _native.raise_last_error(self._lib, ctx, what)
        return out_logits, out_state


def demo_model_path() -> str:
    """Where the shipped demo model is."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "demo-shakespeare.bin")


def system_info() -> str:
    """The CPU features the library detected and uses."""
    return ffi.string(_native.load().lib.rwkv_get_system_info_string()).decode("utf-8", "replace")


def library_path() -> str:
    """The path of the shared library in use (loading it if needed)."""
    return _native.load().path


# ---- argument checks (before anything reaches C) ----


def _thread_count_arg(thread_count: Optional[int]) -> int:
    if thread_count is None:
        return 0  # the library picks
    return _count_arg(thread_count, "thread_count", minimum=1)


def _count_arg(value: int, name: str, *, minimum: int) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if not minimum <= value < 2**32:
        raise InvalidArgumentError(f"{name} must be >= {minimum}, got {value}")
    return value


def _token_arg(token: int, n_vocab: int) -> int:
    if isinstance(token, (bool, np.bool_)):
        raise TypeError("token must be an int, got bool")
    try:
        token = operator.index(token)
    except TypeError:
        raise TypeError(f"token must be an int, got {type(token).__name__}") from None
    if not 0 <= token < n_vocab:
        raise InvalidTokenError(f"token {token} is out of range [0, {n_vocab})")
    return token


def _token_array(tokens: Tokens, n_vocab: int) -> np.ndarray:
    """tokens as a C-contiguous uint32 array (no copy when it already is one), range-checked."""
    if isinstance(tokens, (str, bytes, bytearray)):
        raise TypeError(f"tokens must be a sequence of ints, got {type(tokens).__name__}")
    try:
        array = np.asarray(tokens)
    except (ValueError, OverflowError, TypeError):
        raise TypeError("tokens must be a flat sequence of ints") from None
    if array.ndim != 1:
        raise TypeError(f"tokens must be a flat sequence of ints, got an array of shape {array.shape}")
    if array.shape[0] == 0:
        raise InvalidArgumentError("tokens is empty")
    if array.dtype.kind == "O":  # e.g. Python ints beyond int64, or None among ints
        for i, token in enumerate(array):
            try:
                _token_arg(token, n_vocab)
            except InvalidTokenError:
                raise InvalidTokenError(f"token {token} at index {i} is out of range [0, {n_vocab})") from None
            except TypeError:
                raise TypeError(f"tokens must be ints, got {type(token).__name__} at index {i}") from None
    if array.dtype.kind not in "iu":
        raise TypeError(f"tokens must be ints, got dtype {array.dtype}")
    bad = np.flatnonzero((array < 0) | (array >= n_vocab))
    if bad.size:
        i = int(bad[0])
        raise InvalidTokenError(f"token {int(array[i])} at index {i} is out of range [0, {n_vocab})")
    return np.ascontiguousarray(array, dtype=np.uint32)


def _float_pointer(buffer, name: str, length: int, *, writable: bool):
    """A float * onto buffer's memory (never a copy): a C-contiguous 1-D float32 array of
    ``length`` elements, such as a numpy array."""
    expected = f"a C-contiguous 1-D float32 numpy array of {length} elements"
    if isinstance(buffer, np.ndarray):
        array = buffer
    elif isinstance(buffer, (list, tuple)):
        raise TypeError(
            f"{name} must be {expected}, got a Python {type(buffer).__name__}; "
            f"use numpy.asarray({name}, dtype=numpy.float32)"
        )
    else:
        try:
            array = np.asarray(memoryview(buffer))
        except TypeError:
            raise TypeError(f"{name} must be {expected}, got {type(buffer).__name__}") from None
    if array.dtype != np.float32:
        raise TypeError(
            f"{name} must have dtype float32, got {array.dtype} (rwkv_cpp never converts "
            f"silently; use {name}.astype(numpy.float32))"
        )
    if array.ndim != 1 or array.shape[0] != length:
        raise StateSizeError(f"{name} must be {expected}, got shape {array.shape}")
    if not array.flags.c_contiguous:
        raise InvalidArgumentError(
            f"{name} is not C-contiguous (a strided view?); use numpy.ascontiguousarray({name})"
        )
    if writable and not array.flags.writeable:
        raise InvalidArgumentError(f"{name} is read-only; the output needs a writable array")
    return ffi.from_buffer("float[]", array, require_writable=writable)


def _check_no_overlap(state_in, state_out, state_len: int, logits_out, logits_len: int) -> None:
    """state_in may be state_out exactly (in-place update); no other overlap is allowed."""
    def span(ptr, n):
        start = int(ffi.cast("uintptr_t", ptr))
        return start, start + n * _FLOAT_BYTES

    s_out = span(state_out, state_len)
    logits = span(logits_out, logits_len)
    if s_out[0] < logits[1] and logits[0] < s_out[1]:
        raise InvalidArgumentError("out_state and out_logits overlap")
    if state_in != ffi.NULL:
        s_in = span(state_in, state_len)
        if s_in[0] < logits[1] and logits[0] < s_in[1]:
            raise InvalidArgumentError("state and out_logits overlap")
        if s_in != s_out and s_in[0] < s_out[1] and s_out[0] < s_in[1]:
            raise InvalidArgumentError("state and out_state partly overlap (pass the same array for in-place)")
