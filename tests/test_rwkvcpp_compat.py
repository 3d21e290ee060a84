"""rwkv.cpp's Python names (rwkv_cpp_shared_library, rwkv_cpp_model): scripts written for
rwkv.cpp run unchanged and give the same logits as rwkv_cpp.Model.

Compared against: rwkv_cpp.Model (same library), and the logits rwkv.cpp itself wrote
for the v4 FP32 file (fixtures/expected-logits-4v0-660K.bin), with rwkv.cpp's own test
criterion."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from rwkv_cpp import InvalidArgumentError, Model, _native
from rwkv_cpp.rwkv_cpp_model import RWKVModel
from rwkv_cpp.rwkv_cpp_shared_library import RWKVSharedLibrary, load_rwkv_shared_library
from test_python_api import FIXTURES, PROMPT3, PROMPT70, SEQUENCE_TOLERANCE, V4_FP32, V5_FP32, run_python

# rwkv.cpp's tests/test_tiny_rwkv.c accepts an FP32 file when |sum(logits - expected)|
# is within this bound (fixtures README).
RWKVCPP_FP32_SUM_BOUND = 0.001
# Per element: rwkv.cpp computes FP32 files in float32 as we do; only the summation
# order differs.
RWKVCPP_FP32_MAX_ABS = 1e-4


@pytest.fixture(scope="module")
def library():
    return load_rwkv_shared_library()


def rwkvcpp_style_loop(library, path, tokens, **eval_options):
    """The loop from rwkv.cpp's README / rwkv.cpp's own scripts."""
    model = RWKVModel(library, str(path))
    logits, state = None, None
    for token in tokens:
        logits, state = model.eval(token, state, state, logits, **eval_options)
    model.free()
    return logits, state


def model_logits(path, tokens):
    with Model(path) as model:
        return model.eval_sequence(tokens)


@pytest.mark.parametrize("path", [V4_FP32, V5_FP32], ids=lambda p: p.stem)
def test_numpy_script_matches_model(library, path):
    logits, state = rwkvcpp_style_loop(library, path, PROMPT70, use_numpy=True)
    assert isinstance(logits, np.ndarray) and isinstance(state, np.ndarray)
    expected_logits, expected_state = model_logits(path, PROMPT70)
    np.testing.assert_allclose(logits, expected_logits, atol=SEQUENCE_TOLERANCE, rtol=0)
    np.testing.assert_allclose(state, expected_state, atol=SEQUENCE_TOLERANCE, rtol=0)


def test_matches_rwkvcpp_expected_logits(library):
    expected = np.fromfile(FIXTURES / "expected-logits-4v0-660K.bin", dtype="<f4")
    logits, _ = rwkvcpp_style_loop(library, V4_FP32, PROMPT3, use_numpy=True)
    assert abs(float(np.sum(logits - expected))) <= RWKVCPP_FP32_SUM_BOUND
    np.testing.assert_allclose(logits, expected, atol=RWKVCPP_FP32_MAX_ABS, rtol=0)


def test_torch_script_matches_model(library):
    torch = pytest.importorskip("torch")
    logits, state = rwkvcpp_style_loop(library, V5_FP32, PROMPT70)  # use_numpy=False: torch
    assert isinstance(logits, torch.Tensor) and isinstance(state, torch.Tensor)
    assert logits.dtype == torch.float32 and logits.shape == (256,)
    numpy_logits, numpy_state = rwkvcpp_style_loop(library, V5_FP32, PROMPT70, use_numpy=True)
    np.testing.assert_array_equal(logits.numpy(), numpy_logits)
    np.testing.assert_array_equal(state.numpy(), numpy_state)


def test_torch_out_tensors_filled_in_place(library):
    torch = pytest.importorskip("torch")
    model = RWKVModel(library, str(V5_FP32))
    with Model(V5_FP32) as reference:
        state_out = torch.zeros(reference.state_len)
    logits_out = torch.zeros(256)
    logits, state = model.eval_sequence(PROMPT3, None, state_out, logits_out)
    assert logits is logits_out and state is state_out
    np.testing.assert_array_equal(logits_out.numpy(), model_logits(V5_FP32, PROMPT3)[0])
    with pytest.raises(ValueError, match="float32"):
        model.eval(34, None, torch.zeros(state_out.shape[0], dtype=torch.float64))
    with pytest.raises(ValueError):
        model.eval(34, None, torch.zeros(7))
    model.free()


def test_sequence_methods(library):
    model = RWKVModel(library, str(V5_FP32), thread_count=2)
    assert (model.n_vocab, model.n_embed, model.n_layer) == (256, 64, 12)
    assert (model.arch_version_major, model.arch_version_minor) == (5, 2)
    expected_logits, expected_state = model_logits(V5_FP32, PROMPT70)
    for logits, state in (
        model.eval_sequence(PROMPT70, None, use_numpy=True),
        model.eval_sequence_in_chunks(PROMPT70, None, use_numpy=True),
        model.eval_sequence_in_chunks(PROMPT70, None, chunk_size=5, use_numpy=True),
    ):
        np.testing.assert_allclose(logits, expected_logits, atol=SEQUENCE_TOLERANCE, rtol=0)
        np.testing.assert_allclose(state, expected_state, atol=SEQUENCE_TOLERANCE, rtol=0)
    model.free()


def test_errors_are_value_errors(library, tmp_path):
    with pytest.raises(ValueError, match="missing.bin"):
        RWKVModel(library, str(tmp_path / "missing.bin"))
    with pytest.raises(ValueError):
        RWKVModel(library, str(V4_FP32), thread_count=0)
    model = RWKVModel(library, str(V4_FP32), gpu_layers_count=0)
    with pytest.raises(ValueError, match="256"):
        model.eval(256, None, use_numpy=True)
    with pytest.raises(ValueError):
        model.eval(34, [0.0] * 10, use_numpy=True)
    model.free()
    with pytest.raises(ValueError, match="freed"):
        model.eval(34, None, use_numpy=True)
    with pytest.raises(ValueError, match="Already freed"):
        model.free()


def test_without_torch_needs_use_numpy(library, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    model = RWKVModel(library, str(V4_FP32))
    with pytest.raises(ImportError, match="use_numpy=True"):
        model.eval(34, None)
    logits, _ = model.eval(34, None, use_numpy=True)  # numpy works without torch
    assert isinstance(logits, np.ndarray)
    model.free()


def test_shared_library_functions(library, tmp_path):
    """The low-level calls with addresses, as rwkv.cpp's binding takes them."""
    ctx = library.rwkv_init_from_file(str(V5_FP32), 2, 0)
    n_state = library.rwkv_get_state_buffer_element_count(ctx)
    n_logits = library.rwkv_get_logits_buffer_element_count(ctx)
    assert (n_state, n_logits) == (library.rwkv_get_state_len(ctx), library.rwkv_get_logits_len(ctx))
    assert (library.rwkv_get_n_vocab(ctx), library.rwkv_get_n_embed(ctx), library.rwkv_get_n_layer(ctx)) == (256, 64, 12)
    assert (library.rwkv_get_arch_version_major(ctx), library.rwkv_get_arch_version_minor(ctx)) == (5, 2)
    state = np.empty(n_state, dtype=np.float32)
    logits = np.empty(n_logits, dtype=np.float32)
    library.rwkv_eval(ctx, PROMPT3[0], None, state.ctypes.data, logits.ctypes.data)
    library.rwkv_eval_sequence(ctx, PROMPT3[1:], state.ctypes.data, state.ctypes.data, logits.ctypes.data)
    np.testing.assert_allclose(logits, model_logits(V5_FP32, PROMPT3)[0], atol=SEQUENCE_TOLERANCE, rtol=0)
    library.rwkv_eval_sequence_in_chunks(ctx, PROMPT3, 2, None, state.ctypes.data, logits.ctypes.data)
    np.testing.assert_allclose(logits, model_logits(V5_FP32, PROMPT3)[0], atol=SEQUENCE_TOLERANCE, rtol=0)
    library.rwkv_init_state(ctx, state.ctypes.data)
    clone = library.rwkv_clone_context(ctx, 1)
    assert library.rwkv_gpu_offload_layers(clone, 0) is False
    library.rwkv_free(clone)
    with pytest.raises(ValueError, match="256"):
        library.rwkv_eval(ctx, 256, None, state.ctypes.data, logits.ctypes.data)
    # The library checks tokens itself too, for callers that skip the Python checks.
    assert not library.library.rwkv_eval(ctx.ptr, 256, library.nullptr, library.nullptr, library.nullptr)
    with pytest.raises(InvalidArgumentError, match="256"):
        _native.raise_last_error(library.library, ctx.ptr, "rwkv_eval")
    library.rwkv_free(ctx)
    with pytest.raises(ValueError):
        library.rwkv_init_from_file(str(tmp_path / "missing.bin"), 1, 0)
    assert isinstance(library.rwkv_get_system_info_string(), str)


