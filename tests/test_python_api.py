"""The Python surface (rwkv_cpp.Model): shapes, eval paths agreeing with each other, out=
buffers, every bad input raising the right exception with a useful message, library
discovery, and two clones evaluating in parallel threads.

Compared against: the library itself (eval vs eval_sequence vs chunks, serial vs
threaded) and, once, the reference implementation's logits for the v4 FP32 file
(oracle npz in the fixtures)."""

from __future__ import annotations

import array
import os
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import rwkv_cpp
from rwkv_cpp import (
    InvalidArgumentError,
    InvalidTokenError,
    LibraryNotFoundError,
    LibraryVersionError,
    Model,
    ModelFileError,
    ModelFormatError,
    RwkvError,
    StateSizeError,
)

REPO = Path(__file__).resolve().parent.parent


def fixture_dir() -> Path:
    """rwkv.cpp's tiny models: $RWKV_CPP_FIXTURES, tests/fixtures/rwkvcpp, or the shared copy."""
    for candidate in (
        os.environ.get("RWKV_CPP_FIXTURES"),
        REPO / "tests" / "fixtures" / "rwkvcpp",
        REPO.parent / "shared" / "fixtures" / "rwkvcpp",
    ):
        if candidate and (Path(candidate) / "tiny-rwkv-4v0-660K-FP32.bin").is_file():
            return Path(candidate)
    pytest.skip("rwkv.cpp tiny model fixtures not found (set RWKV_CPP_FIXTURES)", allow_module_level=True)


FIXTURES = fixture_dir()
V4_FP32 = FIXTURES / "tiny-rwkv-4v0-660K-FP32.bin"
V5_FP32 = FIXTURES / "tiny-rwkv-5v2-730K-FP32.bin"
ALL_MODELS = sorted(FIXTURES.glob("tiny-rwkv-*.bin"))
PROMPT3 = [34, 105, 110]
PROMPT70 = list(b"This is a port of [BlinkDL/RWKV-LM](https://github.com/BlinkDL/RWKV-LM")

# Token-by-token vs whole-sequence evaluation may sum in another order; over 70 tokens
# FP32 differences of a few 1e-5 are normal (DESIGN.md: 1e-3 would be a bug).
SEQUENCE_TOLERANCE = 2e-4
# An FP32 engine computing from the stored weights matches the reference to ~1e-5
# (fixtures README); this is only a "the binding passes the right buffers" check.
ORACLE_TOLERANCE = 1e-4

# (file stem, arch, n_layer, n_embed, state_len) from the fixtures README:
# v4 state 5 x n_embd per layer; v5 n_embd x (2 + head_size 8) per layer.
SHAPES = {
    "4v0-660K": ("4", 4, 128, 4 * 5 * 128),
    "5v2-730K": ("5.2", 12, 64, 12 * 64 * (2 + 8)),
}


@pytest.fixture(scope="module")
def v5():
    with Model(V5_FP32, thread_count=2) as model:
        yield model


@pytest.fixture(scope="module")
def v4():
    with Model(V4_FP32, thread_count=2) as model:
        yield model


def run_tokens(model, tokens, state=None):
    """Token-by-token evaluation: the logits after each token and the final state."""
    all_logits = []
    for token in tokens:
        logits, state = model.eval(token, state)
        all_logits.append(logits)
    return np.stack(all_logits), state


# ---- loading and properties ----


@pytest.mark.parametrize("path", ALL_MODELS, ids=lambda p: p.stem)
def test_properties(path):
    arch, n_layer, n_embed, state_len = next(v for k, v in SHAPES.items() if k in path.name)
    with Model(path) as model:
        assert (model.arch_version, model.n_layer, model.n_embed) == (arch, n_layer, n_embed)
        assert model.n_vocab == 256 and model.logits_len == 256
        assert model.state_len == state_len
        assert model.gpu_layer_count == 0
        state = model.init_state()
        assert state.dtype == np.float32 and state.shape == (state_len,)
        logits, new_state = model.eval(34)
        assert logits.dtype == np.float32 and logits.shape == (256,)
        assert new_state.shape == (state_len,) and np.isfinite(logits).all()
        assert str(path) in repr(model) and f"v{arch}" in repr(model)


