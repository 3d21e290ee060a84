"""Bad input to every Python entry point that tests/test_bad_input.py and test_python_api.py do
not already cover (see tests/bad_input_cases.md): each float buffer argument with the wrong
type, dtype, shape, length or layout; paths that are directories or FIFOs; a disk that fills up
while convert, quantize or save_state writes (a real ENOSPC from a 200 KiB tmpfs in a private
mount namespace). Each must raise the documented exception, write nothing, leave no partial
file and leave the object usable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import rwkv_cpp
from rwkv_cpp import InvalidArgumentError, ModelFileError, Sampler, StateSizeError, WorldTokenizer
from rwkv_cpp.convert import ConversionError, convert_tensors
from rwkv_cpp.random_model import RandomCheckpoint

REPO = Path(__file__).resolve().parent.parent
# Where the rwkv_cpp under test lives (installed or the checkout): child processes import it.
PACKAGE_PARENT = Path(rwkv_cpp.__file__).resolve().parent.parent
N_VOCAB = 256


def write_random_v7(path: Path, *, n_embd: int, n_layer: int, data_type: str = "FP32") -> Path:
    """A random RWKV-7 model file made with the package's own converter (numpy only)."""
    checkpoint = RandomCheckpoint(n_embd=n_embd, n_layer=n_layer, n_vocab=N_VOCAB, head_size=32, seed=1)
    convert_tensors(checkpoint, path, data_type, progress=False)
    return path


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return write_random_v7(tmp_path_factory.mktemp("models") / "v7.bin", n_embd=64, n_layer=1)


@pytest.fixture(scope="module")
def model(model_path):
    with rwkv_cpp.Model(model_path, thread_count=1) as m:
        yield m


# ---- float buffers: every argument of every entry point ----------------------------------

def bad_buffers(n: int):
    """(label, value, exception, text in the message) for a parameter that wants n float32."""
    strided = np.zeros(2 * n, dtype=np.float32)
    return [
        ("list of floats", [0.0] * n, TypeError, "numpy.asarray"),
        ("tuple of floats", (0.0,) * n, TypeError, "numpy.asarray"),
        ("float64 array", np.zeros(n, dtype=np.float64), TypeError, "float32"),
        ("int32 array", np.zeros(n, dtype=np.int32), TypeError, "float32"),
        ("str", "state", TypeError, "float32"),
        ("float", 1.5, TypeError, "float32"),
        ("one short", np.zeros(n - 1, dtype=np.float32), StateSizeError, str(n)),
        ("one long", np.zeros(n + 1, dtype=np.float32), StateSizeError, str(n)),
        ("empty", np.zeros(0, dtype=np.float32), StateSizeError, str(n)),
        ("2-D", np.zeros((1, n), dtype=np.float32), StateSizeError, "1-D"),
        ("non-contiguous", strided[::2], InvalidArgumentError, "contiguous"),
    ]


BAD_BUFFER_LABELS = [case[0] for case in bad_buffers(4)]

# name -> (which length it wants, a call taking the bad value). "state" wants state_len floats,
# "logits" n_vocab floats.
ENTRY_POINTS = {
    "eval(state)": ("state", lambda m, s, p, v: m.eval(1, v)),
    "eval(out_state)": ("state", lambda m, s, p, v: m.eval(1, out_state=v)),
    "eval(out_logits)": ("logits", lambda m, s, p, v: m.eval(1, out_logits=v)),
    "eval_sequence(state)": ("state", lambda m, s, p, v: m.eval_sequence([1, 2], v)),
    "eval_sequence(out_state)": ("state", lambda m, s, p, v: m.eval_sequence([1, 2], out_state=v)),
    "eval_sequence(out_logits)": ("logits", lambda m, s, p, v: m.eval_sequence([1, 2], chunk_size=1, out_logits=v)),
    "eval_sequence_logits(state)": ("state", lambda m, s, p, v: m.eval_sequence_logits([1, 2], v)),
    "init_state(out)": ("state", lambda m, s, p, v: m.init_state(out=v)),
    "save_state(state)": ("state", lambda m, s, p, v: m.save_state(p, v)),
    "load_state(out)": ("state", lambda m, s, p, v: m.load_state(p, out=v)),
    "Sampler.sample(logits)": ("logits", lambda m, s, p, v: s.sample(v)),
    "Sampler.apply(logits)": ("logits", lambda m, s, p, v: s.apply(v)),
    "Sampler.apply(out)": ("logits", lambda m, s, p, v: s.apply(np.zeros(N_VOCAB, np.float32), out=v)),
    "Sampler.probs(logits)": ("logits", lambda m, s, p, v: s.probs(v)),
    "Sampler.probs(out)": ("logits", lambda m, s, p, v: s.probs(np.zeros(N_VOCAB, np.float32), out=v)),
    "generate(state)": ("state", lambda m, s, p, v: next(iter(m.generate([1, 2], state=v, max_tokens=1, seed=1)))),
}


