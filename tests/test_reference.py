"""Our engine against BlinkDL's reference implementation (`rwkv` 0.8.32, cpu fp32) on random
checkpoints of every architecture: convert the .pth with our converter, evaluate token by
token, and compare logits and the whole state after every one of 72 tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rwkv_cpp
from rwkv_cpp.convert import convert_checkpoint

# The bounds. FP32: float32 accumulation in a different order than torch's.
FP32_LOGITS_FIRST_16 = 1e-4
FP32_LOGITS_ALL = 1e-3
# FP16 files against the reference run on the same FP16-rounded weights: activations stay
# float32 here, so only accumulation order differs (rwkv.cpp is 3e-3 to 4e-2 off).
FP16_LOGITS_ALL = 2e-3
# State: relative to the magnitude of each state, same bounds.
STATE_RELATIVE = 1e-3


def run_token_by_token(model: rwkv_cpp.Model, tokens) -> tuple[np.ndarray, np.ndarray]:
    logits = np.empty((len(tokens), model.n_vocab), np.float32)
    states = np.empty((len(tokens), model.state_len), np.float32)
    state = None
    for i, token in enumerate(tokens):
        logits[i], state = model.eval(int(token), state)
        states[i] = state
    return logits, states


def relative_state_error(ours: np.ndarray, reference: np.ndarray) -> float:
    scale = np.maximum(np.abs(reference).max(axis=1, keepdims=True), 1.0)
    return float((np.abs(ours - reference) / scale).max())


@pytest.fixture(scope="module")
def converted(reference_case, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp(f"v{reference_case.arch}")
    files = {}
    for data_type in ("FP32", "FP16"):
        files[data_type] = out / f"model-{data_type}.bin"
        convert_checkpoint(reference_case.pth_path, files[data_type], data_type, progress=False)
    return files


def test_fp32_matches_reference_at_every_token(reference_case, converted) -> None:
    with rwkv_cpp.Model(converted["FP32"], thread_count=2) as model:
        assert model.arch_version == reference_case.arch
        np.testing.assert_array_equal(model.init_state(), reference_case.state_init)
        logits, states = run_token_by_token(model, reference_case.tokens)
    diff = np.abs(logits - reference_case.logits)
    print(f"v{reference_case.arch} FP32: max logit diff {diff[:16].max():.2e} (16 tokens), {diff.max():.2e} (72)")
    assert diff[:16].max() <= FP32_LOGITS_FIRST_16
    assert diff.max() <= FP32_LOGITS_ALL
    assert relative_state_error(states, reference_case.states) <= STATE_RELATIVE


def test_fp16_matches_reference_on_rounded_weights(reference_case, converted) -> None:
    with rwkv_cpp.Model(converted["FP16"], thread_count=2) as model:
        logits, states = run_token_by_token(model, reference_case.tokens)
    diff = np.abs(logits - reference_case.logits_fp16)
    print(f"v{reference_case.arch} FP16: max logit diff {diff.max():.2e}")
    assert diff.max() <= FP16_LOGITS_ALL
    assert relative_state_error(states, reference_case.states_fp16) <= STATE_RELATIVE


def test_sequence_mode_equals_token_by_token(reference_case, converted) -> None:
    tokens = reference_case.tokens
    with rwkv_cpp.Model(converted["FP32"], thread_count=2) as model:
        one_logits, one_states = run_token_by_token(model, tokens)
        seq_logits, seq_state = model.eval_sequence(tokens)
        chunk_logits, chunk_state = model.eval_sequence(tokens, chunk_size=5)
        # Continue from a mid-sequence state: the second half alone gives the same end.
        _, half_state = model.eval_sequence(tokens[:40])
        rest_logits, rest_state = model.eval_sequence(tokens[40:], half_state)
    for logits, state in ((seq_logits, seq_state), (chunk_logits, chunk_state), (rest_logits, rest_state)):
        np.testing.assert_allclose(logits, one_logits[-1], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(state, one_states[-1], rtol=1e-5, atol=1e-5)
    assert np.abs(seq_logits - reference_case.logits[-1]).max() <= FP32_LOGITS_ALL
