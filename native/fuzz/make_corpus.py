"""Writes the fuzzers' seed corpus: tiny valid model files of every architecture and type,
state files for the state-file target, text for the tokenizer target and small vocabularies
for the vocabulary target.

    RWKV_CPP_LIBRARY=build/librwkv.so python native/fuzz/make_corpus.py [native/fuzz/corpus]

Needs torch (tests/reference/checkpoints.py makes the checkpoints). The output is
deterministic for a given library and converter, so rerunning it changes nothing.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from rwkv_cpp import Model  # noqa: E402
from rwkv_cpp.convert import convert_checkpoint  # noqa: E402
from rwkv_cpp.quantize import quantize_model_file  # noqa: E402
from tests.reference.checkpoints import make_state_dict  # noqa: E402

ARCHS = ("4", "5.1", "5.2", "6", "7")
QUANTIZED = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0")
# Small enough that a fuzzer executes thousands of loads a second, large enough that every
# quantized type applies (rows of 32) and v5+ have two heads.
N_EMBD, N_VOCAB, HEAD_SIZE = 32, 64, 16

# Layers past the first bind other tensors only in v7 (v0, v1, v2); v4 shows the state of
# several layers in its simplest layout.
TWO_LAYER_ARCHS = ("4", "7")
# Models the state-file target parses against (file names in corpus/model_file).
STATE_MODELS = ("v4-FP32.bin", "v5.1-Q4_0.bin", "v5.2-FP16.bin", "v6-Q8_0.bin", "v7-FP16-2layers.bin")


def write_model_files(out: Path, work: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for arch in ARCHS:
        for n_layer in (1, 2) if arch in TWO_LAYER_ARCHS else (1,):
            suffix = "" if n_layer == 1 else "-2layers"
            pth = work / f"v{arch}{suffix}.pth"
            torch.save(make_state_dict(arch, n_embd=N_EMBD, n_layer=n_layer, n_vocab=N_VOCAB, head_size=HEAD_SIZE), pth)
            convert_checkpoint(pth, out / f"v{arch}-FP16{suffix}.bin", "FP16", progress=False)
            if n_layer == 2:
                continue  # the second layer's paths need only one type
            convert_checkpoint(pth, out / f"v{arch}-FP32.bin", "FP32", progress=False)
            for q in QUANTIZED:
                quantize_model_file(out / f"v{arch}-FP16.bin", out / f"v{arch}-{q}.bin", q, progress=False)


def write_state_files(models: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in STATE_MODELS:
        with Model(models / name, thread_count=1) as model:
            stem = name[: -len(".bin")]
            model.save_state(out / f"{stem}-fresh.state", model.init_state())
            _, state = model.eval_sequence([1, 2, 3, 4])
            model.save_state(out / f"{stem}-4tokens.state", state)


def write_texts(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    texts = {
        "ascii.txt": b"Hello, world! The quick brown fox jumps over the lazy dog.\n",
        "chinese.txt": "\u4f60\u597d\uff0c\u4e16\u754c\u3002\u6625\u7720\u4e0d\u89c9\u6653".encode(),
        "mixed.txt": "User: caf\u00e9 \u00fcber na\u00efve \U0001f600 \u0417\u0434\u0440\u0430\u0432\u0441\u0442\u0432\u0443\u0439\u0442\u0435\n\nAssistant:".encode(),
        "code.txt": b"def f(x):\n\treturn {'a': [1, 2, 3]} if x else None  # \\n\r\n",
        "bytes.bin": bytes(range(256)),
        "invalid_utf8.bin": b"\xff\xfe\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x90\x28\xbc\x00\x01",
        "spaces.txt": b"    \t\t\n\n\n      x",
        "empty.txt": b"",
    }
    for name, data in texts.items():
        (out / name).write_bytes(data)


def write_vocabs(out: Path) -> None:
    """Slices of the shipped vocabulary (each kind of literal) and one file of odd escapes."""
    out.mkdir(parents=True, exist_ok=True)
    vocab = REPO / "rwkv_cpp" / "data" / "rwkv_vocab_v20230424.txt"
    lines = [line for line in vocab.read_bytes().split(b"\r\n") if line]

    def write(name: str, chosen: list[bytes], newline: bytes = b"\n") -> None:
        (out / name).write_bytes(newline.join(chosen) + newline)

    bytes_literals = [line for line in lines if re.match(rb"\d+ b'", line)]
    non_ascii = [line for line in lines if any(c > 127 for c in line)]
    double_quoted = [line for line in lines if re.match(rb'\d+ "', line)]
    write("bytes-and-ascii.txt", lines[:300], b"\r\n")
    write("bytes-literals.txt", bytes_literals[:40] + bytes_literals[-40:])
    write("utf8.txt", lines[:256] + non_ascii[::400])
    write("double-quotes.txt", double_quoted[:30] + lines[-3:])
    write("escapes.txt", [
        rb"1 'a' 1", rb"2 'ab' 2", rb"3 'bc' 2", rb"5 r'\d' 2", rb"6 R'\'' 2", rb"7 '\101\7' 2",
        rb"8 '\u00e9' 2", rb"9 '\U0001F600' 4", rb"10 b'\xff\x00' 2", rb"11 u'x' 1", rb"12 Br'\x' 2",
        rb"13 '\q' 2", rb"14 '' 0", rb"100 'a' 1",
    ])


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "corpus"
    with tempfile.TemporaryDirectory() as work:
        write_model_files(out / "model_file", Path(work))
    write_state_files(out / "model_file", out / "state_file")
    write_texts(out / "tokenizer")
    write_vocabs(out / "vocab")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{sum(1 for f in out.rglob('*') if f.is_file())} files, {total / 1024:.0f} KiB in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
