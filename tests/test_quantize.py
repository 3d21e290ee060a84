"""The quantizer (rwkv_quantize_model_file_ex through rwkv_cpp.quantize_model_file), the CLI's
`quantize` and tools/quantize.py.

Compared against: the `gguf` package's numpy reference quantizers (ggml's block formats,
`gguf.quants.quantize`) block for block, including edge-case blocks; rwkv.cpp's own Q5_0 /
Q5_1 files (the fixtures) byte for byte; and the input file for everything that must be
copied unchanged. Bad input: a clear exception / one line and exit 2, nothing left behind.
"""

from __future__ import annotations

import os
import stat
import struct
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from gguf import GGMLQuantizationType
from gguf.quants import quantize as gguf_quantize

import rwkv_cpp
from model_files import F16, F32, v4_tensors, write_model
from rwkv_cpp import InvalidArgumentError, ModelFileError, ModelFormatError, RwkvError
from rwkv_cpp import _native
from rwkv_cpp._native import ffi
from rwkv_cpp.quantize import FORMATS, quantize_model_file

REPO = Path(__file__).resolve().parent.parent
TOOL = REPO / "tools" / "quantize.py"
FIXTURES = REPO.parent / "shared" / "fixtures" / "rwkvcpp"
# Where the rwkv_cpp under test was imported from (the checkout, or an installed copy):
# child processes are pointed at the same one.
PACKAGE_PARENT = str(Path(rwkv_cpp.__file__).resolve().parent.parent)

MAGIC = 0x67676D66
# rwkv.cpp's file data types (its own enum: 4, 5 and 6 are retired Q4 variants).
FILE_TYPE = {"Q4_0": 2, "Q4_1": 3, "Q5_0": 7, "Q5_1": 8, "Q8_0": 9}
GGUF_TYPE = {"Q4_0": GGMLQuantizationType.Q4_0, "Q4_1": GGMLQuantizationType.Q4_1,
             "Q5_0": GGMLQuantizationType.Q5_0, "Q5_1": GGMLQuantizationType.Q5_1,
             "Q8_0": GGMLQuantizationType.Q8_0}
# Bytes per element (F32, F16) or per 32-element block (quantized), by file data type.
_TYPE_SIZE = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 7: (32, 22), 8: (32, 24), 9: (32, 34)}
QK = 32

N_VOCAB, N_EMBED, N_LAYER = 256, 64, 2


# ---- reading a .bin file (independent of the library) ----

class Tensor(NamedTuple):
    name: str
    shape: tuple[int, ...]  # PyTorch order (rows first)
    data_type: int
    data: bytes


class ModelFile(NamedTuple):
    magic: int
    version: int
    n_vocab: int
    n_embed: int
    n_layer: int
    data_type: int
    tensors: list[Tensor]

    def tensor(self, name: str) -> Tensor:
        return next(t for t in self.tensors if t.name == name)


def read_model(path) -> ModelFile:
    """Header and tensors of an rwkv.cpp .bin file; fails on any trailing or missing byte."""
    data = Path(path).read_bytes()
    header = struct.unpack_from("<6i", data, 0)
    offset, tensors = 24, []
    while offset < len(data):
        n_dims, key_length, data_type = struct.unpack_from("<3i", data, offset)
        offset += 12
        shape = struct.unpack_from(f"<{n_dims}i", data, offset)[::-1]
        offset += 4 * n_dims
        name = data[offset:offset + key_length].decode()
        offset += key_length
        block, block_bytes = _TYPE_SIZE[data_type]
        n_bytes = int(np.prod(shape)) // block * block_bytes
        tensors.append(Tensor(name, tuple(shape), data_type, data[offset:offset + n_bytes]))
        offset += n_bytes
    assert offset == len(data), f"{path}: {offset - len(data)} bytes missing at the end"
    return ModelFile(*header, tensors)


def as_float32(tensor: Tensor) -> np.ndarray:
    dtype = {0: "<f4", 1: "<f2"}[tensor.data_type]
    return np.frombuffer(tensor.data, dtype).astype(np.float32).reshape(tensor.shape)