def test_path_like_and_str(v4):
    with Model(str(V4_FP32)) as model:
        assert model.path == str(V4_FP32)


def test_v4_matches_reference(v4):
    """The reference implementation's logits after each token (fixtures/oracle)."""
    oracle = np.load(FIXTURES / "oracle" / "4v0-660K-FP32.oracle.prompt3.npz")
    logits, state = run_tokens(v4, oracle["tokens"].tolist())
    np.testing.assert_allclose(logits, oracle["logits"], atol=ORACLE_TOLERANCE, rtol=0)
    np.testing.assert_allclose(state, oracle["state_flat"], atol=ORACLE_TOLERANCE, rtol=0)
    np.testing.assert_array_equal(v4.init_state(), oracle["state_init_flat"])


# ---- evaluation paths agree ----


@pytest.mark.parametrize("name", ["v4", "v5"])
def test_eval_sequence_and_chunks_match_eval(name, request):
    model = request.getfixturevalue(name)
    step_logits, step_state = run_tokens(model, PROMPT70)
    seq_logits, seq_state = model.eval_sequence(PROMPT70)
    np.testing.assert_allclose(seq_logits, step_logits[-1], atol=SEQUENCE_TOLERANCE, rtol=0)
    np.testing.assert_allclose(seq_state, step_state, atol=SEQUENCE_TOLERANCE, rtol=0)
    for chunk_size in (1, 2, 7, 16, 70, 1000):
        logits, state = model.eval_sequence(PROMPT70, chunk_size=chunk_size)
        np.testing.assert_allclose(logits, step_logits[-1], atol=SEQUENCE_TOLERANCE, rtol=0, err_msg=str(chunk_size))
        np.testing.assert_allclose(state, step_state, atol=SEQUENCE_TOLERANCE, rtol=0, err_msg=str(chunk_size))


def test_state_none_is_init_state(v5):
    fresh = v5.init_state()
    a_logits, a_state = v5.eval(34, None)
    b_logits, b_state = v5.eval(34, fresh)
    np.testing.assert_array_equal(a_logits, b_logits)
    np.testing.assert_array_equal(a_state, b_state)
    out = np.full(v5.state_len, 7, dtype=np.float32)
    assert v5.init_state(out=out) is out
    np.testing.assert_array_equal(out, fresh)


def test_sequence_continues_from_state(v5):
    _, state = v5.eval_sequence(PROMPT70[:30])
    logits, state = v5.eval_sequence(PROMPT70[30:], state)
    all_logits, all_state = v5.eval_sequence(PROMPT70)
    np.testing.assert_allclose(logits, all_logits, atol=SEQUENCE_TOLERANCE, rtol=0)
    np.testing.assert_allclose(state, all_state, atol=SEQUENCE_TOLERANCE, rtol=0)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint32, np.uint16, np.uint8])
def test_token_arrays_of_any_integer_dtype(v5, dtype):
    expected, _ = v5.eval_sequence(PROMPT3)
    logits, _ = v5.eval_sequence(np.array(PROMPT3, dtype=dtype))
    np.testing.assert_array_equal(logits, expected)
    logits, _ = v5.eval_sequence(tuple(np.int64(t) for t in PROMPT3))
    np.testing.assert_array_equal(logits, expected)
    logits, _ = v5.eval(np.uint32(34))
    np.testing.assert_array_equal(logits, v5.eval(34)[0])


# ---- buffers: no copies, no surprises ----