@pytest.mark.parametrize("label", BAD_BUFFER_LABELS)
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_float_buffer_arguments(model, tmp_path, entry, label):
    which, call = ENTRY_POINTS[entry]
    n = model.state_len if which == "state" else model.logits_len
    _, value, error, needle = next(case for case in bad_buffers(n) if case[0] == label)
    state_file = tmp_path / "saved.state"
    model.save_state(state_file, model.init_state())
    before = state_file.read_bytes()
    with Sampler(N_VOCAB, seed=1) as sampler:
        with pytest.raises(error, match=needle):
            call(model, sampler, state_file, value)
    if isinstance(value, np.ndarray):
        assert not value.any(), "a refused call wrote into the buffer"
    assert state_file.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved.state"]


def test_model_and_sampler_work_after_bad_buffers(model, model_path):
    for entry, (which, call) in ENTRY_POINTS.items():
        with Sampler(N_VOCAB, seed=1) as sampler, pytest.raises((TypeError, rwkv_cpp.RwkvError)):
            call(model, sampler, "unused.state", [0.0])
    logits, state = model.eval_sequence([1, 2, 3])
    with rwkv_cpp.Model(model_path, thread_count=1) as fresh:
        expected, expected_state = fresh.eval_sequence([1, 2, 3])
    np.testing.assert_array_equal(logits, expected)
    np.testing.assert_array_equal(state, expected_state)


def test_read_only_outputs(model):
    frozen = np.zeros(model.state_len, dtype=np.float32)
    frozen.flags.writeable = False
    for call in (lambda: model.init_state(out=frozen), lambda: model.load_state("x.state", out=frozen),
                 lambda: model.eval_sequence([1], out_state=frozen)):
        with pytest.raises(InvalidArgumentError, match="read-only"):
            call()
    logits = np.zeros(N_VOCAB, dtype=np.float32)
    logits.flags.writeable = False
    with Sampler(N_VOCAB, seed=1) as sampler:
        sampler.sample(logits)  # reading is fine
        with pytest.raises(InvalidArgumentError, match="read-only"):
            sampler.probs(np.zeros(N_VOCAB, np.float32), out=logits)


# ---- token ids and text of the wrong type ------------------------------------------------

@pytest.fixture(scope="module")
def world():
    return WorldTokenizer()


@pytest.mark.parametrize("text", [None, 12, 1.5, ["a"], np.zeros(3, np.uint8)], ids=repr)
def test_encode_wrong_types(world, text):
    with pytest.raises(TypeError, match="str or bytes"):
        world.encode(text)


@pytest.mark.parametrize("ids, error", [
    ([1.5, 2.0], rwkv_cpp.InvalidTokenError),
    (["a"], rwkv_cpp.InvalidTokenError),
    ([None], rwkv_cpp.InvalidTokenError),
    (np.array([1.0, 2.0]), InvalidArgumentError),
    (np.array([True, False]), InvalidArgumentError),
    (np.zeros((2, 2), dtype=np.int64), InvalidArgumentError),
    ([-1], rwkv_cpp.InvalidTokenError),
    ([2**32], rwkv_cpp.InvalidTokenError),
    (np.array([65530], dtype=np.uint32), rwkv_cpp.InvalidTokenError),
], ids=lambda v: repr(v) if not isinstance(v, type) else v.__name__)
def test_decode_wrong_ids(world, ids, error):
    with pytest.raises(error):
        world.decode(ids)


def test_decode_non_contiguous_ids(world):
    ids = np.array(world.encode("Hello, world"), dtype=np.int64)
    strided = np.repeat(ids, 2)[::2]
    assert not strided.flags.c_contiguous
    assert world.decode(strided) == "Hello, world"


@pytest.mark.parametrize("value", [1.5, "3", None, [1]])
def test_sampler_token_and_count_types(value):
    with Sampler(N_VOCAB, seed=1) as sampler, pytest.raises(TypeError):
        sampler.accept(value)
    with pytest.raises(TypeError):
        Sampler(value)


# ---- paths that are not regular files ----------------------------------------------------