def is_quantized_by_default(tensor: Tensor) -> bool:
    """rwkv.cpp's rule: 2-D F32/F16 tensors except emb.weight and head.weight."""
    return (len(tensor.shape) == 2 and tensor.data_type in (0, 1)
            and tensor.name not in ("emb.weight", "head.weight"))


def expected_blocks(tensor: Tensor, format_name: str) -> bytes:
    """ggml's reference quantizer on the tensor widened to float32 (what rwkv.cpp writes)."""
    return ggml_quantize(as_float32(tensor), format_name)


_NEGATIVE_ZERO_F16 = (0x00, 0x80)  # little-endian fp16 -0.0


def ggml_quantize(matrix: np.ndarray, format_name: str) -> bytes:
    """gguf's numpy port of ggml's quantize_row_*_ref, with the sign of zero scales put right.

    The port finds max / min with numpy, ggml with a loop over the block; they differ
    only in the sign of a zero (ggml-quants.c): Q4_0/Q5_0 start from max = +0.0 and keep
    it when every value is ±0, so d = +0.0 / -8 = -0.0 (the port takes the first value's
    sign); Q4_1/Q5_1 take the first value equal to the minimum as m (numpy's min may
    return +0 for -0) and d = (max - min) / n = +0.0 for an all-zero block. Only blocks
    of ±0 (or of non-negative values with a zero minimum) are affected; the values and
    the nibbles are the same.
    """
    with np.errstate(over="ignore"):  # the edge blocks' fp16 scales that overflow to inf, as in C
        quantized = gguf_quantize(matrix, GGUF_TYPE[format_name])
    blocks = quantized.reshape(-1, _TYPE_SIZE[FILE_TYPE[format_name]][1]).copy()
    values = np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1, QK)
    all_zero = (values == 0).all(axis=1)
    if format_name in ("Q4_0", "Q5_0"):
        blocks[all_zero, 0:2] = _NEGATIVE_ZERO_F16
    elif format_name in ("Q4_1", "Q5_1"):
        blocks[all_zero, 0:2] = 0  # d = +0.0
        zero_min = values.min(axis=1) == 0
        first_zero = np.argmax(values == 0, axis=1)
        negative = np.signbit(values[np.arange(len(values)), first_zero])
        blocks[zero_min & negative, 2:4] = _NEGATIVE_ZERO_F16
        blocks[zero_min & ~negative, 2:4] = 0
    return blocks.tobytes()


def leftovers(directory: Path, keep=()) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name not in keep)


# ---- inputs with edge-case blocks ----

def tie_blocks(scale: float) -> list[np.ndarray]:
    """Blocks whose values, divided by the block's scale d, land on k + 0.5: the rounding
    ties of each format (exact when scale is 1, a few ulp either side otherwise, where
    a fused multiply-add would round differently from ggml's separate multiply and add)."""
    halves = np.arange(-15.5, 16)  # -15.5 ... 15.5
    blocks = [
        np.r_[-8, np.clip(halves[1:], -7.5, 7.5)],        # Q4_0: max -8 d -> d, q = x / d + 8.5
        np.r_[0, 15, np.clip(halves[2:] + 7, 0.5, 14.5)],  # Q4_1: min 0, max 15 d
        np.r_[-16, halves[1:]],                            # Q5_0: max -16 d
        np.r_[0, 31, halves[2:] + 15],                     # Q5_1: min 0, max 31 d
        np.r_[127, halves[1:] * 4 + np.sign(halves[1:]) * 0.5],  # Q8_0: roundf, ties away from 0
    ]
    return [np.asarray(block, dtype=np.float64) * scale for block in blocks]