def test_out_buffers_are_filled_and_returned(v5):
    expected_logits, expected_state = v5.eval_sequence(PROMPT3)
    out_logits = np.empty(v5.logits_len, dtype=np.float32)
    out_state = np.empty(v5.state_len, dtype=np.float32)
    logits, state = v5.eval_sequence(PROMPT3, out_logits=out_logits, out_state=out_state)
    assert logits is out_logits and state is out_state
    np.testing.assert_array_equal(out_logits, expected_logits)
    np.testing.assert_array_equal(out_state, expected_state)
    logits, state = v5.eval(34, out_logits=out_logits, out_state=out_state)
    assert logits is out_logits and state is out_state


def test_out_buffers_reused_without_allocation(v5):
    out_logits = np.empty(v5.logits_len, dtype=np.float32)
    state = v5.init_state()
    tokens = np.array(PROMPT3, dtype=np.uint32)
    v5.eval(34, state, out_logits=out_logits, out_state=state)  # warm up
    tracemalloc.start()
    try:
        for token in PROMPT70:
            v5.eval(token, state, out_logits=out_logits, out_state=state)
            v5.eval_sequence(tokens, state, out_logits=out_logits, out_state=state)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A fresh state is 30 KiB; the calls may allocate only small Python objects.
    assert peak < v5.state_len * 4 // 4, peak


def test_input_state_not_modified(v5):
    _, state = v5.eval_sequence(PROMPT3)
    before = state.copy()
    _, new_state = v5.eval(110, state)
    np.testing.assert_array_equal(state, before)
    assert not np.array_equal(new_state, state)
    v5.eval_sequence(PROMPT3, state, chunk_size=2)
    np.testing.assert_array_equal(state, before)


def test_in_place_state_update(v5):
    _, state = v5.eval_sequence(PROMPT3)
    expected_logits, expected_state = v5.eval(110, state)
    logits, same = v5.eval(110, state, out_state=state)
    assert same is state
    np.testing.assert_array_equal(logits, expected_logits)
    np.testing.assert_array_equal(state, expected_state)


def test_accepts_other_float32_buffers(v5):
    fresh = v5.init_state()
    state = array.array("f", fresh.tobytes())
    logits, out = v5.eval(34, state)
    np.testing.assert_array_equal(logits, v5.eval(34)[0])
    out_state = array.array("f", bytes(4 * v5.state_len))
    _, returned = v5.eval(34, None, out_state=out_state)
    assert returned is out_state
    np.testing.assert_array_equal(np.frombuffer(out_state, dtype=np.float32), out)


# ---- bad input: the right exception, a message that says what to do ----


def bad_state_cases(n):
    base = np.zeros(2 * n, dtype=np.float32)
    readonly = np.zeros(n, dtype=np.float32)
    readonly.flags.writeable = False
    return [
        ("list of floats", [0.0] * n, TypeError, "numpy.asarray"),
        ("float64", np.zeros(n, dtype=np.float64), TypeError, "float32"),
        ("float16", np.zeros(n, dtype=np.float16), TypeError, "float32"),
        ("int", 3, TypeError, "float32"),
        ("too short", np.zeros(n - 1, dtype=np.float32), StateSizeError, str(n)),
        ("too long", np.zeros(n + 1, dtype=np.float32), StateSizeError, str(n)),
        ("2-D", np.zeros((1, n), dtype=np.float32), StateSizeError, "1-D"),
        ("non-contiguous", base[::2], InvalidArgumentError, "contiguous"),
    ], readonly


@pytest.mark.parametrize("case", range(8))
def test_bad_state_inputs(v5, case):
    cases, _ = bad_state_cases(v5.state_len)
    label, value, error, needle = cases[case]
    with pytest.raises(error, match=needle):
        v5.eval(34, value)
    with pytest.raises(error, match=needle):
        v5.eval_sequence(PROMPT3, value)
    with pytest.raises(error, match=needle):
        v5.eval(34, None, out_state=value)


