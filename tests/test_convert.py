"""The torch-free checkpoint reader and converter, against torch and rwkv.cpp's conversion steps.

Expected bytes come from `_convert_reference.write_reference`, rwkv.cpp's converter
redone with torch on the same random RWKV-LM checkpoints (tests/reference/checkpoints.py).
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from _convert_reference import exact_exp, read_bin, write_reference
from reference.checkpoints import ARCHS, make_state_dict
import rwkv_cpp.convert
from rwkv_cpp.checkpoint import CheckpointError, load_checkpoint
from rwkv_cpp.convert import ConversionError, convert_checkpoint

REPO_ROOT = Path(__file__).resolve().parent.parent
TOOL = REPO_ROOT / "tools" / "convert_pytorch_to_ggml.py"

# torch.exp (MKL's vsExp on x86) is off from the correctly rounded exp by 1 ulp for ~1 % of
# inputs; exp(-exp(d)) amplifies that by up to |exp(d)| (about 20 at d = 3): 32 ulp, 2e-6.
TORCH_EXP_RTOL = 4e-6

SOURCES = {  # source file kind -> (suffix, tensor dtype)
    "pth-f32": (".pth", torch.float32),
    "pth-bf16": (".pth", torch.bfloat16),
    "pth-f16": (".pth", torch.float16),
    "safetensors-f32": (".safetensors", torch.float32),
    "safetensors-bf16": (".safetensors", torch.bfloat16),
}


def save_checkpoint(state_dict: dict[str, torch.Tensor], path: Path) -> Path:
    if path.suffix == ".safetensors":
        save_file(state_dict, str(path))
    else:
        torch.save(state_dict, path)
    return path


def torch_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The checkpoint as torch reads it, in the order the file lists the tensors."""
    if path.suffix != ".safetensors":
        return torch.load(path, map_location="cpu")
    tensors = load_file(str(path))
    (header_size,) = struct.unpack("<Q", path.read_bytes()[:8])
    header = json.loads(path.read_bytes()[8:8 + header_size])
    return {name: tensors[name] for name in header if name != "__metadata__"}