def test_shared_library_quantize(library, tmp_path):
    out = tmp_path / "q5.bin"
    library.rwkv_quantize_model_file(str(V4_FP32), str(out), "Q5_1")
    assert RWKVModel(library, str(out)).n_layer == 4
    with pytest.raises(ValueError, match="Unknown format"):
        library.rwkv_quantize_model_file(str(V4_FP32), str(out), "Q3")


def test_explicit_library_path(library):
    same = RWKVSharedLibrary(library._native.path)
    assert same.library is library.library
    with pytest.raises(ValueError):
        RWKVSharedLibrary("/nonexistent/librwkv.so")


def test_unchanged_script_in_subprocess():
    """A script exactly as written for rwkv.cpp (imports, defaults, use_numpy=True)."""
    result = run_python(
        f"""
        from rwkv_cpp import rwkv_cpp_model, rwkv_cpp_shared_library
        library = rwkv_cpp_shared_library.load_rwkv_shared_library()
        print(library.rwkv_get_system_info_string() != "")
        model = rwkv_cpp_model.RWKVModel(library, {str(V4_FP32)!r})
        logits, state = None, None
        for token in {PROMPT3!r}:
            logits, state = model.eval(token, state, state, logits, use_numpy=True)
        print(int(logits.argmax()))
        model.free()
        """
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[0] == "True"
    assert int(lines[1]) == int(model_logits(V4_FP32, PROMPT3)[0].argmax())