def test_bad_logits_buffer(v5):
    with pytest.raises(StateSizeError, match="out_logits.*256"):
        v5.eval(34, out_logits=np.zeros(255, dtype=np.float32))
    with pytest.raises(TypeError, match="out_logits.*float32"):
        v5.eval(34, out_logits=np.zeros(256))


def test_read_only_output_rejected(v5):
    _, readonly = bad_state_cases(v5.state_len)
    v5.eval(34, readonly)  # reading from it is fine
    with pytest.raises(InvalidArgumentError, match="read-only"):
        v5.eval(34, None, out_state=readonly)


def test_overlapping_buffers_rejected(v5):
    n = v5.state_len
    big = np.zeros(n + 8, dtype=np.float32)
    with pytest.raises(InvalidArgumentError, match="overlap"):
        v5.eval(34, big[:n], out_state=big[8:])
    with pytest.raises(InvalidArgumentError, match="overlap"):
        v5.eval(34, None, out_state=big[:n], out_logits=big[8:8 + 256])


@pytest.mark.parametrize("token", [256, -1, 2**32, 10**30])
def test_bad_token(v5, token):
    with pytest.raises(InvalidTokenError, match=f"{token}.*256"):
        v5.eval(token)
    with pytest.raises(InvalidTokenError, match=f"{token} at index 1"):
        v5.eval_sequence([34, token, 110])


def test_bad_token_in_array(v5):
    with pytest.raises(InvalidTokenError, match="300 at index 2"):
        v5.eval_sequence(np.array([1, 2, 300], dtype=np.int64))
    with pytest.raises(InvalidTokenError, match="-5 at index 0"):
        v5.eval_sequence(np.array([-5], dtype=np.int8))


@pytest.mark.parametrize("token", [1.0, "a", None, True])
def test_token_type(v5, token):
    with pytest.raises(TypeError, match="token must be an int"):
        v5.eval(token)


@pytest.mark.parametrize("tokens", [[1.5, 2.0], "abc", b"abc", [[1, 2]], np.zeros(3), [True, False], [1, None]])
def test_tokens_type(v5, tokens):
    with pytest.raises(TypeError, match="tokens must be"):
        v5.eval_sequence(tokens)


def test_empty_tokens_and_bad_chunk(v5):
    with pytest.raises(InvalidArgumentError, match="empty"):
        v5.eval_sequence([])
    with pytest.raises(InvalidArgumentError, match="chunk_size"):
        v5.eval_sequence(PROMPT3, chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size"):
        v5.eval_sequence(PROMPT3, chunk_size=2.0)


def test_bad_thread_and_gpu_counts():
    with pytest.raises(InvalidArgumentError, match="thread_count"):
        Model(V4_FP32, thread_count=0)
    with pytest.raises(InvalidArgumentError, match="gpu_layer_count"):
        Model(V4_FP32, gpu_layer_count=-1)


def test_closed_model():
    model = Model(V4_FP32)
    clone = model.clone()
    with model:
        pass
    assert model.closed and "closed" in repr(model)
    model.close()  # idempotent
    for call in (lambda: model.eval(34), lambda: model.eval_sequence(PROMPT3), model.init_state, model.clone,
                 lambda: model.gpu_layer_count):
        with pytest.raises(RwkvError, match="closed"):
            call()
    # The clone shares the weights and outlives the original.
    logits, _ = clone.eval(34)
    assert np.isfinite(logits).all()
    clone.close()


def test_missing_file(tmp_path, capfd):
    path = tmp_path / "missing.bin"
    with pytest.raises(ModelFileError) as info:
        Model(path)
    assert info.value.code == 514  # FILE | FILE_OPEN, as in rwkv.cpp
    assert str(path) in str(info.value)
    assert capfd.readouterr().err == ""  # the exception carries the message; nothing printed


def test_directory_is_not_a_model(tmp_path):
    with pytest.raises(ModelFileError, match=str(tmp_path)) as info:
        Model(tmp_path)
    assert info.value.code & 0xFF00 == 2 << 8  # FILE


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, world\n" * 100, b"\x00" * 4096, V4_FP32.read_bytes()[:64], V4_FP32.read_bytes()[:-1000]],
    ids=["empty", "text", "zeros", "header only", "truncated"],
)
def test_not_a_model_file(tmp_path, content, capfd):
    path = tmp_path / "bad.bin"
    path.write_bytes(content)
    with pytest.raises(ModelFormatError) as info:
        Model(path)
    assert info.value.code & 0xFF00 in (2 << 8, 3 << 8, 4 << 8)  # FILE (READ: truncated), MODEL, MODEL_PARAMS
    assert info.value.message
    assert capfd.readouterr().err == ""


