"""Streaming text generation over a Model: prompt in sequence mode, then one token at a time
through the sampler, with stop strings, stop tokens and a token limit."""

from __future__ import annotations

from typing import Iterator, List, Optional, Sequence, Union

import numpy as np

from .errors import InvalidArgumentError
from .model import _float_pointer
from .sampling import Sampler, SamplingParams
from .tokenizers import AnyTokenizer, StreamDecoder

Prompt = Union[str, bytes, Sequence[int]]


class TextStream:
    """The pieces of a generation as they come (iterate over it), then what it ended with.

    After the loop (or after :meth:`text`): ``state`` is the model state after everything
    the model has read — prompt and every generated token — so a follow-up can continue
    from it without re-reading the history; ``tokens`` are the generated ids,
    ``stop_reason`` is "max_tokens", "stop" (a stop string), "stop_token" or None while
    running.

    Example::

        stream = model.generate("ROMEO:", max_tokens=100, temperature=0.8, seed=1)
        for piece in stream:
            print(piece, end="", flush=True)
        more = model.generate(" And then", state=stream.state)
    """

    def __init__(self, model, tokenizer: AnyTokenizer, prompt: Prompt, state: Optional[np.ndarray],
                 params: SamplingParams) -> None:
        self.tokens: List[int] = []
        self.stop_reason: Optional[str] = None
        self._model = model
        self._tokenizer = tokenizer
        self._params = params
        self._pieces: List[str] = []
        prompt_tokens = list(prompt) if not isinstance(prompt, (str, bytes)) else tokenizer.encode(prompt)
        if not prompt_tokens and state is None:
            raise InvalidArgumentError("an empty prompt needs a state to continue from")
        if state is not None:
            _float_pointer(state, "state", model.state_len, writable=False)  # Model.eval's checks: no silent conversion
        self.state = model.init_state() if state is None else np.array(state, dtype=np.float32, copy=True)
        self._logits = np.empty(model.n_vocab, dtype=np.float32)
        self._has_logits = False
        if prompt_tokens:
            model.eval_sequence(prompt_tokens, self.state, out_state=self.state, out_logits=self._logits)
            self._has_logits = True
        self._prompt_tokens = prompt_tokens
        self._iterator = self._run()

    def __iter__(self) -> Iterator[str]:
        return self._iterator

    def __next__(self) -> str:
        return next(self._iterator)

    def text(self) -> str:
        """Runs the generation to its end and returns all the text (pieces already taken
        included)."""
        for _ in self._iterator:
            pass
        return "".join(self._pieces)

    def _run(self) -> Iterator[str]:
        params, model = self._params, self._model
        if not self._has_logits:
            # Continuing from a state alone: its logits come from the last token it read,
            # which the state does not keep; the caller gave an empty prompt on purpose.
            raise InvalidArgumentError("nothing to generate from: give a prompt (a state alone has no logits)")
        decoder = StreamDecoder(self._tokenizer)
        held = ""  # text not yet handed out: it may be the start of a stop string
        longest_stop = max((len(s) for s in params.stop), default=0)
        with Sampler(model.n_vocab, params) as sampler:
            for token in self._prompt_tokens:
                sampler.accept(token)
            while params.max_tokens is None or len(self.tokens) < params.max_tokens:
                token = sampler.sample(self._logits)
                if token in params.stop_tokens:
                    self.stop_reason = "stop_token"
                    break
                sampler.accept(token)
                self.tokens.append(token)
                model.eval(token, self.state, out_state=self.state, out_logits=self._logits)
                held += decoder.feed(token)
                cut = _first_stop(held, params.stop)
                if cut is not None:
                    held = held[:cut]
                    self.stop_reason = "stop"
                    break
                # Hand out all but what could still grow into a stop string.
                keep = _longest_stop_prefix_suffix(held, params.stop, longest_stop)
                piece, held = held[:len(held) - keep], held[len(held) - keep:]
                if piece:
                    self._pieces.append(piece)
                    yield piece
            else:
                self.stop_reason = "max_tokens"
        if self.stop_reason != "stop":
            held += decoder.flush()
        if held:
            self._pieces.append(held)
            yield held


def _first_stop(text: str, stops: Sequence[str]) -> Optional[int]:
    positions = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(positions) if positions else None


def _longest_stop_prefix_suffix(text: str, stops: Sequence[str], longest: int) -> int:
    """Length of the longest end of text that is the beginning of some stop string."""
    for n in range(min(len(text), longest - 1), 0, -1):
        tail = text[-n:]
        if any(s.startswith(tail) for s in stops):
            return n
    return 0


def generate(model, prompt: Prompt, *, state: Optional[np.ndarray] = None, tokenizer: Optional[AnyTokenizer] = None,
             params: Optional[SamplingParams] = None, **sampling) -> TextStream:
    """See :meth:`rwkv_cpp.Model.generate`."""
    import dataclasses

    params = SamplingParams(**sampling) if params is None else dataclasses.replace(params, **sampling)
    tokenizer = tokenizer or model.tokenizer
    if tokenizer.vocab_size < model.n_vocab:
        # World models have 65536 logits for 65530 tokens: never pick an id with no text.
        banned = {token: float("-inf") for token in range(tokenizer.vocab_size, model.n_vocab)}
        params = dataclasses.replace(params, logit_bias={**banned, **params.logit_bias})
    return TextStream(model, tokenizer, prompt, state, params)
