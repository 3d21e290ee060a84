"""Quantized models against independent implementations, at every token.

Weights: a quantized file holds other weights than its FP32 source, so we compare with
BlinkDL's reference (`rwkv` 0.8.32, cpu fp32) run on a checkpoint that holds exactly the
weights of our quantized file: each quantized matrix dequantized with `gguf` (ggml's
formats in numpy) and put back into the RWKV-LM checkpoint with the converter's
transforms undone, every other tensor taken from the original. What is left is the
engine's own error: activations quantized to 8-bit blocks for the integer dot products
(ggml does the same), against the reference's float32 matmuls.

Also: rwkv.cpp's own Q5_0/Q5_1 files against the reference outputs on their weights
(fixtures/oracle), and sequence mode against token-by-token evaluation.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch
from gguf.quants import dequantize as gguf_dequantize

import rwkv_cpp
from test_reference import relative_state_error, run_token_by_token
from reference import ARCHS
from reference.oracle import RUN_ORACLE, ReferenceJob, run_references
from rwkv_cpp.convert import convert_checkpoint
from rwkv_cpp.quantize import FORMATS, quantize_model_file
from test_quantize import FILE_TYPE, FIXTURES, GGUF_TYPE, read_model

REFERENCE_CACHE = Path(__file__).parent / ".cache" / "reference" / "quantized"
GGUF_BY_FILE_TYPE = {FILE_TYPE[name]: GGUF_TYPE[name] for name in FORMATS}

# Max |logit difference| from the reference run on the dequantized weights, over the 72
# tokens of the default reference cases (n_embd 64, 2 layers, logits of magnitude ~1-10).
# The weights are the same on both sides; the difference comes from the activations,
# which the engine quantizes to 8-bit blocks (with a second 8-bit level for the
# remainder) before every product with a quantized matrix, and from float summation
# order. Measured maxima over v4, v5.1, v5.2, v6, v7 (x86-64 AVX2 and AVX-512, 2 threads):
#   Q4_0 7.3e-4 (v5.1), Q4_1 6.9e-4 (v7), Q5_0 6.4e-4 (v5.1), Q5_1 9.4e-4 (v5.1),
#   Q8_0 1.17e-3 (v7); bounds about 1.5x above. rwkv.cpp is off by up to 0.17 on v4-v6
# Q5 files and 3.4e-3 on v7, so each bound is also below rwkv.cpp's error.
LOGITS_BOUND = {
    "Q4_0": 1.2e-3,
    "Q4_1": 1.2e-3,
    "Q5_0": 1e-3,
    "Q5_1": 1.5e-3,
    "Q8_0": 1.8e-3,
}
# The whole state after every token, relative to each state's magnitude (as in
# test_reference.py): measured at most 9.2e-5 (v7 Q4_1).
STATE_RELATIVE_BOUND = 2e-4
# --head Q8_0 makes the head one more quantized product (8-bit activations of the final
# layer norm's output): measured 6.7e-4 (v5.1, Q5_1 body).
HEAD_Q8_0_LOGITS_BOUND = 1e-3

# rwkv.cpp's Q5_0/Q5_1 fixture files (its tiny trained models, logits up to ~20) against
# the reference on the same weights, 70 tokens: measured 1.1e-3 (5v2 Q5_1), 6.9e-4
# (5v2 Q5_0), 1.1e-4 (4v0). rwkv.cpp itself is 0.17 off on these files.
FIXTURE_LOGITS_BOUND = 2e-3
FIXTURE_STATE_RELATIVE_BOUND = 2e-4  # final state; measured 5.7e-5
# What --head Q8_0 adds to the max logit error of a Q5_1 file against the reference on the
# FP32 weights (weights and activations together), on rwkv.cpp's trained tiny models over
# 70 tokens: measured 0.097 -> 0.116 (4v0), 0.855 -> 0.858 (5v2).
HEAD_Q8_0_EXTRA_ERROR_BOUND = 0.04

# Sequence mode (many tokens at once) against token by token on a quantized file: the
# same 8-bit activations and integer sums, so only float accumulation order may differ.
SEQUENCE_TOLERANCE = 1e-5


class QuantizedCase(NamedTuple):
    """A quantized file of one reference case and the reference's run on its weights."""

    arch: str
    format: str  # "Q5_1", or "Q5_1+head-Q8_0"
    path: Path
    tokens: np.ndarray
    logits: np.ndarray  # the reference on the dequantized weights, (T, n_vocab)
    states: np.ndarray  # (T, state_len)
    logits_fp32: np.ndarray  # the reference on the original FP32 weights