def test_gpu_layers_without_gpu():
    if "CUDA" in rwkv_cpp.system_info().upper():
        pytest.skip("library built with GPU support")
    with pytest.warns(RuntimeWarning):
        model = Model(V4_FP32, gpu_layer_count=2)
    with model:
        assert model.gpu_layer_count == 0


# ---- quantize, system info ----


def test_quantize(tmp_path, v4):
    out = tmp_path / "q8.bin"
    rwkv_cpp.quantize(V4_FP32, out, "Q8_0")
    with Model(out) as model:
        assert model.n_layer == v4.n_layer
        logits, _ = model.eval_sequence(PROMPT3)
        assert np.isfinite(logits).all()
    with pytest.raises(InvalidArgumentError):
        rwkv_cpp.quantize(V4_FP32, tmp_path / "x.bin", "Q9_9")
    with pytest.raises(ModelFileError):
        rwkv_cpp.quantize(tmp_path / "missing.bin", tmp_path / "y.bin", "Q8_0")


def test_library_info():
    assert isinstance(rwkv_cpp.system_info(), str) and rwkv_cpp.system_info()
    assert Path(rwkv_cpp.library_path()).is_file()
    assert rwkv_cpp.__version__ == "0.1.0"


# ---- finding the library (in subprocesses: the library is loaded once per process) ----


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    """Runs code in a fresh interpreter that imports the same rwkv_cpp as this one
    (installed or from the checkout)."""
    package_parent = str(Path(rwkv_cpp.__file__).resolve().parent.parent)
    environment = dict(os.environ, PYTHONPATH=package_parent, **env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=environment,
                          capture_output=True, text=True, timeout=120)


LOAD_AND_REPORT = f"""
    import rwkv_cpp
    try:
        rwkv_cpp.Model({str(V4_FP32)!r})
    except rwkv_cpp.RwkvError as e:
        print(type(e).__name__)
        print(e)
    else:
        print("loaded", rwkv_cpp.library_path())
"""


def test_library_override_missing(tmp_path):
    missing = tmp_path / "nope" / "librwkv.so"
    result = run_python(LOAD_AND_REPORT, RWKV_CPP_LIBRARY=str(missing))
    assert result.returncode == 0, result.stderr
    name, message = result.stdout.splitlines()[:2]
    assert name == LibraryNotFoundError.__name__
    assert "RWKV_CPP_LIBRARY" in message and str(missing) in message


def test_library_override_used():
    path = rwkv_cpp.library_path()
    result = run_python(LOAD_AND_REPORT, RWKV_CPP_LIBRARY=path)
    assert result.stdout.split() == ["loaded", path], result.stderr