def test_directories_as_paths(model, tmp_path, model_path):
    with pytest.raises(ModelFileError, match="not a regular file"):
        model.load_state(tmp_path)
    with pytest.raises(ModelFileError, match="is a directory"):
        model.save_state(tmp_path, model.init_state())
    with pytest.raises(ModelFileError, match="not a regular file"):
        WorldTokenizer(tmp_path)
    with pytest.raises(ModelFileError, match="not a regular file"):
        rwkv_cpp.quantize(tmp_path, tmp_path / "out.bin", "Q8_0", progress=False)
    with pytest.raises(ModelFileError, match="is a directory"):
        rwkv_cpp.quantize(model_path, tmp_path, "Q8_0", progress=False)
    with pytest.raises(ConversionError, match="is a directory"):
        write_random_v7(tmp_path, n_embd=32, n_layer=1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_fifo_as_vocabulary_or_state_does_not_hang(model, tmp_path):
    """Opening a FIFO for reading waits for a writer: both readers must refuse it first."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    script = textwrap.dedent(f"""
        import rwkv_cpp
        for load in (lambda: rwkv_cpp.WorldTokenizer({str(fifo)!r}),
                     lambda: rwkv_cpp.Model({str(model.path)!r}, thread_count=1).load_state({str(fifo)!r})):
            try:
                load()
            except rwkv_cpp.ModelFileError as error:
                print(error.code, error)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(PACKAGE_PARENT)})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("514 ") and "not a regular file" in line for line in lines), lines


# ---- a disk that fills up ------------------------------------------------------------------

WRITE_IN_SMALL_DISK = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import rwkv_cpp
    from rwkv_cpp.checkpoint import load_checkpoint
    from rwkv_cpp.convert import convert_tensors

    job, source, disk = sys.argv[1], sys.argv[2], sys.argv[3]
    dest = os.path.join(disk, "out.bin")
    with open(dest, "wb") as f:
        f.write(b"previous")
    if job == "save_state":  # fill the disk first: the state's few KiB no longer fit
        with open(os.path.join(disk, "filler"), "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"x" * 4096)
            except OSError:
                pass
    try:
        if job == "convert":
            convert_tensors(load_checkpoint(source), dest, "FP32", progress=False)
        elif job == "quantize":
            rwkv_cpp.quantize(source, dest, "Q8_0", progress=False)
        else:
            with rwkv_cpp.Model(source, thread_count=1) as model:
                model.save_state(dest, model.eval(1)[1])
        result = "no error"
    except Exception as error:
        result = f"{type(error).__name__}: {error}"
    print(json.dumps({"result": result, "files": sorted(os.listdir(disk)),
                      "dest": open(dest, "rb").read()[:16].decode("latin-1")}))
""")


def run_with_small_disk(tmp_path: Path, job: str, source: Path) -> dict:
    """Runs WRITE_IN_SMALL_DISK in a private mount namespace where tmp_path/disk is a 200 KiB
    tmpfs (no root needed where user namespaces are enabled)."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        pytest.skip("needs Linux and unshare(1) for a small tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    # A sanitizer runtime preloaded into this Python (tools/sanitize.sh) goes to the inner Python
    # only: ThreadSanitizer's crashes sh.
    shell = 'mount -t tmpfs -o size=200k tmpfs "$1" || exit 77; shift; LD_PRELOAD="$INNER_PRELOAD" exec "$@"'
    command = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", shell, "sh", str(disk),
               sys.executable, "-c", WRITE_IN_SMALL_DISK, job, str(source), str(disk)]
    env = {name: value for name, value in os.environ.items() if name != "LD_PRELOAD"}
    env.update(PYTHONPATH=str(PACKAGE_PARENT), INNER_PRELOAD=os.environ.get("LD_PRELOAD", ""))
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    if proc.returncode == 77 or (proc.returncode != 0 and proc.stderr.startswith("unshare:")):
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def big_model_path(tmp_path_factory) -> Path:
    """About 1 MiB in FP32, 300 KiB in Q8_0: neither fits in the 200 KiB disk."""
    return write_random_v7(tmp_path_factory.mktemp("big") / "v7-big.bin", n_embd=128, n_layer=2)


@pytest.fixture(scope="module")
def big_checkpoint_path(tmp_path_factory) -> Path:
    from rwkv_cpp.random_model import make_v7_checkpoint, write_safetensors

    path = tmp_path_factory.mktemp("checkpoint") / "v7.safetensors"
    write_safetensors(make_v7_checkpoint(n_embd=128, n_layer=2, n_vocab=N_VOCAB, head_size=32), str(path))
    return path


@pytest.mark.parametrize("job", ["convert", "quantize", "save_state"])
def test_disk_full_leaves_no_partial_file(tmp_path, job, big_model_path, big_checkpoint_path):
    source = big_checkpoint_path if job == "convert" else big_model_path
    outcome = run_with_small_disk(tmp_path, job, source)
    expected_error = "ConversionError" if job == "convert" else "ModelFileError"
    assert outcome["result"].startswith(expected_error + ":"), outcome
    assert "No space left on device" in outcome["result"], outcome
    assert outcome["dest"] == "previous", "the previous file was damaged"
    leftovers = [name for name in outcome["files"] if name not in ("out.bin", "filler")]
    assert leftovers == [], f"partial output left behind: {leftovers}"
