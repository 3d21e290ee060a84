"""Sampling: :class:`SamplingParams` (how to pick tokens, and when a generation stops) and
:class:`Sampler`, the library's C sampler (logit bias, repetition / presence / frequency
penalties, temperature, top-k, top-p, min-p, a seeded draw).

The steps run in this order on a copy of the logits (rwkv.h, "Sampling", has the exact
definitions): logit bias -> penalties -> temperature -> top-k -> top-p -> min-p -> draw.
``temperature=0`` is greedy (the lowest id among the largest logits).

The sampler only picks tokens. ``max_tokens``, ``stop`` and ``stop_tokens`` are carried by
:class:`SamplingParams` for the generation loop (:mod:`rwkv_cpp.generate`); the C side
never looks at them.

Example::

    params = rwkv_cpp.SamplingParams(temperature=0.8, top_p=0.9, seed=42)
    sampler = rwkv_cpp.Sampler(model.n_vocab, params)
    token = sampler.sample(logits)
    sampler.accept(token)
"""

from __future__ import annotations

import dataclasses
import math
import operator
import sys
import threading
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import _native
from ._native import ffi
from .errors import InvalidArgumentError, RwkvError
from .model import _float_pointer, _token_arg

__all__ = ["SamplingParams", "Sampler", "SEED_RANDOM"]

FloatArray = npt.NDArray[np.float32]

# RWKV_SAMPLING_SEED_RANDOM: the C value of seed=None.
SEED_RANDOM = 2**64 - 1

# Keyword-only fields where the Python has them (3.10+).
_KW_ONLY = {"kw_only": True} if sys.version_info >= (3, 10) else {}