def compile_stub(tmp_path: Path, source: str) -> Path:
    if sys.platform != "linux":
        pytest.skip("stub libraries are built with cc on Linux")
    c_file = tmp_path / "stub.c"
    c_file.write_text(source)
    library = tmp_path / "libstub.so"
    try:
        subprocess.run(["cc", "-shared", "-fPIC", "-o", str(library), str(c_file)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no C compiler")
    return library


@pytest.mark.parametrize(
    "source, found",
    [
        ('const char * rwkv_get_version_string(void) { return "9.9.9"; }', "version 9.9.9"),
        ("int rwkv_eval(void) { return 0; }", "no rwkv_get_version_string"),  # rwkv.cpp's own library
    ],
)
def test_library_of_another_version_refused(tmp_path, source, found):
    stub = compile_stub(tmp_path, source)
    result = run_python(LOAD_AND_REPORT, RWKV_CPP_LIBRARY=str(stub))
    name, message = result.stdout.splitlines()[:2]
    assert name == LibraryVersionError.__name__
    assert found in message and "0.1.0" in message and str(stub) in message


def test_not_a_library(tmp_path):
    fake = tmp_path / "librwkv.so"
    fake.write_text("not a library")
    result = run_python(LOAD_AND_REPORT, RWKV_CPP_LIBRARY=str(fake))
    name, message = result.stdout.splitlines()[:2]
    assert name == LibraryNotFoundError.__name__ and str(fake) in message


def test_import_is_lazy():
    """Importing the package opens no library and imports neither torch nor the tools."""
    result = run_python(
        """
        import sys, rwkv_cpp, rwkv_cpp.rwkv_cpp_model, rwkv_cpp.rwkv_cpp_shared_library
        from rwkv_cpp import _native
        print(_native._default is None, "torch" in sys.modules, "rwkv_cpp.convert" in sys.modules)
        """,
        RWKV_CPP_LIBRARY="/nonexistent/librwkv.so",
    )
    assert result.stdout.split() == ["True", "False", "False"], result.stderr


# ---- threads ----


def test_clones_in_threads_match_serial(v5):
    """Two contexts sharing weights, evaluated at once from two Python threads, give
    exactly the serial results (and the library's scratch memory is per context)."""
    prompts = [PROMPT70, PROMPT70[::-1]]
    models = [v5.clone(thread_count=2), v5.clone(thread_count=2)]

    def work(model, tokens):
        logits, state = model.eval_sequence(tokens, chunk_size=16)
        steps = []
        for token in tokens[:20]:
            logits, state = model.eval(token, state)
            steps.append(logits.copy())
        return np.stack(steps), state

    serial = [work(model, tokens) for model, tokens in zip(models, prompts)]
    for _ in range(3):
        results = [None, None]
        barrier = threading.Barrier(2)

        def run(i):
            barrier.wait()
            results[i] = work(models[i], prompts[i])

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for (s_logits, s_state), (t_logits, t_state) in zip(serial, results):
            np.testing.assert_array_equal(t_logits, s_logits)
            np.testing.assert_array_equal(t_state, s_state)
    for model in models:
        model.close()


def test_one_model_shared_by_threads(v5):
    """Calls on one Model from several threads are serialized (one eval at a time per
    context), so each thread still gets the serial result."""
    prompts = [PROMPT70[i:] for i in range(4)]
    serial = [v5.eval_sequence(tokens)[0] for tokens in prompts]
    results = [None] * len(prompts)

    def run(i):
        for _ in range(5):
            results[i] = v5.eval_sequence(prompts[i])[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for expected, got in zip(serial, results):
        np.testing.assert_array_equal(got, expected)


def test_gil_released_during_eval(v5):
    """While one thread is inside the library, another runs Python code. With a huge
    switch interval, the main thread could not run at all while the worker holds the
    GIL, so the count stays 0 unless the GIL is released around the C call."""
    tokens = np.array(PROMPT70 * 40, dtype=np.uint32)
    model = v5.clone(thread_count=1)
    started, done = threading.Event(), threading.Event()
    count = 0

    def worker():
        started.set()
        model.eval_sequence(tokens)
        done.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(30.0)
    try:
        thread = threading.Thread(target=worker)
        thread.start()
        started.wait()
        while not done.wait(0.0005):  # waiting releases the GIL, so the worker can finish
            count += 1
        thread.join()
    finally:
        sys.setswitchinterval(interval)
        model.close()
    assert count > 0
