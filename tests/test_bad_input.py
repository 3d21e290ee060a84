"""Bad input through rwkv_cpp.Model: broken model files (truncated at many offsets, random
bytes flipped, absurd header values, missing / duplicated / renamed tensors) and bad
arguments (tokens out of range, state buffers of the wrong size). Every case must end in a
clean exception (an RwkvError subclass carrying the C library's message) or a model that
evaluates; never a crash or a hang.

Compared against: the file format itself (rwkv.cpp's tiny models, parsed here independently
of the library to pick offsets and build variants). The loops over hundreds of corrupted
files run in a subprocess, so a segfault fails the test (naming the case) instead of
killing pytest. tests/bad_input_cases.md lists every case and its expected result.
"""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
from pathlib import Path
from typing import List, NamedTuple, Optional, Tuple

import numpy as np
import pytest

import rwkv_cpp

REPO = Path(__file__).resolve().parent.parent
# Where the rwkv_cpp under test lives (installed or the checkout): child processes import it.
PACKAGE_PARENT = Path(rwkv_cpp.__file__).resolve().parent.parent
MAGIC = 0x67676D66
HEADER_BYTES = 24
TYPE_BYTES = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 7: (32, 22), 8: (32, 24), 9: (32, 34)}

# Seeds, so a failure reproduces; the counts keep the whole file well under a minute.
TRUNCATION_SEED = 1234
RANDOM_TRUNCATIONS = 200
MUTATION_SEED = 4321
MUTATIONS_PER_FILE = 1000
WORKER_TIMEOUT_S = 300


def find_fixtures() -> Optional[Path]:
    """rwkv.cpp's tiny models: $RWKV_CPP_FIXTURES, tests/fixtures/rwkvcpp, or the shared copy."""
    for candidate in (
        os.environ.get("RWKV_CPP_FIXTURES"),
        REPO / "tests" / "fixtures" / "rwkvcpp",
        REPO.parent / "shared" / "fixtures" / "rwkvcpp",
    ):
        if candidate and (Path(candidate) / "tiny-rwkv-4v0-660K-FP16.bin").is_file():
            return Path(candidate)
    return None


FIXTURES = find_fixtures()
V4_FP16 = FIXTURES / "tiny-rwkv-4v0-660K-FP16.bin" if FIXTURES else None
V5_FP16 = FIXTURES / "tiny-rwkv-5v2-730K-FP16.bin" if FIXTURES else None


# ---- the file format, parsed independently of the library ----


class Record(NamedTuple):
    """One tensor record: where it starts, its fields, and where its data lies."""

    start: int
    n_dims: int
    type: int
    dims: Tuple[int, ...]  # ggml order (row length first)
    name: str
    data_start: int
    data_end: int

    @property
    def name_end(self) -> int:
        return self.data_start


def parse(data: bytes) -> Tuple[List[int], List[Record]]:
    """Header (six int32) and tensor records of a well-formed file."""
    header = list(struct.unpack_from("<6i", data, 0))
    records, pos = [], HEADER_BYTES
    while pos < len(data):
        n_dims, key_length, tensor_type = struct.unpack_from("<3i", data, pos)
        dims = struct.unpack_from(f"<{n_dims}i", data, pos + 12)
        name_start = pos + 12 + 4 * n_dims
        name = data[name_start:name_start + key_length].decode()
        block, block_bytes = TYPE_BYTES[tensor_type]
        n_bytes = int(np.prod(dims)) // block * block_bytes
        data_start = name_start + key_length
        records.append(Record(pos, n_dims, tensor_type, dims, name, data_start, data_start + n_bytes))
        pos = data_start + n_bytes
    assert pos == len(data)
    return header, records


def record_bytes(data: bytes, record: Record) -> bytes:
    return data[record.start:record.data_end]


def rebuild(header: List[int], parts: List[bytes]) -> bytes:
    return struct.pack("<6i", *header) + b"".join(parts)