VARIANTS = [(name, None) for name in FORMATS] + [("Q5_1", "Q8_0")]


def variant_name(format_name: str, head_format: str | None) -> str:
    return format_name if head_format is None else f"{format_name}+head-{head_format}"


# ---- from a quantized file back to an RWKV-LM checkpoint ----

def dequantized_tensors(path: Path) -> dict[str, np.ndarray]:
    """The quantized tensors of a .bin file as float32, in the file's (converted) shapes."""
    tensors = {}
    for tensor in read_model(path).tensors:
        if tensor.data_type in GGUF_BY_FILE_TYPE:
            rows = np.frombuffer(tensor.data, np.uint8).reshape(tensor.shape[0], -1)
            tensors[tensor.name] = gguf_dequantize(rows, GGUF_BY_FILE_TYPE[tensor.data_type]).reshape(tensor.shape)
    return tensors


def undo_converter_transform(name: str, matrix: np.ndarray, arch: str) -> np.ndarray:
    """The checkpoint's layout of a converted 2-D matrix: rwkv_cpp.convert transposes only
    RWKV-6's time_maa_w1 / time_decay_w1 / time_decay_w2 and RWKV-7's low-rank w1 ... g2;
    the round trip in `dequantized_checkpoint` checks this."""
    if arch == "7" and any(name.endswith(f".{p}{i}") for p in "wavg" for i in (1, 2)):
        return matrix.T
    if arch == "6" and (".time_maa_w1" in name or ".time_decay_w" in name):
        return matrix.T
    return matrix


def dequantized_checkpoint(pth_path: Path, quantized: Path, arch: str, out: Path) -> dict[str, torch.Tensor]:
    """Writes `out`: the checkpoint at pth_path with each tensor that `quantized` holds
    quantized replaced by its dequantized values. Checks that converting `out` gives
    back exactly those values."""
    state_dict = torch.load(pth_path, map_location="cpu")
    dequantized = dequantized_tensors(quantized)
    for name, matrix in dequantized.items():
        restored = np.ascontiguousarray(undo_converter_transform(name, matrix, arch))
        assert tuple(state_dict[name].shape) == restored.shape, name
        state_dict[name] = torch.from_numpy(restored)
    torch.save(state_dict, out)
    round_trip = out.with_suffix(".round-trip.bin")
    convert_checkpoint(out, round_trip, "FP32", progress=False)
    for tensor in read_model(round_trip).tensors:
        if tensor.name in dequantized:
            values = np.frombuffer(tensor.data, "<f4").reshape(tensor.shape)
            assert np.array_equal(values, dequantized[tensor.name]), f"{tensor.name}: transform not undone"
    round_trip.unlink()
    return state_dict


def reference_cache_key(state_dict: dict[str, torch.Tensor], tokens: np.ndarray, arch: str) -> str:
    """Everything the reference's output depends on: weights, tokens, runner, versions."""
    from importlib.metadata import version

    digest = hashlib.sha256(f"{arch} {torch.__version__} {version('rwkv')}".encode())
    digest.update(Path(RUN_ORACLE).read_bytes())
    digest.update(np.asarray(tokens, np.int64).tobytes())
    for name in sorted(state_dict):
        tensor = state_dict[name].contiguous()
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy().tobytes())
    return f"v{arch}-{digest.hexdigest()[:20]}"