@dataclasses.dataclass(frozen=True, **_KW_ONLY)
class SamplingParams:
    """How to pick tokens, and when a generation stops. Immutable: derive variants with
    ``dataclasses.replace(params, temperature=0.5)`` (validated again).

    The defaults are the rwkv pip package's ``PIPELINE_ARGS`` (temperature 1, top_p 0.85,
    presence and frequency penalties 0.2 decaying by 0.996 per token).

    Sampler fields (see rwkv.h for the exact definitions):

    - ``temperature``: >= 0; 0 is greedy (argmax, lowest id on ties).
    - ``top_k``: keep the k largest logits; 0 is off.
    - ``top_p``: in (0, 1]; keep the smallest set of most likely tokens holding this much
      probability; 1 is off.
    - ``min_p``: in [0, 1]; drop tokens less likely than ``min_p`` times the most likely; 0 is off.
    - ``repetition_penalty``: > 0, llama.cpp's ``repeat_penalty``: the logit of a token
      generated before is divided by it if positive, multiplied if negative; 1 is off.
    - ``presence_penalty``, ``frequency_penalty``, ``penalty_decay``: ChatRWKV's
      ``alpha_presence``, ``alpha_frequency``, ``alpha_decay``: a token generated before
      loses ``presence_penalty + occurrence * frequency_penalty`` from its logit, where
      ``occurrence`` counts its earlier copies, each decayed by ``penalty_decay`` per token
      generated since.
    - ``seed``: same seed, same tokens (on every platform); None picks one at random
      (:attr:`Sampler.seed` tells which).
    - ``logit_bias``: ``{token: bias}`` added to the logits; ``float("-inf")`` bans a token
      (ChatRWKV's ``token_ban``).

    Generation-loop fields (the C sampler ignores them):

    - ``max_tokens``: stop after this many generated tokens; None is no limit.
    - ``stop``: strings that end the generation when they appear in the output (a single
      string is accepted for one).
    - ``stop_tokens``: token ids that end the generation (ChatRWKV's ``token_stop``).

    Example::

        params = SamplingParams(temperature=0.7, top_k=40, stop=["\\n\\nUser:"], seed=1)
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 0.85
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.2
    frequency_penalty: float = 0.2
    penalty_decay: float = 0.996
    seed: Optional[int] = None
    logit_bias: Mapping[int, float] = dataclasses.field(default_factory=dict, hash=False)
    max_tokens: Optional[int] = 256
    stop: Tuple[str, ...] = ()
    stop_tokens: Tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # Each check works on the float32 value the C sampler will see.
        def set_(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        set_("temperature", _float_field("temperature", self.temperature, "a finite number >= 0 (0: greedy)",
                                         lambda v: v >= 0.0 and math.isfinite(v)))
        set_("top_k", _int_field("top_k", self.top_k, 0, 2**32 - 1))
        set_("top_p", _float_field("top_p", self.top_p, "in (0, 1] (1: off)", lambda v: 0.0 < v <= 1.0))
        set_("min_p", _float_field("min_p", self.min_p, "in [0, 1] (0: off)", lambda v: 0.0 <= v <= 1.0))
        set_("repetition_penalty", _float_field("repetition_penalty", self.repetition_penalty,
                                                "a finite number > 0 (1: off)", lambda v: v > 0.0 and math.isfinite(v)))
        for name in ("presence_penalty", "frequency_penalty"):
            set_(name, _float_field(name, getattr(self, name), "finite (0: off)", math.isfinite))
        set_("penalty_decay", _float_field("penalty_decay", self.penalty_decay, "in [0, 1] (1: no decay)",
                                           lambda v: 0.0 <= v <= 1.0))
        if self.seed is not None:
            set_("seed", _int_field("seed", self.seed, 0, SEED_RANDOM - 1))
        set_("logit_bias", _logit_bias_field(self.logit_bias))
        if self.max_tokens is not None:
            set_("max_tokens", _int_field("max_tokens", self.max_tokens, 0, sys.maxsize))
        set_("stop", _stop_field(self.stop))
        set_("stop_tokens", tuple(_int_field(f"stop_tokens[{i}]", t, 0, 2**32 - 1)
                                  for i, t in enumerate(_sequence_field("stop_tokens", self.stop_tokens))))

    @classmethod
    def from_pipeline_args(cls, args: Any, **overrides: Any) -> "SamplingParams":
        """The equivalent of a ChatRWKV / rwkv pip package ``PIPELINE_ARGS`` (any object with
        its attributes): alpha_* become the penalties, ``token_ban`` a logit bias of -inf,
        ``token_stop`` ``stop_tokens``. ``overrides`` set other fields (``seed``, ``max_tokens``).

        The package samples with top-p and top-k on the untempered probabilities and then
        applies the temperature; here the temperature comes first, so only at temperature 1
        (or without top-p and top-k) are the distributions the same. Its ``temperature == 0``
        (or ``top_p == 0``) means greedy, as here.

        Example: ``SamplingParams.from_pipeline_args(PIPELINE_ARGS(temperature=1.0, top_p=0.7))``
        """
        temperature = float(args.temperature)
        top_p = float(args.top_p)
        if temperature == 0.0 or top_p <= 0.0:
            temperature, top_p = 0.0, 1.0
        fields = dict(
            temperature=temperature,
            top_p=top_p,
            top_k=int(args.top_k),
            presence_penalty=float(args.alpha_presence),
            frequency_penalty=float(args.alpha_frequency),
            penalty_decay=float(args.alpha_decay),
            logit_bias={int(t): float("-inf") for t in getattr(args, "token_ban", ())},
            stop_tokens=tuple(int(t) for t in getattr(args, "token_stop", ())),
        )
        fields.update(overrides)
        return cls(**fields)


class Sampler:
    """The library's sampler for logits of ``n_vocab`` floats: picks tokens with ``params``
    (default :class:`SamplingParams`; keyword arguments override single fields) and
    remembers the accepted tokens for the penalties. Allocates once; one call at a time
    (a lock guards it).

    Logits are C-contiguous float32 arrays of ``n_vocab`` elements (what :meth:`Model.eval`
    returns); NaN or +inf is an error, -inf bans a token.

    Example::

        sampler = Sampler(model.n_vocab, temperature=0.8, top_p=0.9, seed=7)
        logits, state = model.eval_sequence(prompt_tokens)
        for _ in range(100):
            token = sampler.sample(logits)
            sampler.accept(token)
            logits, state = model.eval(token, state, out_logits=logits, out_state=state)
    """

    def __init__(self, n_vocab: int, params: Optional[SamplingParams] = None, **overrides: Any) -> None:
        self._sampler = None
        if params is None:
            params = SamplingParams(**overrides)
        elif not isinstance(params, SamplingParams):
            raise TypeError(f"params must be a SamplingParams, got {type(params).__name__}")
        elif overrides:
            params = dataclasses.replace(params, **overrides)
        self._n_vocab = _int_field("n_vocab", n_vocab, 1, 2**32 - 1)
        self._params = params
        library = _native.load()
        lib = library.lib
        _native.silence(lib)
        c_params = ffi.new("struct rwkv_sampling_params *")
        for name in ("temperature", "top_k", "top_p", "min_p", "repetition_penalty",
                     "presence_penalty", "frequency_penalty", "penalty_decay"):
            setattr(c_params, name, getattr(params, name))
        c_params.seed = SEED_RANDOM if params.seed is None else params.seed
        sampler = lib.rwkv_sampler_create(self._n_vocab, c_params)
        if sampler == ffi.NULL:
            _native.raise_last_error(lib, ffi.NULL, "rwkv_sampler_create")
        lib.rwkv_sampler_set_print_errors(sampler, False)
        self._lib = lib
        self._sampler = ffi.gc(sampler, lib.rwkv_sampler_free)
        self._lock = threading.Lock()
        if params.logit_bias:
            self.set_logit_bias(params.logit_bias)

    # ---- lifetime ----

    def close(self) -> None:
        """Frees the C sampler now (otherwise it goes with the object). Idempotent."""
        sampler, self._sampler = self._sampler, None
        if sampler is not None:
            with self._lock:
                ffi.release(sampler)

    def __enter__(self) -> "Sampler":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _live(self):
        sampler = self._sampler
        if sampler is None:
            raise RwkvError("the sampler is closed")
        return sampler

    def _raise(self, sampler, what: str):
        lib = self._lib
        message = ffi.string(lib.rwkv_sampler_get_last_error_message(sampler)).decode("utf-8", "replace")
        code = int(lib.rwkv_sampler_get_last_error(sampler))
        raise _native.error_class(code)(message or f"{what} failed (error flags {code:#x})", code)

    # ---- properties ----

    @property
    def n_vocab(self) -> int:
        return self._n_vocab

    @property
    def params(self) -> SamplingParams:
        return self._params

    @property
    def seed(self) -> int:
        """The seed in use: ``params.seed``, or the one picked at random (after the last
        :meth:`reset` when ``params.seed`` is None)."""
        with self._lock:
            return int(self._lib.rwkv_sampler_get_seed(self._live()))

    def __repr__(self) -> str:
        return f"<rwkv_cpp.Sampler n_vocab={self._n_vocab} {self._params!r}>"

    # ---- sampling ----

    def sample(self, logits: FloatArray) -> int:
        """The next token drawn from ``logits`` (not recorded: call :meth:`accept` with the
        token you keep).

        Example: ``token = sampler.sample(logits)``
        """
        sampler = self._live()
        ptr = _float_pointer(logits, "logits", self._n_vocab, writable=False)
        token = ffi.new("uint32_t *")
        with self._lock:
            if not self._lib.rwkv_sampler_sample(sampler, ptr, self._n_vocab, token):
                self._raise(sampler, "rwkv_sampler_sample")
        return int(token[0])

    def accept(self, token: int) -> None:
        """Records ``token`` for the penalties (earlier occurrences decay by
        ``penalty_decay``). Accept prompt tokens too to penalize repeating them.

        Example: ``sampler.accept(token)``
        """
        sampler = self._live()
        token = _token_arg(token, self._n_vocab)
        with self._lock:
            if not self._lib.rwkv_sampler_accept(sampler, token):
                self._raise(sampler, "rwkv_sampler_accept")

    def reset(self) -> None:
        """Forgets the accepted tokens and restarts the random numbers from ``params.seed``
        (a new random seed when it is None). Keeps the logit bias."""
        with self._lock:
            self._lib.rwkv_sampler_reset(self._live())

    def set_logit_bias(self, logit_bias: Mapping[int, float]) -> None:
        """Replaces the logit bias (``{token: bias}``; ``float("-inf")`` bans; ``{}`` clears).
        On error the old bias stays.

        Example: ``sampler.set_logit_bias({0: float("-inf")})``
        """
        sampler = self._live()
        bias = _logit_bias_field(logit_bias)
        for token in bias:
            _token_arg(token, self._n_vocab)
        tokens = np.fromiter(bias.keys(), dtype=np.uint32, count=len(bias))
        values = np.fromiter(bias.values(), dtype=np.float32, count=len(bias))
        with self._lock:
            if not self._lib.rwkv_sampler_set_logit_bias(
                sampler, ffi.from_buffer("uint32_t[]", tokens), ffi.from_buffer("float[]", values), len(bias)
            ):
                self._raise(sampler, "rwkv_sampler_set_logit_bias")

    def apply(self, logits: FloatArray, *, out: Optional[FloatArray] = None) -> FloatArray:
        """The logits after the logit bias and the penalties (before temperature and
        filters), in a new array or in ``out`` (which may be ``logits`` itself).

        Example: ``adjusted = sampler.apply(logits)``
        """
        return self._fill("rwkv_sampler_apply", logits, out)

    def probs(self, logits: FloatArray, *, out: Optional[FloatArray] = None) -> FloatArray:
        """The probabilities :meth:`sample` would draw from (0 for tokens it cannot return),
        in a new array or in ``out``. Draws nothing.

        Example: ``p = sampler.probs(logits); print(p.argmax(), p.max())``
        """
        return self._fill("rwkv_sampler_get_probs", logits, out)

    def _fill(self, what: str, logits: FloatArray, out: Optional[FloatArray]) -> FloatArray:
        sampler = self._live()
        ptr = _float_pointer(logits, "logits", self._n_vocab, writable=False)
        if out is None:
            out = np.empty(self._n_vocab, dtype=np.float32)
        out_ptr = _float_pointer(out, "out", self._n_vocab, writable=True)
        with self._lock:
            if not getattr(self._lib, what)(sampler, ptr, self._n_vocab, out_ptr):
                self._raise(sampler, what)
        return out


# ---- field checks ----


def _float_field(name: str, value: Any, expected: str, ok) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    # What C receives: float32 (a value beyond its range becomes inf).
    with np.errstate(over="ignore"):
        as_float32 = float(np.float32(value))
    if not ok(as_float32):
        shown = f"{value!r}" if as_float32 == value or math.isnan(value) else f"{value!r} ({as_float32!r} as float32)"
        raise InvalidArgumentError(f"{name} must be {expected}, got {shown}")
    return value


def _int_field(name: str, value: Any, minimum: int, maximum: int) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if not minimum <= value <= maximum:
        raise InvalidArgumentError(f"{name} must be in [{minimum}, {maximum}], got {value}")
    return value


def _sequence_field(name: str, value: Any) -> Sequence:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, range, np.ndarray)):
        raise TypeError(f"{name} must be a list or tuple, got {type(value).__name__}")
    return value


def _stop_field(value: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    stops = tuple(_sequence_field("stop", value))
    for i, s in enumerate(stops):
        if not isinstance(s, str):
            raise TypeError(f"stop[{i}] must be a str, got {type(s).__name__}")
        if not s:
            raise InvalidArgumentError(f"stop[{i}] is the empty string, which would stop at once")
    return stops


def _logit_bias_field(value: Any) -> dict:
    if not isinstance(value, Mapping):
        raise TypeError(f"logit_bias must be a mapping {{token: bias}}, got {type(value).__name__}")
    bias = {}
    for token, b in value.items():
        token = _int_field("logit_bias token", token, 0, 2**32 - 1)
        b = _float_field(f"logit_bias[{token}]", b, "finite or -inf (ban)",
                         lambda v: not math.isnan(v) and v != math.inf)
        bias[token] = b
    return bias