def with_header(data: bytes, **fields: int) -> bytes:
    """data with header fields replaced (names: magic, version, n_vocab, n_embed, n_layer, data_type)."""
    names = ["magic", "version", "n_vocab", "n_embed", "n_layer", "data_type"]
    header = list(struct.unpack_from("<6i", data, 0))
    for key, value in fields.items():
        header[names.index(key)] = value if value < 2**31 else value - 2**32
    return struct.pack("<6i", *header) + data[HEADER_BYTES:]


def structure_offsets(data: bytes) -> List[int]:
    """Every byte that is not tensor data: the header, each record's fields and name."""
    _, records = parse(data)
    offsets = list(range(HEADER_BYTES))
    for r in records:
        offsets.extend(range(r.start, r.name_end))
    return offsets


# ---- the subprocess worker: loads many corrupted files, reports each outcome ----


def try_load(path: str) -> dict:
    """Loads path and, if that works, evaluates once. Never raises."""
    import rwkv_cpp

    result: dict = {}
    try:
        model = rwkv_cpp.Model(path, thread_count=1)
    except rwkv_cpp.RwkvError as e:
        return {"load": "error", "class": type(e).__name__, "code": e.code, "message": str(e)}
    except Exception as e:  # noqa: BLE001 - anything else is a bug the parent reports
        return {"load": "unexpected", "class": type(e).__name__, "message": repr(e)}
    with model:
        result["load"] = "ok"
        try:
            logits, state = model.eval(min(66, model.n_vocab - 1))
            logits, state = model.eval_sequence([1, 2, 3], state)
            result["eval"] = "ok"
            result["finite"] = bool(np.isfinite(logits).all())
        except rwkv_cpp.RwkvError as e:
            result["eval"] = "error"
            result["message"] = str(e)
        except Exception as e:  # noqa: BLE001
            result["eval"] = "unexpected"
            result["message"] = repr(e)
    return result


def worker(spec_path: str) -> None:
    """Runs the cases of a spec file (JSON): {"source", "work", "truncate": [offsets]} or
    {"source", "work", "mutate": [[[offset, byte], ...], ...]}. Prints "START i" before and
    "RESULT {json}" after each case, flushed, so the parent can name a case that crashed."""
    import faulthandler

    faulthandler.enable()
    spec = json.loads(Path(spec_path).read_text())
    original = Path(spec["source"]).read_bytes()
    work = spec["work"]
    Path(work).write_bytes(original)
    out = sys.stdout
    if "truncate" in spec:
        # Longest first, so one copy is cut shorter and shorter.
        for i, offset in sorted(enumerate(spec["truncate"]), key=lambda item: -item[1]):
            os.truncate(work, offset)
            print(f"START {i}", file=out, flush=True)
            print("RESULT " + json.dumps({"i": i, **try_load(work)}), file=out, flush=True)
    else:
        with open(work, "r+b") as f:
            for i, mutation in enumerate(spec["mutate"]):
                for offset, value in mutation:
                    f.seek(offset)
                    f.write(bytes([value]))
                f.flush()
                print(f"START {i}", file=out, flush=True)
                print("RESULT " + json.dumps({"i": i, **try_load(work)}), file=out, flush=True)
                for offset, _ in mutation:
                    f.seek(offset)
                    f.write(original[offset:offset + 1])
                f.flush()