def in_rwkvag_order(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The dict with each layer's att.x_* keys permuted among their own slots into r, w, k, v, a, g order.

    The converter stacks them in that order whatever order the file lists them in
    (safetensors lists keys sorted); rwkv.cpp stacks in dict order, which for RWKV-LM's
    .pth files is the same.
    """
    names = list(state_dict)
    rank = {letter: i for i, letter in enumerate("rwkvag")}
    layers = {name.split(".")[1] for name in names if "att.x_" in name}
    for layer in layers:
        slots = [i for i, name in enumerate(names) if name.startswith(f"blocks.{layer}.att.x_")]
        ordered = sorted((names[i] for i in slots), key=lambda name: rank[name[-1]])
        for slot, name in zip(slots, ordered):
            names[slot] = name
    return {name: state_dict[name] for name in names}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[tuple[str, str], Path]:
    """(arch, source kind) -> a random tiny checkpoint file."""
    directory = tmp_path_factory.mktemp("checkpoints")
    files = {}
    for arch in ARCHS:
        state_dict = make_state_dict(arch, n_embd=64, n_layer=2, n_vocab=100, head_size=16)
        for kind, (suffix, dtype) in SOURCES.items():
            path = directory / f"v{arch}-{kind}{suffix}"
            files[arch, kind] = save_checkpoint({k: v.to(dtype) for k, v in state_dict.items()}, path)
    return files


# --- reading checkpoints -----------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_reads_tensors_as_torch_does(tmp_path, suffix):
    base = torch.randn(4, 6)
    state_dict = {
        "bf16": torch.randn(3, 4).bfloat16(),
        "f16": torch.randn(2, 3).half(),
        "f64": torch.randn(5).double(),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 3),
        "transposed": base.t(),
        "slice": base[1:3, 2:],
        "parameter": torch.nn.Parameter(torch.randn(2, 2)),
    }
    if suffix == ".safetensors":
        state_dict = {k: v.detach().contiguous() for k, v in state_dict.items()}
    path = save_checkpoint(state_dict, tmp_path / f"tensors{suffix}")

    checkpoint = load_checkpoint(path)

    expected = torch_state_dict(path)
    assert list(checkpoint) == list(expected)
    for name, tensor in expected.items():
        tensor = tensor.detach()
        tensor = tensor.float() if tensor.dtype == torch.bfloat16 else tensor
        array = checkpoint[name]
        assert checkpoint.shape(name) == tuple(tensor.shape)
        assert array.dtype == tensor.numpy().dtype and array.flags.c_contiguous, name
        assert array.tobytes() == tensor.contiguous().numpy().tobytes(), name


def test_reads_big_endian_archive(tmp_path):
    state_dict = {"a": torch.randn(3, 5), "b": torch.randn(7).bfloat16(), "c": torch.randn(2, 2).half()}
    little = save_checkpoint(state_dict, tmp_path / "little.pth")
    big = tmp_path / "big.pth"
    with zipfile.ZipFile(little) as source, zipfile.ZipFile(big, "w") as target:
        item_sizes = {"0": 4, "1": 2, "2": 2}
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("/byteorder"):
                data = b"big"
            elif "/data/" in info.filename:
                item_size = item_sizes[info.filename.rsplit("/", 1)[1]]
                data = np.frombuffer(data, f"<u{item_size}").astype(f">u{item_size}").tobytes()
            target.writestr(info, data)

    checkpoint = load_checkpoint(big)

    for name, tensor in state_dict.items():
        assert checkpoint[name].tobytes() == tensor.float().numpy().astype(checkpoint[name].dtype).tobytes()


# --- conversion against rwkv.cpp's steps -------------------------------------------------


@pytest.mark.parametrize("data_type", ["FP16", "FP32"])
@pytest.mark.parametrize("kind", SOURCES)
@pytest.mark.parametrize("arch", ARCHS)
def test_matches_rwkv_cpp_conversion_steps(checkpoints, tmp_path, arch, kind, data_type):
    source = checkpoints[arch, kind]
    expected = tmp_path / "expected.bin"
    write_reference(in_rwkvag_order(torch_state_dict(source)), expected, data_type)

    summary = convert_checkpoint(source, tmp_path / "ours.bin", data_type, progress=False)

    assert (tmp_path / "ours.bin").read_bytes() == expected.read_bytes()
    assert summary == {"arch_version": arch, "n_vocab": 100, "n_embed": 64, "n_layer": 2,
                       "data_type": data_type, "n_bytes": expected.stat().st_size}


@pytest.mark.parametrize("data_type", ["FP16", "FP32"])
@pytest.mark.parametrize("arch", ARCHS)
def test_without_torch_only_exp_decays_differ(checkpoints, tmp_path, monkeypatch, arch, data_type):
    """Without torch (float64 exp rounded once), only v4/v5 decays may differ from rwkv.cpp's
    output, and only by torch's own rounding; with exact exp the bytes are identical."""
    source = checkpoints[arch, "pth-bf16"]
    monkeypatch.setattr(rwkv_cpp.convert, "_torch_exp", lambda: None)
    write_reference(torch_state_dict(source), tmp_path / "rwkv_cpp.bin", data_type)
    write_reference(torch_state_dict(source), tmp_path / "exact.bin", data_type, exp=exact_exp)
    convert_checkpoint(source, tmp_path / "ours.bin", data_type, progress=False)
    assert (tmp_path / "ours.bin").read_bytes() == (tmp_path / "exact.bin").read_bytes()
    ours_bytes, theirs_bytes = (tmp_path / "ours.bin").read_bytes(), (tmp_path / "rwkv_cpp.bin").read_bytes()
    if arch in ("6", "7"):
        assert ours_bytes == theirs_bytes
        return

    exp_parts = (".time_decay",) if arch == "4" else (".time_decay", ".time_first")
    (our_header, ours), (their_header, their_tensors) = read_bin(ours_bytes), read_bin(theirs_bytes)
    assert (our_header, list(ours)) == (their_header, list(their_tensors))
    for name, theirs in their_tensors.items():
        assert ours[name].dtype == theirs.dtype and ours[name].shape == theirs.shape, name
        if any(part in name for part in exp_parts):
            np.testing.assert_allclose(ours[name], theirs, rtol=TORCH_EXP_RTOL, atol=0, err_msg=name)
        else:
            assert ours[name].tobytes() == theirs.tobytes(), name


def test_v7_mixes_are_stacked_in_rwkvag_order(tmp_path):
    state_dict = make_state_dict("7", n_embd=32, n_layer=1, n_vocab=20, head_size=16)
    names = list(state_dict)
    mixes = [i for i, name in enumerate(names) if ".att.x_" in name]
    shuffled = names[:mixes[0]] + [names[i] for i in reversed(mixes)] + names[mixes[-1] + 1:]
    source = save_checkpoint({name: state_dict[name] for name in shuffled}, tmp_path / "shuffled.pth")

    convert_checkpoint(source, tmp_path / "out.bin", "FP32", progress=False)

    _, tensors = read_bin((tmp_path / "out.bin").read_bytes())
    expected = torch.cat([state_dict[f"blocks.0.att.x_{letter}"] for letter in "rwkvag"]).numpy()
    assert np.array_equal(tensors["blocks.0.att.x_rwkvag"], expected)
    assert not any(".att.x_" in name and "rwkvag" not in name for name in tensors)


def test_float16_rounding_matches_torch_half(tmp_path):
    """Ties, overflow to inf, subnormals and underflow round as torch's .half() does."""
    edge = torch.tensor([65504.0, 65519.0, 65520.0, 1e6, -1e6, 2.0**-24, 2.0**-25, 3 * 2.0**-26,
                         1e-10, 1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11, float("inf"), -0.0])
    state_dict = make_state_dict("4", n_embd=16, n_layer=1, n_vocab=20, head_size=16)
    state_dict["emb.weight"] = torch.cat([edge, torch.randn(20 * 16 - len(edge)) * 1e3]).reshape(20, 16)
    source = save_checkpoint(state_dict, tmp_path / "edge.pth")
    write_reference(state_dict, tmp_path / "expected.bin", "FP16")

    convert_checkpoint(source, tmp_path / "ours.bin", "FP16", progress=False)

    assert (tmp_path / "ours.bin").read_bytes() == (tmp_path / "expected.bin").read_bytes()


@pytest.mark.parametrize("data_type", ["fp16", "float16", "Float32"])
def test_data_type_names(checkpoints, tmp_path, data_type):
    expected = tmp_path / "expected.bin"
    canonical = "FP16" if "16" in data_type else "FP32"
    write_reference(torch_state_dict(checkpoints["6", "pth-f32"]), expected, canonical)

    convert_checkpoint(checkpoints["6", "pth-f32"], tmp_path / "ours.bin", data_type, progress=False)

    assert (tmp_path / "ours.bin").read_bytes() == expected.read_bytes()


def test_progress_bar_is_optional(checkpoints, tmp_path, monkeypatch):
    source = checkpoints["7", "pth-bf16"]
    convert_checkpoint(source, tmp_path / "with_bar.bin", progress=True)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm` now raises ImportError
    convert_checkpoint(source, tmp_path / "without_bar.bin", progress=True)
    assert (tmp_path / "with_bar.bin").read_bytes() == (tmp_path / "without_bar.bin").read_bytes()


# --- hostile and broken checkpoints ------------------------------------------------------


def evil_pickles(marker: Path) -> dict[str, tuple[str, bytes]]:
    """data.pkl payloads that create `marker` when unpickled naively: case -> (global used, payload)."""

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch '{marker}'",)

    def text(value: str) -> bytes:  # a protocol-0 string argument
        return repr(value).encode()

    system = f"{os.system.__module__}.system"  # posix.system on Linux
    return {
        "GLOBAL os.system": ("os.system", b"cos\nsystem\n(S" + text(f"touch '{marker}'") + b"\ntR."),
        "GLOBAL builtins.eval": (
            "builtins.eval", b"cbuiltins\neval\n(S" + text(f"open({str(marker)!r}, 'w')") + b"\ntR."),
        "GLOBAL subprocess.Popen": (
            "subprocess.Popen", b"csubprocess\nPopen\n((S'touch'\nS" + text(str(marker)) + b"\nltR."),
        "INST os.system": ("os.system", b"(S" + text(f"touch '{marker}'") + b"\nios\nsystem\n."),
        "STACK_GLOBAL": (system, pickle.dumps(Evil(), protocol=4)),
        "inside a state dict": (system, pickle.dumps({"emb.weight": Evil()}, protocol=2)),
    }


def write_pth(path: Path, pickled: bytes, storages: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/byteorder", "little")
        for key, data in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", data)
    return path


@pytest.mark.parametrize("case", list(evil_pickles(Path("marker"))))
def test_refuses_pickled_code(tmp_path, case):
    marker = tmp_path / "marker"
    refused_global, pickled = evil_pickles(marker)[case]
    source = write_pth(tmp_path / "evil.pth", pickled)

    with pytest.raises(CheckpointError, match=f"refused global {refused_global} "):
        convert_checkpoint(source, tmp_path / "out.bin", progress=False)

    assert not marker.exists()
    assert list(tmp_path.iterdir()) == [source]


def test_refuses_unsupported_tensor_type(tmp_path):
    source = save_checkpoint({"emb.weight": torch.zeros(2, 3, dtype=torch.int64)}, tmp_path / "ints.pth")
    with pytest.raises(CheckpointError, match="unsupported tensor type torch.LongStorage"):
        load_checkpoint(source)


def test_refuses_legacy_pickle_format(tmp_path):
    source = tmp_path / "legacy.pth"
    torch.save({"emb.weight": torch.zeros(2, 2)}, source, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="legacy"):
        load_checkpoint(source)


def test_refuses_truncated_checkpoints(checkpoints, tmp_path):
    whole = checkpoints["5.2", "pth-f32"].read_bytes()
    (tmp_path / "cut.pth").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(tmp_path / "cut.pth")

    whole = checkpoints["5.2", "safetensors-f32"].read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(whole[:-100])
    with pytest.raises(CheckpointError, match="past the end"):
        load_checkpoint(tmp_path / "cut.safetensors")


def test_refuses_short_storage(tmp_path):
    real = save_checkpoint({"emb.weight": torch.randn(4, 4)}, tmp_path / "real.pth")
    with zipfile.ZipFile(real) as archive:
        pickled = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
    source = write_pth(tmp_path / "short.pth", pickled, {"0": b"\0" * 60})
    with pytest.raises(CheckpointError, match=r"storage archive/data/0 is truncated \(60 of 64 bytes\)"):
        load_checkpoint(source)


def safetensors_bytes(header: str, data: bytes) -> bytes:
    return struct.pack("<Q", len(header)) + header.encode() + data


@pytest.mark.parametrize("content, message", [
    (None, "not found"),
    (b"", "not a PyTorch zip checkpoint or a .safetensors file"),
    (b"hello, I am a text file\n", "not a PyTorch zip checkpoint or a .safetensors file"),
    (struct.pack("<Q", 10**6) + b"{}", "does not fit"),
    (safetensors_bytes("{]", b""), "malformed safetensors header"),
    (safetensors_bytes('{"x": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}', bytes(8)),
     "unsupported dtype 'I64'"),
    (safetensors_bytes('{"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}', bytes(8)),
     "do not hold 3 F32 elements"),
    (safetensors_bytes('{"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}', bytes(4)),
     "past the end"),
])
def test_refuses_files_that_are_not_checkpoints(tmp_path, content, message):
    source = tmp_path / "model.pth"
    if content is not None:
        source.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(source)


def test_refuses_directory_as_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint(tmp_path)


def test_refuses_non_rwkv_state_dicts(tmp_path):
    layers = {"blocks.0.ln1.weight": torch.ones(4)}
    cases = {
        "no emb.weight": {"head.weight": torch.ones(4, 4), **layers},
        "emb.weight has shape": {"emb.weight": torch.ones(4), **layers},
        "has no layers": {"emb.weight": torch.ones(4, 4)},
    }
    for message, state_dict in cases.items():
        source = save_checkpoint(state_dict, tmp_path / "model.pth")
        with pytest.raises(ConversionError, match=message):
            convert_checkpoint(source, tmp_path / "out.bin", progress=False)
    with pytest.raises(ConversionError, match="unsupported data type 'Q5_1'"):
        convert_checkpoint(source, tmp_path / "out.bin", "Q5_1", progress=False)
    assert not (tmp_path / "out.bin").exists()


# --- unwritable destinations -------------------------------------------------------------


def leftovers(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if ".tmp-" in path.name)


def test_unwritable_destinations(checkpoints, tmp_path):
    source = checkpoints["4", "pth-f32"]
    with pytest.raises(ConversionError, match="cannot create the output file"):
        convert_checkpoint(source, tmp_path / "missing" / "out.bin", progress=False)
    with pytest.raises(ConversionError, match="is a directory"):
        convert_checkpoint(source, tmp_path, progress=False)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("device", ["/dev/null", "/dev/full"])
def test_refuses_device_destination(checkpoints, device):
    if not os.path.exists(device):
        pytest.skip(f"{device} does not exist here")
    with pytest.raises(ConversionError, match="not a regular file"):
        convert_checkpoint(checkpoints["4", "pth-f32"], device, progress=False)
    assert not any(name.startswith(os.path.basename(device) + ".tmp-") for name in os.listdir("/dev"))


def test_failed_write_leaves_previous_file(checkpoints, tmp_path, monkeypatch):
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"previous model")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(ConversionError, match="No space left on device"):
        convert_checkpoint(checkpoints["6", "pth-f32"], dest, progress=False)

    assert dest.read_bytes() == b"previous model"
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs POSIX resource limits")
def test_file_size_limit_mid_write_leaves_nothing(checkpoints, tmp_path):
    import resource

    dest = tmp_path / "out.bin"
    dest.write_bytes(b"previous model")

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    result = run_tool(checkpoints["7", "pth-f32"], dest, "FP32", cwd=tmp_path, preexec_fn=limit_file_size)

    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith("error: cannot write")  # after the progress bar
    assert "File too large" in result.stderr and "Traceback" not in result.stderr
    assert dest.read_bytes() == b"previous model"
    assert leftovers(tmp_path) == []


# --- the command-line tool ---------------------------------------------------------------


def run_tool(*args, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the tool finds the package itself
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120, **kwargs)


def test_tool_writes_the_same_bytes(checkpoints, tmp_path):
    source = checkpoints["5.1", "pth-bf16"]
    convert_checkpoint(source, tmp_path / "expected.bin", "FP16", progress=False)

    result = run_tool(source, tmp_path / "out.bin", cwd=tmp_path)  # data type defaults to FP16

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.bin").read_bytes() == (tmp_path / "expected.bin").read_bytes()
    assert "RWKV v5.1" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["missing.pth", "out.bin", "FP16"], "error: checkpoint not found"),
    (["{source}", "out.bin", "Q4_0"], "error: argument data_type: invalid choice"),
    (["{source}"], "error: the following arguments are required: dest_path"),
    (["{source}", "{tmp}", "FP32"], "error: output path is a directory"),
])
def test_tool_reports_bad_input_in_one_line(checkpoints, tmp_path, args, message):
    source = checkpoints["4", "pth-f32"]
    result = run_tool(*(arg.format(source=source, tmp=tmp_path) for arg in args), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
