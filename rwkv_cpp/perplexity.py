"""Perplexity of a model on a text: the mean negative log-likelihood of each token given the
ones before it, computed in sequence mode chunk by chunk with the state carried along."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np


@dataclass
class PerplexityResult:
    n_tokens: int           # tokens scored (all but the first)
    mean_nll: float         # nats per token
    perplexity: float       # exp(mean_nll)


def perplexity(model, tokens: Sequence[int], *, chunk_size: int = 256,
               progress: Optional[Callable[[int], None]] = None) -> PerplexityResult:
    """Scores tokens[1:], each given all before it, in sequence-mode chunks of chunk_size
    tokens (the state carries the history; memory stays chunk_size x n_vocab floats).

    Example::

        result = perplexity(model, model.tokenizer.encode(open("hamlet.txt").read()))
        print(result.perplexity)
    """
    if len(tokens) < 2:
        raise ValueError("perplexity needs at least 2 tokens")
    tokens = np.asarray(tokens, dtype=np.int64)
    state = None
    total = 0.0
    for start in range(0, len(tokens) - 1, chunk_size):
        chunk = tokens[start:min(start + chunk_size, len(tokens) - 1)]
        logits, state = model.eval_sequence_logits(chunk, state)
        targets = tokens[start + 1:start + 1 + len(chunk)]
        shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
        log_probs = shifted[np.arange(len(chunk)), targets] - np.log(np.exp(shifted).sum(axis=1))
        total -= float(log_probs.sum())
        if progress:
            progress(len(chunk))
    n = len(tokens) - 1
    return PerplexityResult(n, total / n, float(np.exp(total / n)))