def run_worker(tmp_path: Path, spec: dict) -> List[dict]:
    """Runs worker() in a subprocess; fails the test on a crash or hang, naming the case."""
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_PARENT), env.get("PYTHONPATH")]))
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "worker", str(spec_path)],
            capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, env=env,
        )
    except subprocess.TimeoutExpired as e:
        started = [line for line in (e.stdout or b"").decode(errors="replace").splitlines() if line.startswith("START")]
        pytest.fail(f"worker hung (> {WORKER_TIMEOUT_S} s); last case started: {started[-1:] or 'none'}")
    results, last_started = [], None
    for line in proc.stdout.splitlines():
        if line.startswith("START "):
            last_started = int(line.split()[1])
        elif line.startswith("RESULT "):
            results.append(json.loads(line[len("RESULT "):]))
    if proc.returncode != 0:
        key = "truncate" if "truncate" in spec else "mutate"
        case = spec[key][last_started] if last_started is not None else None
        pytest.fail(
            f"worker died with exit status {proc.returncode} during case {last_started} ({key} {case}); "
            f"stderr:\n{proc.stderr[-3000:]}"
        )
    assert len(results) == len(spec["truncate" if "truncate" in spec else "mutate"])
    return sorted(results, key=lambda r: r["i"])


# ---- tests ----

needs_fixtures = pytest.mark.skipif(FIXTURES is None, reason="rwkv.cpp tiny model fixtures not found (set RWKV_CPP_FIXTURES)")


def truncation_offsets(data: bytes) -> List[int]:
    """Every offset in the header and the first three tensor records (fields, name and the
    first and last bytes of their data), a few around each later record start, and random
    ones."""
    _, records = parse(data)
    offsets = set(range(0, records[3].start))
    offsets -= set(range(records[0].data_start + 64, records[0].data_end - 64))  # the middle of emb's data
    for r in records[3:]:
        offsets.update(range(r.start - 2, min(r.name_end + 2, len(data))))
    rng = random.Random(TRUNCATION_SEED)
    offsets.update(rng.randrange(len(data)) for _ in range(RANDOM_TRUNCATIONS))
    offsets.discard(len(data))
    return sorted(offsets)


@needs_fixtures
def test_truncated_files_raise(tmp_path):
    """A file cut anywhere is refused with a clean exception: mostly "file truncated at
    byte N", and "model parameter ... not found" when the cut falls between tensors."""
    data = V4_FP16.read_bytes()
    offsets = truncation_offsets(data)
    results = run_worker(tmp_path, {"source": str(V4_FP16), "work": str(tmp_path / "cut.bin"), "truncate": offsets})
    classes = {"ModelFileError", "ModelFormatError"}
    bad = [(offsets[r["i"]], r) for r in results if r["load"] != "error" or r["class"] not in classes or not r["message"]]
    assert not bad, f"{len(bad)} truncations not refused cleanly, e.g. {bad[:3]}"
    assert len(results) > 1000
    # The message says what is wrong: a cut inside a record names the truncation.
    _, records = parse(data)
    for r in results:
        offset = offsets[r["i"]]
        if offset < HEADER_BYTES:
            assert "too short" in r["message"]
        elif any(rec.start < offset < rec.data_end for rec in records):
            assert "truncated" in r["message"], (offset, r["message"])


def mutations(data: bytes, seed: int, count: int) -> List[List[List[int]]]:
    """count mutations of 1-4 bytes each; most hit structure (header, record fields, names),
    the rest anywhere; new values favour extremes (0x00, 0xff, 0x7f, 0x80)."""
    rng = random.Random(seed)
    structure = structure_offsets(data)
    result = []
    for _ in range(count):
        mutation = []
        for _ in range(rng.randint(1, 4)):
            offset = rng.choice(structure) if rng.random() < 0.6 else rng.randrange(len(data))
            value = rng.choice([0x00, 0xFF, 0x7F, 0x80]) if rng.random() < 0.3 else rng.randrange(256)
            if value == data[offset]:
                value ^= 0x01
            mutation.append([offset, value])
        result.append(mutation)
    return result


def single_byte_changes(data: bytes, n_records: int) -> List[List[List[int]]]:
    """Every byte of the header and the first n_records records' fields and names set to
    each of 0x00, 0xff, 0x7f, 0x80 and its value + 1."""
    _, records = parse(data)
    offsets = list(range(HEADER_BYTES)) + [o for r in records[:n_records] for o in range(r.start, r.name_end)]
    cases = []
    for offset in offsets:
        for value in sorted({0x00, 0xFF, 0x7F, 0x80, (data[offset] + 1) & 0xFF} - {data[offset]}):
            cases.append([[offset, value]])
    return cases


