"""The rwkv-cpp command line, each subcommand run as a user would: in a subprocess
(`python -m rwkv_cpp`), checking output and exit status; bad input exits 2 with one line."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import rwkv_cpp
from rwkv_cpp.convert import convert_tensors
from rwkv_cpp.random_model import RandomCheckpoint, make_v7_checkpoint, write_safetensors

PACKAGE_PARENT = str(Path(rwkv_cpp.__file__).resolve().parent.parent)


def cli(*args: str, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs in a neutral directory: `python -m` puts the working directory first on sys.path,
    which from a checkout would pick the source tree instead of the package under test."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([PACKAGE_PARENT, os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "rwkv_cpp", *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=tempfile.gettempdir())


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    source = root / "random.safetensors"
    write_safetensors(make_v7_checkpoint(n_embd=64, n_layer=2, n_vocab=256, head_size=64), str(source))
    model = root / "random.bin"
    convert_tensors(RandomCheckpoint(n_embd=64, n_layer=2, n_vocab=256, head_size=64), model, "FP32", progress=False)
    text = root / "text.txt"
    text.write_text("It was the best of times, it was the worst of times.\n" * 4)
    return {"root": root, "source": source, "model": model, "text": text}


def test_help_shows_an_example_for_every_subcommand() -> None:
    result = cli("--help")
    assert result.returncode == 0
    for command in ("generate", "chat", "convert", "quantize", "bench", "perplexity", "tokenize", "info"):
        assert command in result.stdout
        sub = cli(command, "--help")
        assert sub.returncode == 0 and "example" in sub.stdout, command


def test_convert_quantize_info(files) -> None:
    out = files["root"] / "converted.bin"
    result = cli("convert", str(files["source"]), str(out), "--type", "FP16", "--quiet")
    assert result.returncode == 0, result.stderr
    quantized = files["root"] / "q.bin"
    result = cli("quantize", str(out), str(quantized), "Q8_0", "--quiet")
    assert result.returncode == 0, result.stderr
    info = cli("info", str(quantized))
    assert info.returncode == 0, info.stderr
    assert "RWKV v7" in info.stdout and "Q8_0" in info.stdout and "state floats" in info.stdout


def test_generate_streams_text_and_saves_state(files) -> None:
    state = files["root"] / "g.state"
    result = cli("generate", "Hello", "-m", str(files["model"]), "--max-tokens", "20", "--seed", "1",
                 "--state-out", str(state))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Hello") and len(result.stdout) > len("Hello\n")
    again = cli("generate", "Hello", "-m", str(files["model"]), "--max-tokens", "20", "--seed", "1")
    assert again.stdout == result.stdout  # the seed makes it reproducible
    more = cli("generate", " more", "-m", str(files["model"]), "--state-in", str(state), "--max-tokens", "5", "--no-echo")
    assert more.returncode == 0, more.stderr


def test_chat_commands(files) -> None:
    session = f"hello\n/save {files['root'] / 'c.state'}\n/reset\n/load {files['root'] / 'c.state'}\n/help\n/quit\n"
    result = cli("chat", str(files["model"]), "--max-tokens", "8", "--seed", "1", stdin=session)
    assert result.returncode == 0, result.stderr
    assert "Assistant:" in result.stdout and "(saved to" in result.stdout and "(loaded" in result.stdout
    assert "/reset" in result.stdout  # the help text


def test_tokenize_round_trip() -> None:
    result = cli("tokenize", "Hello, world")
    assert result.returncode == 0
    ids = result.stdout.split()
    assert all(i.isdigit() for i in ids)
    back = cli("tokenize", "--decode", " ".join(ids))
    assert back.stdout == "Hello, world\n"


def test_perplexity(files) -> None:
    result = cli("perplexity", str(files["model"]), str(files["text"]), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "perplexity" in result.stdout


@pytest.mark.parametrize("args, message", [
    (("generate", "x", "-m", "/nonexistent/model.bin"), "cannot open"),
    (("info", "/etc/hostname"), ""),
    (("convert", "/nonexistent.pth", "out.bin"), ""),
    (("quantize", "/nonexistent.bin", "out.bin", "Q5_1"), ""),
    (("perplexity", "/nonexistent.bin", "/nonexistent.txt"), ""),
    (("tokenize", "--decode", "not numbers"), "token ids"),
    (("bench",), "--shape"),
])
def test_bad_input_exits_2_with_one_line(files, args, message) -> None:
    result = cli(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert message in lines[0]


def test_generate_uses_the_shipped_demo_model() -> None:
    """The README's first command: no model given, the Shakespeare demo model answers."""
    result = cli("generate", "ROMEO:", "--max-tokens", "60", "--seed", "1", "--temperature", "0.8")
    assert result.returncode == 0, result.stderr
    text = result.stdout[len("ROMEO:"):]
    assert result.stdout.startswith("ROMEO:") and len(text) > 20
    letters = sum(c.isalpha() or c in " \n,.;:'!?-" for c in text)
    assert letters / len(text) > 0.9, text  # words and lines, not byte noise
