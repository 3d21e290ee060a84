"""GPU offload (the CUDA backend) through the public API: for every architecture (v4, v5.1,
v5.2, v6, v7) and every type (FP32, FP16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), with every layer and
the head on the GPU, every layer without the head, or only the first layer (the rest on the CPU),
one token at a time and in sequences, the logits and the whole state after every token against
the CPU engine on the same file; FP32 also against BlinkDL's reference implementation.

The whole module skips, saying why, when offloading is not possible: a library built without
CUDA (build one with CMAKE_ARGS="-DRWKV_CUDA=ON" pip install .), no NVIDIA driver or no usable
device. It asks the library itself: a tiny model loaded with one GPU layer, and how many layers
the library reports it took.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

import rwkv_cpp
from model_files import v4_tensors, write_model
from test_reference import FP32_LOGITS_ALL, FP32_LOGITS_FIRST_16, relative_state_error, run_token_by_token

TYPES = ("FP32", "FP16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0")

# GPU against CPU on the same float file: both keep activations in float32 and differ only in
# summation order (DESIGN.md: a few 1e-4 over 64+ tokens is normal, 1e-3 is a bug).
FLOAT_LOGITS_BOUND = 5e-4
# Quantized files: the GPU dequantizes weights and multiplies with float32 activations, the CPU
# rounds activations to two-level 8-bit blocks for integer dot products. The CPU's own error
# against exact products on the same weights is at most 7.9e-4 (test_quantized_models.py); this
# adds the float32 summation-order allowance above.
QUANTIZED_LOGITS_BOUND = 1.5e-3
# The whole state, relative to its magnitude (as test_reference.py measures it).
STATE_RELATIVE_BOUND = 5e-4


def _offload_unavailable() -> Optional[str]:
    """None when the library offloads layers to a GPU; otherwise why not, in its own words."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = write_model(Path(tmp) / "tiny.bin", 16, 32, 1, v4_tensors(16, 32, 1, rng=np.random.default_rng(0)))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                with rwkv_cpp.Model(path, thread_count=1, gpu_layer_count=1) as model:
                    if model.gpu_layer_count > 0:
                        return None
            notes = [str(w.message) for w in caught]
            return notes[0] if notes else "the library reports 0 GPU layers"
    except Exception as exc:  # no library, or it cannot load a model: the other tests say so
        return f"cannot ask the library ({type(exc).__name__}: {exc})"


_UNAVAILABLE = _offload_unavailable()
pytestmark = pytest.mark.skipif(_UNAVAILABLE is not None, reason=f"no GPU offload: {_UNAVAILABLE}")


@pytest.fixture(scope="module")
def files(reference_case, tmp_path_factory) -> dict[str, Path]:
    """The reference case's checkpoint converted to FP32 and FP16, and quantized to each type."""
    from rwkv_cpp.convert import convert_checkpoint
    from rwkv_cpp.quantize import quantize_model_file

    out = tmp_path_factory.mktemp(f"gpu-v{reference_case.arch}")
    paths = {}
    for data_type in ("FP32", "FP16"):
        paths[data_type] = out / f"model-{data_type}.bin"
        convert_checkpoint(reference_case.pth_path, paths[data_type], data_type, progress=False)
    for data_type in TYPES[2:]:
        paths[data_type] = out / f"model-{data_type}.bin"
        quantize_model_file(paths["FP32"], paths[data_type], data_type, progress=False)
    return paths


OFFLOADS = ("layers+head", "layers", "first-layer")


def gpu_layer_request(offload: str, n_layer: int) -> int:
    """rwkv.cpp's convention: N layers, and the head too when N > n_layer."""
    return {"layers+head": n_layer + 1, "layers": n_layer, "first-layer": 1}[offload]


def logits_bound(data_type: str) -> float:
    return FLOAT_LOGITS_BOUND if data_type in ("FP32", "FP16") else QUANTIZED_LOGITS_BOUND


def open_pair(path: Path, offload: str) -> tuple[rwkv_cpp.Model, rwkv_cpp.Model]:
    cpu = rwkv_cpp.Model(path, thread_count=2)
    requested = gpu_layer_request(offload, cpu.n_layer)
    gpu = rwkv_cpp.Model(path, thread_count=2, gpu_layer_count=requested)
    assert gpu.gpu_layer_count == min(requested, cpu.n_layer + 1)
    return cpu, gpu