@pytest.fixture(scope="module")
def quantized_cases(reference_cases, tmp_path_factory) -> dict[tuple[str, str], QuantizedCase]:
    """{(arch, variant): QuantizedCase}; the reference runs once per new weight set (cached)."""
    work = tmp_path_factory.mktemp("quantized")
    pending = []  # (key, cache file, arch, variant, path, pth, tokens, fp32 logits)
    for arch in ARCHS:
        case = reference_cases[arch]
        fp32 = work / f"v{arch}-FP32.bin"
        convert_checkpoint(case.pth_path, fp32, "FP32", progress=False)
        for format_name, head_format in VARIANTS:
            variant = variant_name(format_name, head_format)
            path = work / f"v{arch}-{variant}.bin"
            quantize_model_file(fp32, path, format_name, head_format=head_format, progress=False)
            pth = work / f"v{arch}-{variant}.pth"
            state_dict = dequantized_checkpoint(case.pth_path, path, arch, pth)
            cache_file = REFERENCE_CACHE / f"{reference_cache_key(state_dict, case.tokens, arch)}.npz"
            pending.append((cache_file, arch, variant, path, pth, case.tokens, case.logits))
    missing = [item for item in pending if not item[0].is_file()]
    if missing:
        results = run_references([ReferenceJob(pth, tuple(int(t) for t in tokens), arch)
                                  for _, arch, _, _, pth, tokens, _ in missing])
        REFERENCE_CACHE.mkdir(parents=True, exist_ok=True)
        for (cache_file, *_), result in zip(missing, results):
            temp = cache_file.with_suffix(f".tmp-{os.getpid()}.npz")
            np.savez(temp, logits=result["logits"], states=result["states"])
            os.replace(temp, cache_file)
    cases = {}
    for cache_file, arch, variant, path, _, tokens, logits_fp32 in pending:
        with np.load(cache_file) as reference:
            cases[arch, variant] = QuantizedCase(arch, variant, path, tokens, reference["logits"],
                                                 reference["states"], logits_fp32)
    return cases


# ---- the engine against the reference on the same (dequantized) weights ----

@pytest.mark.parametrize("format_name", FORMATS)
@pytest.mark.parametrize("arch", ARCHS, ids=[f"v{arch}" for arch in ARCHS])
def test_matches_reference_on_dequantized_weights(quantized_cases, arch, format_name):
    case = quantized_cases[arch, format_name]
    with rwkv_cpp.Model(case.path, thread_count=2) as model:
        logits, states = run_token_by_token(model, case.tokens)
    error = np.abs(logits - case.logits).max()
    total = np.abs(logits - case.logits_fp32).max()
    state_error = relative_state_error(states, case.states)
    print(f"v{arch} {format_name}: max logit diff {error:.2e} vs the reference on the same weights "
          f"(state {state_error:.1e} relative); {total:.2e} vs the FP32 model")
    assert error <= LOGITS_BOUND[format_name]
    assert state_error <= STATE_RELATIVE_BOUND


@pytest.mark.parametrize("arch", ARCHS, ids=[f"v{arch}" for arch in ARCHS])
def test_quantized_head(quantized_cases, arch):
    """--head Q8_0: head.weight quantized too; smaller file, the error it adds stated."""
    plain, with_head = quantized_cases[arch, "Q5_1"], quantized_cases[arch, "Q5_1+head-Q8_0"]
    with rwkv_cpp.Model(with_head.path, thread_count=2) as model:
        logits, _ = run_token_by_token(model, with_head.tokens)
    error = np.abs(logits - with_head.logits).max()
    # What quantizing the head does to the model itself: the reference on each file's weights
    # against the reference on the FP32 weights.
    weights_plain = np.abs(plain.logits - plain.logits_fp32).max()
    weights_head = np.abs(with_head.logits - with_head.logits_fp32).max()
    size, head_size = plain.path.stat().st_size, with_head.path.stat().st_size
    print(f"v{arch} Q5_1 --head Q8_0: {size} -> {head_size} bytes ({head_size / size:.1%}); engine vs the "
          f"reference on the same weights {error:.2e}; the weights vs FP32: {weights_plain:.3f} (head F32) -> "
          f"{weights_head:.3f} (head Q8_0)")
    assert head_size < size
    assert error <= HEAD_Q8_0_LOGITS_BOUND