def check_mutation_results(which: str, cases, results) -> None:
    """Each result is a clean refusal, or a load whose evaluation worked or raised RwkvError."""
    unexpected = [(cases[r["i"]], r) for r in results if r["load"] == "unexpected" or r.get("eval") == "unexpected"]
    assert not unexpected, f"{len(unexpected)} mutations raised something other than RwkvError, e.g. {unexpected[:3]}"
    refused = [r for r in results if r["load"] == "error"]
    assert all(r["message"] for r in refused)
    loaded = [r for r in results if r["load"] == "ok"]
    assert all(r["eval"] in ("ok", "error") for r in loaded)
    # Refusals must be common, or the mutations are not reaching the checks; float files
    # must also load sometimes (quantized ones are refused while unsupported).
    assert len(refused) > len(results) // 10, (len(refused), len(loaded))
    assert loaded or "Q5" in which, (len(refused), len(loaded))
    print(f"{which}: {len(refused)} refused, {len(loaded)} loaded "
          f"({sum(not r.get('finite', True) for r in loaded)} with non-finite logits)")


MUTATED_FILES = ["4v0-660K-FP16", "5v2-730K-FP16", "4v0-660K-Q5_1", "5v2-730K-Q5_0"]


@needs_fixtures
@pytest.mark.parametrize("which", MUTATED_FILES)
def test_flipped_bytes_load_or_raise(tmp_path, which):
    """Random bytes changed: the file loads (then evaluates or raises cleanly) or is refused
    with an RwkvError. Logits may be anything (NaN included) but nothing crashes."""
    source = FIXTURES / f"tiny-rwkv-{which}.bin"
    data = source.read_bytes()
    count = MUTATIONS_PER_FILE if "FP16" in which else MUTATIONS_PER_FILE // 4
    cases = mutations(data, MUTATION_SEED + MUTATED_FILES.index(which), count)
    results = run_worker(tmp_path, {"source": str(source), "work": str(tmp_path / "mutated.bin"), "mutate": cases})
    check_mutation_results(which, cases, results)


@needs_fixtures
@pytest.mark.parametrize("which", ["4v0-660K-FP16", "5v2-730K-FP16"])
def test_every_header_byte_changed(tmp_path, which):
    """Each byte of the header and the first 8 tensor records changed alone, to five values."""
    source = FIXTURES / f"tiny-rwkv-{which}.bin"
    cases = single_byte_changes(source.read_bytes(), 8)
    results = run_worker(tmp_path, {"source": str(source), "work": str(tmp_path / "mutated.bin"), "mutate": cases})
    check_mutation_results(which + " single bytes", cases, results)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_missing_file(tmp_path):
    import rwkv_cpp

    path = tmp_path / "nope.bin"
    with pytest.raises(rwkv_cpp.ModelFileError) as info:
        rwkv_cpp.Model(path)
    assert info.value.code == 514 and "nope.bin" in str(info.value)