@pytest.mark.parametrize("offload", OFFLOADS)
@pytest.mark.parametrize("data_type", TYPES)
def test_one_token_at_a_time_matches_cpu(reference_case, files, data_type, offload) -> None:
    cpu, gpu = open_pair(files[data_type], offload)
    with cpu, gpu:
        cpu_logits, cpu_states = run_token_by_token(cpu, reference_case.tokens)
        gpu_logits, gpu_states = run_token_by_token(gpu, reference_case.tokens)
    diff = float(np.abs(gpu_logits - cpu_logits).max())
    state_error = relative_state_error(gpu_states, cpu_states)
    print(f"v{reference_case.arch} {data_type} {offload}: logits {diff:.2e}, state {state_error:.2e}")
    assert diff <= logits_bound(data_type)
    assert state_error <= STATE_RELATIVE_BOUND


@pytest.mark.parametrize("offload", OFFLOADS)
@pytest.mark.parametrize("data_type", TYPES)
def test_sequences_match_cpu(reference_case, files, data_type, offload) -> None:
    tokens = reference_case.tokens
    cpu, gpu = open_pair(files[data_type], offload)
    with cpu, gpu:
        runs = []
        for model in (cpu, gpu):
            whole = model.eval_sequence(tokens)
            chunked = model.eval_sequence(tokens, chunk_size=5)
            _, half_state = model.eval_sequence(tokens[:40])
            rest = model.eval_sequence(tokens[40:], half_state)
            runs.append((whole, chunked, rest))
    for (cpu_logits, cpu_state), (gpu_logits, gpu_state) in zip(runs[0], runs[1]):
        assert float(np.abs(gpu_logits - cpu_logits).max()) <= logits_bound(data_type)
        assert relative_state_error(gpu_state[None], cpu_state[None]) <= STATE_RELATIVE_BOUND


@pytest.mark.parametrize("offload", OFFLOADS)
def test_fp32_matches_reference(reference_case, files, offload) -> None:
    """The same bounds as the CPU engine against BlinkDL's implementation (test_reference.py)."""
    with rwkv_cpp.Model(files["FP32"], thread_count=1) as cpu:
        n_layer = cpu.n_layer
    with rwkv_cpp.Model(files["FP32"], thread_count=2, gpu_layer_count=gpu_layer_request(offload, n_layer)) as gpu:
        assert gpu.gpu_layer_count > 0
        logits, states = run_token_by_token(gpu, reference_case.tokens)
    diff = np.abs(logits - reference_case.logits)
    assert diff[:16].max() <= FP32_LOGITS_FIRST_16
    assert diff.max() <= FP32_LOGITS_ALL
    assert relative_state_error(states, reference_case.states) <= 1e-3


def test_clones_share_the_gpu_weights(reference_case, files) -> None:
    """A clone evaluates on the GPU too (same weights, its own workspace), from any thread."""
    tokens = reference_case.tokens[:16]
    with rwkv_cpp.Model(files["FP16"], thread_count=2, gpu_layer_count=100) as gpu:
        want, _ = gpu.eval_sequence(tokens)
        with gpu.clone() as clone:
            assert clone.gpu_layer_count == gpu.gpu_layer_count
            got, _ = clone.eval_sequence(tokens)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("offload", OFFLOADS)
def test_all_logits_match_cpu(reference_case, files, offload) -> None:
    """Every token's logits: with the head offloaded too, the GPU hands back the activations and
    the head runs on the CPU for each token (docs/cuda.md)."""
    tokens = reference_case.tokens[:40]
    cpu, gpu = open_pair(files["FP16"], offload)
    with cpu, gpu:
        (cpu_logits, cpu_state), (gpu_logits, gpu_state) = (m.eval_sequence_logits(tokens) for m in (cpu, gpu))
    assert float(np.abs(gpu_logits - cpu_logits).max()) <= FLOAT_LOGITS_BOUND
    assert relative_state_error(gpu_state[None], cpu_state[None]) <= STATE_RELATIVE_BOUND


def test_gpu_info_describes_the_device() -> None:
    """rwkv_get_gpu_info, as `rwkv-cpp bench --gpu-layers` reads it."""
    from rwkv_cpp.bench import gpu_info

    info = gpu_info()
    assert info is not None and info["name"]
    assert info["memory_bandwidth_gbs"] > 0 and info["fp32_tflops"] > 0
