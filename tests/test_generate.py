"""Generation, state files and perplexity on a small random byte-level RWKV-7 model.

Compared against an independent loop written here with Model.eval and the Sampler (the
generation module must produce exactly what that loop produces), and against
Model.eval token by token (perplexity)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rwkv_cpp
from rwkv_cpp.convert import convert_tensors
from rwkv_cpp.perplexity import perplexity
from rwkv_cpp.random_model import RandomCheckpoint


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gen") / "random-v7.bin"
    convert_tensors(RandomCheckpoint(n_embd=128, n_layer=2, n_vocab=256, head_size=64), path, "FP32", progress=False)
    return path


@pytest.fixture()
def model(model_path):
    with rwkv_cpp.Model(model_path, thread_count=2) as m:
        yield m


def reference_generation(model, prompt: bytes, params: rwkv_cpp.SamplingParams) -> list[int]:
    """The plain loop: prompt, then sample / accept / eval until max_tokens."""
    logits, state = model.eval_sequence(list(prompt))
    tokens = []
    with rwkv_cpp.Sampler(model.n_vocab, params) as sampler:
        for t in prompt:
            sampler.accept(t)
        for _ in range(params.max_tokens):
            token = sampler.sample(logits)
            sampler.accept(token)
            tokens.append(token)
            logits, state = model.eval(token, state)
    return tokens


def test_generation_equals_the_plain_loop(model) -> None:
    params = rwkv_cpp.SamplingParams(temperature=0.9, top_p=0.9, seed=7, max_tokens=40)
    stream = model.generate("To be", params=params)
    text = "".join(stream)
    assert stream.tokens == reference_generation(model, b"To be", params)
    assert stream.stop_reason == "max_tokens"
    assert text == bytes(stream.tokens).decode("utf-8", errors="replace")


def test_streamed_pieces_concatenate_to_the_whole_text(model) -> None:
    pieces = list(model.generate("Once", max_tokens=60, seed=3, temperature=1.0))
    assert "".join(pieces) == model.generate_text("Once", max_tokens=60, seed=3, temperature=1.0)


def test_greedy_is_reproducible_without_a_seed(model) -> None:
    a = model.generate_text("abc", max_tokens=30, temperature=0)
    b = model.generate_text("abc", max_tokens=30, temperature=0)
    assert a == b


def test_stop_strings_and_tokens(model) -> None:
    full = model.generate("x", max_tokens=80, seed=1, temperature=1.0)
    text = full.text()
    assert len(text) > 10
    stop = text[5:7]
    cut = model.generate("x", max_tokens=80, seed=1, temperature=1.0, stop=[stop])
    assert cut.text() == text[:text.find(stop)]
    assert cut.stop_reason == "stop"
    first = full.tokens[3]
    stopped = model.generate("x", max_tokens=80, seed=1, temperature=1.0, stop_tokens=[first])
    stopped.text()
    assert stopped.stop_reason == "stop_token" and first not in stopped.tokens


def test_state_continues_without_rereading(model) -> None:
    """Generating in two calls from the kept state equals one model run over everything."""
    first = model.generate("Hello", max_tokens=10, seed=2)
    first.text()
    second = model.generate(" and", state=first.state, max_tokens=10, seed=5)
    second.text()
    history = list(b"Hello") + first.tokens + list(b" and") + second.tokens
    _, expected_state = model.eval_sequence(history)
    np.testing.assert_array_equal(second.state, expected_state)


def test_saved_state_continues_exactly(model, tmp_path) -> None:
    live = model.generate("The", max_tokens=12, seed=4)
    live.text()
    model.save_state(tmp_path / "s.state", live.state)
    loaded = model.load_state(tmp_path / "s.state")
    np.testing.assert_array_equal(loaded, live.state)
    a = model.generate_text(" next", state=live.state, max_tokens=20, seed=9)
    b = model.generate_text(" next", state=loaded, max_tokens=20, seed=9)
    assert a == b


def test_state_of_another_model_is_refused(model, model_path, tmp_path) -> None:
    other = tmp_path / "other.bin"
    convert_tensors(RandomCheckpoint(n_embd=128, n_layer=2, n_vocab=256, head_size=64, seed=1), other, "FP32", progress=False)
    smaller = tmp_path / "smaller.bin"
    convert_tensors(RandomCheckpoint(n_embd=64, n_layer=1, n_vocab=256, head_size=64), smaller, "FP32", progress=False)
    model.save_state(tmp_path / "s.state", model.init_state())
    with rwkv_cpp.Model(other) as same_shape, rwkv_cpp.Model(smaller) as different_shape:
        with pytest.raises(rwkv_cpp.RwkvError, match="another model file"):
            same_shape.load_state(tmp_path / "s.state")
        with pytest.raises(rwkv_cpp.RwkvError, match="another model"):
            different_shape.load_state(tmp_path / "s.state")
    (tmp_path / "bad.state").write_bytes(b"RWKVSTAT" + b"\0" * 40)
    with pytest.raises(rwkv_cpp.RwkvError):
        model.load_state(tmp_path / "bad.state")
    corrupt = bytearray((tmp_path / "s.state").read_bytes())
    corrupt[60] ^= 0xFF
    (tmp_path / "corrupt.state").write_bytes(bytes(corrupt))
    with pytest.raises(rwkv_cpp.RwkvError, match="corrupt"):
        model.load_state(tmp_path / "corrupt.state")
    with pytest.raises(rwkv_cpp.RwkvError):
        model.save_state(tmp_path, model.init_state())  # a directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.state", "corrupt.state", "other.bin", "s.state", "smaller.bin"]


def test_sequence_logits_equal_token_by_token(model) -> None:
    tokens = list(b"perplexity is computed in sequence mode")
    all_logits, state = model.eval_sequence_logits(tokens)
    one_state = None
    for i, token in enumerate(tokens):
        logits, one_state = model.eval(token, one_state)
        np.testing.assert_array_equal(all_logits[i], logits)
    np.testing.assert_array_equal(state, one_state)


def test_perplexity_equals_token_by_token_nll(model) -> None:
    tokens = list(b"Some text to score, long enough to span several chunks. " * 3)
    result = perplexity(model, tokens, chunk_size=13)
    total, state = 0.0, None
    for i in range(len(tokens) - 1):
        logits, state = model.eval(tokens[i], state)
        shifted = logits.astype(np.float64) - logits.max()
        total -= shifted[tokens[i + 1]] - np.log(np.exp(shifted).sum())
    assert result.n_tokens == len(tokens) - 1
    assert result.mean_nll == pytest.approx(total / result.n_tokens, rel=1e-9)