def edge_blocks(huge: float) -> list[np.ndarray]:
    """32-value blocks that exercise each quantizer's corners (each a float32 array)."""
    ramp = np.linspace(-1, 1, QK)
    blocks = [
        np.zeros(QK),                                       # d = 0, id = 0
        np.full(QK, -0.0), np.r_[np.full(16, -0.0), np.zeros(16)],  # signs of zero scales
        np.r_[1.0, -0.0, 0.0, ramp[3:] ** 2],               # Q4_1/Q5_1: min is the first zero
        np.full(QK, 0.5), np.full(QK, -0.25),                # constant: max == min
        np.r_[1.0, -1.0, ramp[2:]],                          # +max before -max (sign of max)
        np.r_[-1.0, 1.0, ramp[2:]],                          # -max before +max: clamp to 15/31
        np.full(QK, 1e-30) * np.sign(ramp + 1e-3),          # scale underflows fp16 to 0
        ramp * 1e-35,                                        # tiny but 1/d stays finite
        ramp * 2e-5, ramp * 1e-6,                            # scales among fp16 subnormals
        np.where(np.arange(QK) % 2, 1.0, -1.0) * np.linspace(0.1, 3, QK),  # alternating signs
        np.r_[np.full(QK - 1, 0.01), 1000.0],                # one huge value
        np.r_[np.linspace(-0.01, 0.01, QK - 1), -1000.0],
        ramp * huge,                                         # scales near / past fp16's max
    ]
    for scale in (1.0, 0.1, 1 / 3, 3e-3):
        blocks += tie_blocks(scale)
    return [np.asarray(b, dtype=np.float32) for b in blocks]


def with_edge_blocks(matrix: np.ndarray, huge: float, rng: np.random.Generator) -> np.ndarray:
    """The matrix with every edge block written in at random block positions."""
    flat = matrix.astype(np.float32).reshape(-1, QK).copy()
    blocks = edge_blocks(huge)
    positions = rng.choice(flat.shape[0], size=min(len(blocks), flat.shape[0]), replace=False)
    for position, block in zip(positions, blocks):
        flat[position] = block
    return flat.reshape(matrix.shape)


def write_edge_case_model(path: Path, matrix_type: int, seed: int = 0) -> Path:
    """A valid v4 model whose 2-D matrices hold random values and every edge block."""
    rng = np.random.default_rng(seed)
    huge = 7e4 if matrix_type == F32 else 6e4  # 7e4 overflows an fp16 scale; an F16 file cannot hold it
    tensors = []
    for name, shape, data_type, data in v4_tensors(N_VOCAB, N_EMBED, N_LAYER, matrix_type, rng):
        if len(shape) == 2:
            data = with_edge_blocks(np.asarray(data), huge, rng)
        tensors.append((name, shape, data_type, data))
    return write_model(path, N_VOCAB, N_EMBED, N_LAYER, tensors, version=101, data_type=matrix_type)