@pytest.mark.parametrize("format_name", FORMATS)
@pytest.mark.parametrize("arch", ARCHS, ids=[f"v{arch}" for arch in ARCHS])
def test_sequence_mode_equals_token_by_token(quantized_cases, arch, format_name):
    case = quantized_cases[arch, format_name]
    tokens = case.tokens
    with rwkv_cpp.Model(case.path, thread_count=2) as model:
        one_logits, one_states = run_token_by_token(model, tokens)
        seq_logits, seq_state = model.eval_sequence(tokens)
        chunk_logits, chunk_state = model.eval_sequence(tokens, chunk_size=5)
        _, half_state = model.eval_sequence(tokens[:40])
        rest_logits, rest_state = model.eval_sequence(tokens[40:], half_state)
    for logits, state in ((seq_logits, seq_state), (chunk_logits, chunk_state), (rest_logits, rest_state)):
        np.testing.assert_allclose(logits, one_logits[-1], rtol=0, atol=SEQUENCE_TOLERANCE)
        np.testing.assert_allclose(state, one_states[-1], rtol=SEQUENCE_TOLERANCE, atol=SEQUENCE_TOLERANCE)


# ---- rwkv.cpp's quantized files ----

def oracle_file(model_id: str, format_name: str) -> Path:
    """The reference's outputs on the weights of rwkv.cpp's file (prompt70)."""
    semantics = "oracle-eps64e-5" if model_id.startswith("5v2") else "oracle"
    return FIXTURES / "oracle" / f"{model_id}-{format_name}.{semantics}.prompt70.npz"


@pytest.mark.parametrize("model_id", ["4v0-660K", "5v2-730K"])
@pytest.mark.parametrize("format_name", ["Q5_0", "Q5_1"])
def test_rwkvcpp_quantized_files_match_reference(model_id, format_name):
    path = FIXTURES / f"tiny-rwkv-{model_id}-{format_name}.bin"
    oracle_path = oracle_file(model_id, format_name)
    if not path.is_file() or not oracle_path.is_file():
        pytest.skip(f"rwkv.cpp fixture {path.name} or {oracle_path.name} not found")
    with np.load(oracle_path) as oracle:
        tokens, reference_logits, reference_state = oracle["tokens"], oracle["logits"], oracle["state_flat"]
    with rwkv_cpp.Model(path, thread_count=2) as model:
        logits, states = run_token_by_token(model, tokens)
    error = np.abs(logits - reference_logits).max()
    state_error = relative_state_error(states[-1:], reference_state[np.newaxis])
    print(f"rwkv.cpp {model_id} {format_name}: max logit diff {error:.2e} over {len(tokens)} tokens "
          f"(final state {state_error:.1e} relative; rwkv.cpp itself: up to 0.17)")
    assert error <= FIXTURE_LOGITS_BOUND
    assert state_error <= FIXTURE_STATE_RELATIVE_BOUND


@pytest.mark.parametrize("model_id", ["4v0-660K", "5v2-730K"])
def test_quantized_head_on_rwkvcpp_models(tmp_path, model_id):
    """Size and accuracy of --head Q8_0 on trained weights (the numbers in the README)."""
    source = FIXTURES / f"tiny-rwkv-{model_id}-FP32.bin"
    oracle_path = oracle_file(model_id, "FP32")
    if not source.is_file() or not oracle_path.is_file():
        pytest.skip(f"rwkv.cpp fixture {source.name} or {oracle_path.name} not found")
    with np.load(oracle_path) as oracle:
        tokens, reference_logits = oracle["tokens"], oracle["logits"]
    results = {}
    for head_format in (None, "Q8_0"):
        path = tmp_path / f"head-{head_format}.bin"
        summary = quantize_model_file(source, path, "Q5_1", head_format=head_format, progress=False)
        with rwkv_cpp.Model(path, thread_count=2) as model:
            logits, _ = run_token_by_token(model, tokens)
        error = np.abs(logits - reference_logits)
        results[head_format] = (summary["n_bytes_out"], error.max(), error.mean())
    (size, plain, plain_mean), (head_size, head, head_mean) = results[None], results["Q8_0"]
    header = read_model(source)
    saved = header.n_vocab * header.n_embed * 4 - header.n_vocab * header.n_embed // 32 * 34
    print(f"rwkv.cpp {model_id} Q5_1: {size} bytes, max logit error {plain:.3f} (mean {plain_mean:.4f}); "
          f"--head Q8_0: {head_size} bytes ({head_size / size - 1:+.1%}), {head:.3f} (mean {head_mean:.4f})")
    assert size - head_size == saved
    assert head - plain <= HEAD_Q8_0_EXTRA_ERROR_BOUND