def test_directory(tmp_path):
    import rwkv_cpp

    with pytest.raises(rwkv_cpp.ModelFileError, match="not a regular file") as info:
        rwkv_cpp.Model(tmp_path)
    assert info.value.code == 514


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_does_not_hang(tmp_path):
    """Opening a FIFO waits for a writer unless the library opens it non-blocking; in a
    subprocess so a hang fails the test instead of stalling pytest."""
    fifo = tmp_path / "fifo.bin"
    os.mkfifo(fifo)
    code = (
        "import sys, rwkv_cpp\n"
        "try:\n    rwkv_cpp.Model(sys.argv[1])\n"
        "except rwkv_cpp.ModelFileError as e:\n    print(e.code, e)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(PACKAGE_PARENT), os.environ.get("PYTHONPATH")])))
    try:
        proc = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True, text=True, timeout=30, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("loading a FIFO hangs")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("514 ") and "not a regular file" in proc.stdout


@pytest.mark.parametrize("n_bytes", [0, 1, 23])
def test_file_shorter_than_header(tmp_path, n_bytes):
    import rwkv_cpp

    path = write(tmp_path, "short.bin", struct.pack("<6i", MAGIC, 101, 256, 64, 1, 0)[:n_bytes])
    with pytest.raises(rwkv_cpp.RwkvError, match=f"too short.*{n_bytes} bytes"):
        rwkv_cpp.Model(path)


# (header fields, the message must contain). All are ModelFormatError.
ABSURD_HEADERS = [
    ({"magic": 0x46554747}, "magic 0x46554747"),
    ({"version": 99}, "version 99"),
    ({"version": 102}, "version 102"),
    ({"version": 2**32 - 1}, "version -1"),
    ({"n_vocab": 0}, "n_vocab 0"),
    ({"n_vocab": 2**31 - 1}, "n_vocab 2147483647"),
    ({"n_embed": 0}, "n_embed 0"),
    ({"n_embed": 2**32 - 1}, "n_embed 4294967295"),
    ({"n_layer": 0}, "n_layer 0"),
    ({"n_layer": 2**31}, "n_layer 2147483648"),
    ({"data_type": 42}, "data type 42"),
    ({"n_embed": 64}, "does not match"),
    ({"n_vocab": 255}, "emb.weight"),
    ({"n_layer": 3}, "layer 3"),
    ({"n_layer": 5}, "blocks.4.ln1.weight not found"),
]


@needs_fixtures
@pytest.mark.parametrize("fields, message", ABSURD_HEADERS, ids=[f"{k}={v}" for (f, _) in ABSURD_HEADERS for k, v in f.items()])
def test_absurd_header(tmp_path, fields, message):
    import rwkv_cpp

    path = write(tmp_path, "header.bin", with_header(V4_FP16.read_bytes(), **fields))
    with pytest.raises(rwkv_cpp.ModelFormatError) as info:
        rwkv_cpp.Model(path)
    assert message in str(info.value)
    assert info.value.code != 0


def edit_tensors(data: bytes, edit) -> bytes:
    """Rebuilds data with edit(list of (record, bytes)) -> list of bytes applied."""
    header, records = parse(data)
    return rebuild(header, edit([(r, record_bytes(data, r)) for r in records]))


def renamed(record: Record, raw: bytes, new_name: str) -> bytes:
    """raw (one record) with its name replaced by new_name."""
    name_start = 12 + 4 * record.n_dims  # within raw
    fields = struct.pack("<3i", record.n_dims, len(new_name), record.type) + raw[12:name_start]
    return fields + new_name.encode() + raw[name_start + len(record.name):]


# (description, edit of the tensor list, message must contain)
TENSOR_EDITS = [
    ("missing", lambda rs: [raw for r, raw in rs if r.name != "blocks.2.att.key.weight"], "blocks.2.att.key.weight not found"),
    ("missing-head", lambda rs: [raw for r, raw in rs if r.name != "head.weight"], "head.weight not found"),
    ("duplicated", lambda rs: [raw for _, raw in rs] + [rs[5][1]], "appears twice"),
    ("renamed", lambda rs: [renamed(r, raw, "blocks.1.ffn.kez.weight") if r.name == "blocks.1.ffn.key.weight" else raw for r, raw in rs],
     "blocks.1.ffn.key.weight not found"),
    ("extra-layer", lambda rs: [raw for _, raw in rs] + [renamed(r, raw, r.name.replace("blocks.3.", "blocks.4.")) for r, raw in rs if r.name.startswith("blocks.3.")],
     "layer 4"),
    ("unknown-type", lambda rs: [raw[:8] + struct.pack("<i", 42) + raw[12:] if r.name == "ln_out.bias" else raw for r, raw in rs],
     "unknown data type 42"),
    ("no-tensors", lambda rs: [], "no tensors"),
]


@needs_fixtures
@pytest.mark.parametrize("what, edit, message", TENSOR_EDITS, ids=[t[0] for t in TENSOR_EDITS])
def test_tensor_table_edits(tmp_path, what, edit, message):
    import rwkv_cpp

    path = write(tmp_path, f"{what}.bin", edit_tensors(V4_FP16.read_bytes(), edit))
    with pytest.raises(rwkv_cpp.ModelFormatError) as info:
        rwkv_cpp.Model(path)
    assert message in str(info.value)


@pytest.fixture(scope="module")
def model():
    import rwkv_cpp

    if FIXTURES is None:
        pytest.skip("rwkv.cpp tiny model fixtures not found")
    with rwkv_cpp.Model(V4_FP16, thread_count=1) as m:
        yield m


@needs_fixtures
@pytest.mark.parametrize("token", [256, 257, 2**31, 2**32, 2**64, -1, -(2**31)])
def test_token_out_of_range(model, token):
    import rwkv_cpp

    with pytest.raises(rwkv_cpp.InvalidTokenError, match=str(token)):
        model.eval(token)
    with pytest.raises(rwkv_cpp.InvalidTokenError, match="index 2"):
        model.eval_sequence([1, 2, token, 3])


@needs_fixtures
def test_token_array_out_of_range(model):
    import rwkv_cpp

    for tokens in (np.array([1, 256], dtype=np.uint32), np.array([1, -1], dtype=np.int64), np.array([70000], dtype=np.int32)):
        with pytest.raises(rwkv_cpp.InvalidTokenError):
            model.eval_sequence(tokens)
    with pytest.raises(rwkv_cpp.InvalidArgumentError):
        model.eval_sequence([])


@needs_fixtures
@pytest.mark.parametrize("length", [0, 1, 2559, 2561, 5120])
def test_state_of_wrong_size(model, length):
    import rwkv_cpp

    assert model.state_len == 2560
    state = np.zeros(length, dtype=np.float32)
    with pytest.raises(rwkv_cpp.StateSizeError, match=f"{length}"):
        model.eval(1, state)
    with pytest.raises(rwkv_cpp.StateSizeError):
        model.eval(1, out_state=state)
    with pytest.raises(rwkv_cpp.StateSizeError):
        model.eval_sequence([1, 2], state)
    with pytest.raises(rwkv_cpp.StateSizeError):
        model.init_state(out=state)


@needs_fixtures
def test_state_of_wrong_layout(model):
    import rwkv_cpp

    with pytest.raises(rwkv_cpp.StateSizeError):
        model.eval(1, np.zeros((2, 1280), dtype=np.float32))  # right count, wrong shape
    with pytest.raises(TypeError, match="float32"):
        model.eval(1, np.zeros(2560, dtype=np.float64))
    with pytest.raises(rwkv_cpp.InvalidArgumentError, match="contiguous"):
        model.eval(1, np.zeros(5120, dtype=np.float32)[::2])
    with pytest.raises(rwkv_cpp.StateSizeError):
        model.eval(1, out_logits=np.zeros(255, dtype=np.float32))


@needs_fixtures
def test_model_still_works_after_errors(model):
    """Errors leave the model usable: same result as a fresh one."""
    import rwkv_cpp

    with pytest.raises(rwkv_cpp.InvalidTokenError):
        model.eval(300)
    logits, _ = model.eval(34)
    with rwkv_cpp.Model(V4_FP16, thread_count=1) as fresh:
        expected, _ = fresh.eval(34)
    np.testing.assert_array_equal(logits, expected)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "worker":
    worker(sys.argv[2])