@pytest.fixture(scope="module")
def edge_models(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("edge")
    return {"FP32": write_edge_case_model(directory / "edge-FP32.bin", F32),
            "FP16": write_edge_case_model(directory / "edge-FP16.bin", F16)}


def check_quantized_file(source: Path, output: Path, format_name: str, head_format: str | None = None) -> None:
    """output is source quantized by rwkv.cpp's rule, every block equal to ggml's."""
    src, out = read_model(source), read_model(output)
    assert (out.magic, out.version) == (MAGIC, 101)
    assert (out.n_vocab, out.n_embed, out.n_layer) == (src.n_vocab, src.n_embed, src.n_layer)
    assert out.data_type == FILE_TYPE[format_name]
    assert [(t.name, t.shape) for t in out.tensors] == [(t.name, t.shape) for t in src.tensors]
    n_quantized = 0
    for before, after in zip(src.tensors, out.tensors):
        target = format_name if is_quantized_by_default(before) else None
        if before.name == "head.weight" and head_format is not None:
            target = head_format
        if target is None:
            assert after.data_type == before.data_type, before.name
            assert after.data == before.data, f"{before.name} was not copied unchanged"
        else:
            assert after.data_type == FILE_TYPE[target], before.name
            expected = expected_blocks(before, target)
            if after.data != expected:
                bad = np.flatnonzero(np.frombuffer(after.data, np.uint8) != np.frombuffer(expected, np.uint8))
                block_bytes = _TYPE_SIZE[FILE_TYPE[target]][1]
                raise AssertionError(f"{before.name} {target}: {bad.size} bytes differ from ggml's, "
                                     f"first in block {bad[0] // block_bytes}")
            n_quantized += 1
    assert n_quantized == sum(map(is_quantized_by_default, src.tensors)) + (head_format is not None)


# ---- bytes ----

@pytest.mark.parametrize("source_type", ["FP32", "FP16"])
@pytest.mark.parametrize("format_name", FORMATS)
def test_blocks_equal_ggml_reference(edge_models, tmp_path, source_type, format_name):
    output = tmp_path / f"out-{format_name}.bin"
    summary = quantize_model_file(edge_models[source_type], output, format_name, progress=False)
    check_quantized_file(edge_models[source_type], output, format_name)
    assert summary == {"format": format_name, "head_format": None,
                       "n_bytes_in": edge_models[source_type].stat().st_size,
                       "n_bytes_out": output.stat().st_size}
    assert leftovers(tmp_path) == [output.name]


@pytest.mark.parametrize("source_type", ["FP32", "FP16"])
def test_head_format_quantizes_head_not_emb(edge_models, tmp_path, source_type):
    plain, with_head = tmp_path / "plain.bin", tmp_path / "head.bin"
    quantize_model_file(edge_models[source_type], plain, "Q5_1", progress=False)
    summary = quantize_model_file(edge_models[source_type], with_head, "Q5_1", head_format="Q8_0", progress=False)
    check_quantized_file(edge_models[source_type], with_head, "Q5_1", head_format="Q8_0")
    assert summary["head_format"] == "Q8_0"
    # Only head.weight changed: N_VOCAB * N_EMBED values from 4 or 2 bytes to 34/32.
    value_bytes = 4 if source_type == "FP32" else 2
    saved = N_VOCAB * N_EMBED * value_bytes - N_VOCAB * N_EMBED // QK * 34
    assert plain.stat().st_size - with_head.stat().st_size == saved


def test_legacy_entry_point_writes_the_same_bytes(edge_models, tmp_path):
    lib = _native.load().lib
    _native.silence(lib)
    legacy, new = tmp_path / "legacy.bin", tmp_path / "new.bin"
    assert lib.rwkv_quantize_model_file(os.fsencode(edge_models["FP16"]), os.fsencode(legacy), b"Q4_1")
    quantize_model_file(edge_models["FP16"], new, "Q4_1", progress=False)
    assert legacy.read_bytes() == new.read_bytes()


def test_quantized_file_loads_and_runs(edge_models, tmp_path):
    output = tmp_path / "q.bin"
    quantize_model_file(edge_models["FP32"], output, "Q8_0", head_format="Q8_0", progress=False)
    with rwkv_cpp.Model(output, thread_count=1) as model:
        assert (model.n_vocab, model.n_embed, model.n_layer) == (N_VOCAB, N_EMBED, N_LAYER)
        logits, _ = model.eval_sequence([1, 2, 3])
    assert np.isfinite(logits).all()


def test_in_place_quantization(edge_models, tmp_path):
    """Output path == input path: the temporary file makes this safe."""
    separate, in_place = tmp_path / "separate.bin", tmp_path / "in-place.bin"
    quantize_model_file(edge_models["FP32"], separate, "Q5_0", progress=False)
    in_place.write_bytes(edge_models["FP32"].read_bytes())
    quantize_model_file(in_place, in_place, "Q5_0", progress=False)
    assert in_place.read_bytes() == separate.read_bytes()
    assert leftovers(tmp_path) == ["in-place.bin", "separate.bin"]


def test_replaces_existing_destination(edge_models, tmp_path):
    output = tmp_path / "out.bin"
    output.write_bytes(b"an older file, longer or shorter")
    quantize_model_file(edge_models["FP32"], output, "Q4_0", progress=False)
    check_quantized_file(edge_models["FP32"], output, "Q4_0")


def test_symlink_destination_is_written_through(edge_models, tmp_path):
    """As rwkv.cpp (fopen) and our converter do: the link stays, its target gets the model."""
    target, link = tmp_path / "target.bin", tmp_path / "link.bin"
    target.write_bytes(b"old")
    link.symlink_to(target)
    quantize_model_file(edge_models["FP32"], link, "Q5_1", progress=False)
    assert link.is_symlink()
    check_quantized_file(edge_models["FP32"], target, "Q5_1")
    assert leftovers(tmp_path) == ["link.bin", "target.bin"]


def test_package_exports_the_function():
    import importlib

    assert rwkv_cpp.quantize is quantize_model_file
    assert importlib.import_module("rwkv_cpp.quantize").quantize_model_file is quantize_model_file
    assert rwkv_cpp.quantize is quantize_model_file  # importing the submodule did not rebind it


# ---- rwkv.cpp's own quantized files ----

def rwkvcpp_fixture(name: str) -> Path:
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(f"rwkv.cpp fixture {path} not found")
    return path


@pytest.mark.parametrize("model_id", ["4v0-660K", "5v2-730K"])
@pytest.mark.parametrize("format_name", ["Q5_0", "Q5_1"])
def test_reproduces_rwkvcpp_quantized_files(tmp_path, model_id, format_name):
    """rwkv.cpp made its Q5 fixtures from the FP32 files (emb/head stay F32 in them); the
    4v0 FP32 file is version 100, the quantized output always 101."""
    expected = rwkvcpp_fixture(f"tiny-rwkv-{model_id}-{format_name}.bin")
    output = tmp_path / "out.bin"
    quantize_model_file(rwkvcpp_fixture(f"tiny-rwkv-{model_id}-FP32.bin"), output, format_name, progress=False)
    assert output.read_bytes() == expected.read_bytes()


# ---- progress ----

def test_progress_callback_counts_every_tensor(edge_models, tmp_path):
    lib = _native.load().lib
    _native.silence(lib)
    calls = []
    callback = ffi.callback("void(void *, size_t, size_t)", lambda _, done, total: calls.append((done, total)))
    params = ffi.new("struct rwkv_quantize_params *", lib.rwkv_quantize_default_params())
    format_name = ffi.new("char[]", b"Q8_0")
    params.format_name = format_name
    params.progress = callback
    assert lib.rwkv_quantize_model_file_ex(os.fsencode(edge_models["FP32"]), os.fsencode(tmp_path / "q.bin"), params)
    n_tensors = len(read_model(edge_models["FP32"]).tensors)
    assert calls == [(i, n_tensors) for i in range(1, n_tensors + 1)]


def test_default_params():
    params = _native.load().lib.rwkv_quantize_default_params()
    assert params.head_format_name == ffi.NULL
    assert params.progress == ffi.NULL and params.user_data == ffi.NULL


def test_progress_without_tqdm(edge_models, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError
    quantize_model_file(edge_models["FP32"], tmp_path / "q.bin", "Q4_0", progress=True)
    assert capsys.readouterr().err == ""


def test_progress_bar_with_tqdm(edge_models, tmp_path, capsys):
    pytest.importorskip("tqdm")
    quantize_model_file(edge_models["FP32"], tmp_path / "q.bin", "Q4_0", progress=True)
    n_tensors = len(read_model(edge_models["FP32"]).tensors)
    assert f"{n_tensors}/{n_tensors}" in capsys.readouterr().err


def test_interrupt_during_progress_is_raised_after_the_call(edge_models, tmp_path, monkeypatch):
    """Ctrl-C arrives in the progress callback, where it cannot cross the C call: it is kept
    and raised when the library returns (the output is then complete)."""
    quantize_module = sys.modules["rwkv_cpp.quantize"]  # `import ... as` gives the function

    def interrupt(self, user_data, n_done, n_total):
        raise KeyboardInterrupt

    monkeypatch.setattr(quantize_module._ProgressBar, "update", interrupt)
    with pytest.raises(KeyboardInterrupt):
        quantize_model_file(edge_models["FP32"], tmp_path / "q.bin", "Q4_0", progress=True)
    check_quantized_file(edge_models["FP32"], tmp_path / "q.bin", "Q4_0")


# ---- bad input ----

@pytest.mark.parametrize("format_name", ["Q3_K", "", "q5_1", "Q5_1 ", "FP16", "F32", "Q4_2"])
def test_unknown_format_names(edge_models, tmp_path, format_name):
    """rwkv.cpp accepts exactly the upper-case names; so do we."""
    output = tmp_path / "out.bin"
    with pytest.raises(InvalidArgumentError) as error:
        quantize_model_file(edge_models["FP32"], output, format_name, progress=False)
    assert "Q4_0" in error.value.message and "Q8_0" in error.value.message  # lists what is valid
    with pytest.raises(InvalidArgumentError):
        quantize_model_file(edge_models["FP32"], output, "Q5_1", head_format=format_name, progress=False)
    assert leftovers(tmp_path) == []


def test_format_name_type_and_nul(edge_models, tmp_path):
    with pytest.raises(TypeError):
        quantize_model_file(edge_models["FP32"], tmp_path / "o.bin", 8, progress=False)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="NUL"):
        quantize_model_file(edge_models["FP32"], tmp_path / "o.bin", "Q5_1\0junk", progress=False)
    with pytest.raises(InvalidArgumentError, match="NUL"):
        quantize_model_file(edge_models["FP32"], str(tmp_path / "o.bin") + "\0.x", "Q5_1", progress=False)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("format_name", ["Q5_1", "Q8_0"])
def test_already_quantized_input(edge_models, tmp_path, format_name):
    quantized = tmp_path / "q.bin"
    quantize_model_file(edge_models["FP32"], quantized, format_name, progress=False)
    with pytest.raises(ModelFormatError, match="quantized") as error:
        quantize_model_file(quantized, tmp_path / "again.bin", "Q4_0", progress=False)
    print(f"already quantized: {error.value.message}")
    assert leftovers(tmp_path) == ["q.bin"]


def test_rwkvcpp_quantized_fixture_is_refused(tmp_path):
    with pytest.raises(ModelFormatError, match="quantized"):
        quantize_model_file(rwkvcpp_fixture("tiny-rwkv-5v2-730K-Q5_1.bin"), tmp_path / "o.bin", "Q8_0",
                            progress=False)
    assert leftovers(tmp_path) == []


def test_missing_input(tmp_path):
    with pytest.raises(ModelFileError, match="missing.bin"):
        quantize_model_file(tmp_path / "missing.bin", tmp_path / "o.bin", "Q5_1", progress=False)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("content", [b"", b"not a model at all\n" * 10, struct.pack("<6i", MAGIC, 99, 256, 64, 2, 0)],
                         ids=["empty", "text", "version-99"])
def test_input_not_a_model(tmp_path, content):
    source = tmp_path / "source.bin"
    source.write_bytes(content)
    with pytest.raises(ModelFormatError) as error:
        quantize_model_file(source, tmp_path / "o.bin", "Q5_1", progress=False)
    print(f"not a model: {error.value.message}")
    assert leftovers(tmp_path) == ["source.bin"]


def test_truncated_input(edge_models, tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(edge_models["FP32"].read_bytes()[:-100])
    with pytest.raises(ModelFormatError):
        quantize_model_file(source, tmp_path / "o.bin", "Q5_1", progress=False)
    assert leftovers(tmp_path) == ["source.bin"]


def test_row_length_not_a_multiple_of_32(tmp_path):
    """ggml's blocks hold 32 values of a row. rwkv.cpp would write a broken file for such a
    matrix (ggml_quantize_chunk quantizes floor(n / 32) blocks a row); we keep it as it is,
    and the file loads. Asking explicitly for a quantized head that cannot be is an error."""
    rng = np.random.default_rng(1)
    source = write_model(tmp_path / "source.bin", 256, 48, 1, v4_tensors(256, 48, 1, F32, rng))
    with pytest.raises(rwkv_cpp.InvalidArgumentError, match="head.weight rows have 48 values"):
        quantize_model_file(source, tmp_path / "out.bin", "Q5_1", head_format="Q8_0", progress=False)
    assert not (tmp_path / "out.bin").exists()
    quantize_model_file(source, tmp_path / "out.bin", "Q5_1", progress=False)
    src, out = read_model(source), read_model(tmp_path / "out.bin")
    for before, after in zip(src.tensors, out.tensors):
        if before.shape[-1] % QK or before.name in ("emb.weight", "head.weight"):
            assert after == before
        else:  # ffn.value.weight: 48 rows of 192
            assert after.data == expected_blocks(before, "Q5_1")
    assert [t.name for t in out.tensors if t.data_type == FILE_TYPE["Q5_1"]] == ["blocks.0.ffn.value.weight"]
    with rwkv_cpp.Model(tmp_path / "out.bin", thread_count=1) as model:
        assert np.isfinite(model.eval(1)[0]).all()


def test_output_in_missing_directory(edge_models, tmp_path):
    with pytest.raises(ModelFileError, match="no-such-dir"):
        quantize_model_file(edge_models["FP32"], tmp_path / "no-such-dir" / "o.bin", "Q5_1", progress=False)
    assert leftovers(tmp_path) == []


def test_output_is_a_directory(edge_models, tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("x")
    with pytest.raises(ModelFileError, match="directory"):
        quantize_model_file(edge_models["FP32"], target, "Q5_1", progress=False)
    assert leftovers(tmp_path) == ["target"] and leftovers(target) == ["keep"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_output_not_a_regular_file(edge_models, tmp_path):
    """A FIFO as the output is refused (renaming over it would replace it), not opened (that
    would block until a reader came)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ModelFileError, match="regular file"):
        quantize_model_file(edge_models["FP32"], fifo, "Q5_1", progress=False)
    assert fifo.is_fifo() and leftovers(tmp_path) == ["fifo"]


@pytest.mark.parametrize("device", [(1, 3), (1, 7)], ids=["null", "full"])
def test_output_is_a_device(edge_models, tmp_path, device):
    """/dev/null or /dev/full as the output is refused, not replaced by a regular file. Tried
    on a private device node (needs root), never on /dev itself: a library that renamed its
    temporary file over the node would break the machine's /dev/null."""
    node = tmp_path / "device"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(*device))
    except (PermissionError, AttributeError, OSError):
        pytest.skip("cannot create a device node here (not root)")
    with pytest.raises(ModelFileError, match="regular file"):
        quantize_model_file(edge_models["FP32"], node, "Q5_1", progress=False)
    assert node.is_char_device() and leftovers(tmp_path) == ["device"]


QUANTIZE_WITH_SIZE_LIMIT = """
import resource, sys
sys.path.insert(0, {package_parent!r})
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))  # writes past it fail: EFBIG
from rwkv_cpp import ModelFileError
from rwkv_cpp.quantize import quantize_model_file
try:
    quantize_model_file({source!r}, {dest!r}, "Q8_0", progress=False)
except ModelFileError as error:
    print(error.message)
    sys.exit(3)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs POSIX resource limits")
@pytest.mark.parametrize("limit", [10, 20_000])
def test_write_failure_leaves_previous_file(edge_models, tmp_path, limit):
    """A full disk, simulated with a file size limit: an error naming the cause, the old file
    kept, no temporary file left."""
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"previous model")
    script = QUANTIZE_WITH_SIZE_LIMIT.format(package_parent=PACKAGE_PARENT, limit=limit, source=str(edge_models["FP32"]),
                                             dest=str(dest))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stdout + result.stderr
    print(f"size limit {limit}: {result.stdout.strip()}")
    assert "too large" in result.stdout.lower() or "space" in result.stdout.lower()
    assert dest.read_bytes() == b"previous model"
    assert leftovers(tmp_path) == ["out.bin"]


def test_null_arguments():
    lib = _native.load().lib
    _native.silence(lib)
    params = ffi.new("struct rwkv_quantize_params *", lib.rwkv_quantize_default_params())
    assert not lib.rwkv_quantize_model_file_ex(b"in.bin", b"out.bin", ffi.NULL)
    assert int(lib.rwkv_get_last_error(ffi.NULL)) & 0xFF00 == 1 << 8  # ARGS
    params.format_name = ffi.NULL
    assert not lib.rwkv_quantize_model_file_ex(b"in.bin", b"out.bin", params)
    assert int(lib.rwkv_get_last_error(ffi.NULL)) & 0xFF00 == 1 << 8
    assert not lib.rwkv_quantize_model_file_ex(ffi.NULL, b"out.bin", params)
    assert int(lib.rwkv_get_last_error(ffi.NULL)) & 0xFF00 == 1 << 8


# ---- the command lines ----

def run_cli(*args, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = PACKAGE_PARENT
    return subprocess.run([sys.executable, "-m", "rwkv_cpp", "quantize", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=120, **kwargs)


def run_tool(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the tool finds the package itself
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


@pytest.mark.parametrize("runner", [run_cli, run_tool], ids=["cli", "tool"])
def test_command_line_quantizes_and_reports_sizes(edge_models, tmp_path, runner):
    expected = tmp_path / "expected.bin"
    quantize_model_file(edge_models["FP16"], expected, "Q5_1", head_format="Q8_0", progress=False)
    result = runner(edge_models["FP16"], tmp_path / "out.bin", "Q5_1", "--head", "Q8_0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.bin").read_bytes() == expected.read_bytes()
    n_in, n_out = edge_models["FP16"].stat().st_size, expected.stat().st_size
    assert f"{n_in / 2**20:.2f} MiB -> {n_out / 2**20:.2f} MiB" in result.stdout, result.stdout


def test_cli_quiet(edge_models, tmp_path):
    result = run_cli(edge_models["FP32"], tmp_path / "out.bin", "Q4_0", "--quiet", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
    check_quantized_file(edge_models["FP32"], tmp_path / "out.bin", "Q4_0")


@pytest.mark.parametrize("runner", [run_cli, run_tool], ids=["cli", "tool"])
@pytest.mark.parametrize("args, message", [
    (["{tmp}/missing.bin", "{tmp}/o.bin", "Q5_1"], "missing.bin"),
    (["{fp32}", "{tmp}/o.bin", "q5_1"], "q5_1"),
    (["{fp32}", "{tmp}/o.bin", "Q5_1", "--head", "Q3_K"], "Q3_K"),
    (["{quantized}", "{tmp}/o.bin", "Q5_1"], "quantized"),
    (["{fp32}", "{tmp}", "Q5_1"], "directory"),
    (["{fp32}", "{tmp}/no-such-dir/o.bin", "Q5_1"], "no-such-dir"),
])
def test_command_line_bad_input_is_one_line(edge_models, tmp_path, runner, args, message):
    quantized = tmp_path / "quantized.bin"
    quantize_model_file(edge_models["FP32"], quantized, "Q4_0", progress=False)
    formatted = [a.format(tmp=tmp_path, fp32=edge_models["FP32"], quantized=quantized) for a in args]
    result = runner(*formatted, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    # One line, the last (a progress bar may come before it when the failure is late).
    lines = [line for line in result.stderr.replace("\r", "\n").splitlines() if line and not line.startswith("Quantizing")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.endswith(lines[0] + "\n") and "error" in lines[0] and message in lines[0], result.stderr
    print(f"{runner.__name__}: {lines[0]}")
    assert leftovers(tmp_path) == ["quantized.bin"]
