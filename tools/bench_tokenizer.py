"""Benchmark: World tokenizer encode and decode speed (MB/s of UTF-8 text) of rwkv_cpp against
the reference Python TRIE_TOKENIZER (BlinkDL's rwkv package) and the Rust `rwkv-tokenizer` and
`pyrwkv-tokenizer` packages, on the same varied text. Peers that are not installed are skipped.

    python tools/bench_tokenizer.py [--megabytes 3] [--repeat 5]

Prints a table and our speed as a multiple of each peer's. Never asserts on time.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import Callable, List, Optional, Tuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import rwkv_cpp  # noqa: E402
from rwkv_cpp.tokenizers import WORLD_VOCAB_FILE  # noqa: E402

VOCAB = REPO / "rwkv_cpp" / "data" / WORLD_VOCAB_FILE

# Scripts the repository's own files lack; mixed in with its prose and source code.
MULTILINGUAL = [
    "机器学习是人工智能的一个分支。它使计算机能够从数据中学习，而无需明确编程。深度学习使用多层神经网络来处理复杂的模式，例如图像、语音和自然语言。",
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。東京都渋谷区で会議があります。",
    "대한민국은 동아시아의 한반도 남부에 위치한 민주공화국이다. 수도는 서울특별시이며, 공용어는 한국어이다.",
    "தமிழ் மொழி இந்தியாவின் தமிழ்நாடு மாநிலத்திலும் இலங்கையிலும் பேசப்படும் ஒரு திராவிட மொழியாகும். இது உலகின் மிகப் பழமையான மொழிகளில் ஒன்றாகும்.",
    "Москва — столица России, крупнейший по численности населения город страны. Широкая электрификация началась в двадцатом веке.",
    "اللغة العربية هي أكثر اللغات السامية تحدثًا، وإحدى أكثر اللغات انتشارًا في العالم.",
    "हिन्दी भारत की सबसे अधिक बोली जाने वाली भाषा है। यह देवनागरी लिपि में लिखी जाती है।",
    "Ελληνικά: Η Αθήνα είναι η πρωτεύουσα της Ελλάδας. Français : « L'été à Paris, c'est très agréable ! » Deutsch: Straßenbahnhaltestelle, Größe, Übermäßig.",
    "Emoji 😀😃😄 👍🏽 🇯🇵🇫🇷 👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, ❤️‍🔥 heart on fire, 🧑🏿‍💻 coder.",
    "    \t\n\n    indented   runs   of   spaces\t\t\ttabs\r\n\r\nand CRLF lines\n" + " " * 40 + "end\n",
]


def corpus(n_bytes: int, seed: int = 0) -> str:
    """~n_bytes of UTF-8 text: the repository's prose and source files and MULTILINGUAL, as
    paragraphs in a seeded random order."""
    paragraphs: List[str] = list(MULTILINGUAL)
    for pattern in ("*.md", "rwkv_cpp/*.py", "tests/*.py", "tools/*.py", "native/src/*.c", "native/src/*.h", "native/include/*.h"):
        for path in sorted(REPO.glob(pattern)):
            paragraphs.extend(p for p in path.read_text("utf-8", errors="replace").split("\n\n") if p.strip())
    rng = random.Random(seed)
    pieces: List[str] = []
    size = 0
    while size < n_bytes:
        piece = rng.choice(paragraphs)
        pieces.append(piece)
        size += len(piece.encode("utf-8")) + 2
    return "\n\n".join(pieces)


def timed(fn: Callable[[object], object], arg: object) -> Tuple[float, object]:
    start = time.perf_counter()
    result = fn(arg)
    return time.perf_counter() - start, result


def peers() -> List[Tuple[str, Callable[[], object], bool]]:
    """(name, factory of an object with encode(str) and decode(ids), whether encode is fast
    enough to repeat)."""
    found: List[Tuple[str, Callable[[], object], bool]] = [("rwkv_cpp", lambda: rwkv_cpp.WorldTokenizer(), True)]
    try:
        from rwkv.rwkv_tokenizer import TRIE_TOKENIZER

        found.append(("reference TRIE_TOKENIZER", lambda: TRIE_TOKENIZER(str(VOCAB)), False))
    except ImportError:
        print("skipped: the reference (pip install rwkv)")
    for module_name, label in (("rwkv_tokenizer", "rwkv-tokenizer"), ("pyrwkv_tokenizer", "pyrwkv-tokenizer")):
        try:
            module = __import__(module_name)
        except ImportError:
            print(f"skipped: {label} (pip install {label})")
            continue
        version = getattr(module, "__version__", None)
        if version is None:
            try:
                from importlib.metadata import version as dist_version

                version = dist_version(label)
            except Exception:
                version = "?"
        found.append((f"{label} {version}", lambda module=module: module.WorldTokenizer(str(VOCAB)), True))
    return found


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=float, default=3.0, help="size of the text (default 3)")
    parser.add_argument("--repeat", type=int, default=10, help="timing rounds, best kept (the reference encodes in the first only)")
    args = parser.parse_args(argv)

    text = corpus(int(args.megabytes * 1e6))
    n_bytes = len(text.encode("utf-8"))
    print(f"text: {n_bytes / 1e6:.2f} MB of UTF-8 (English prose, source code, 9 other scripts, emoji, whitespace runs)")
    print(f"library: {rwkv_cpp.library_path()}  cpu: {os.cpu_count()} threads (tokenizers run single-threaded)")

    tokenizers = []
    for name, factory, repeat_encode in peers():
        start = time.perf_counter()
        tokenizer = factory()
        tokenizers.append((name, tokenizer, time.perf_counter() - start, repeat_encode))

    # Rounds that time every tokenizer once each, best kept: a burst of load on the machine
    # then slows one round of everyone rather than all the runs of one tokenizer.
    encode_s = {name: float("inf") for name, _, _, _ in tokenizers}
    decode_s = dict(encode_s)
    ids_of = {}
    text_of = {}
    for round_index in range(args.repeat):
        for name, tokenizer, _, repeat_encode in tokenizers:
            if round_index == 0 or repeat_encode:
                seconds, ids = timed(tokenizer.encode, text)
                encode_s[name] = min(encode_s[name], seconds)
                ids_of[name] = list(ids)
            seconds, text_of[name] = timed(tokenizer.decode, ids_of[name])
            decode_s[name] = min(decode_s[name], seconds)

    rows = []
    expected = ids_of[tokenizers[0][0]]
    for name, _, load_s, _ in tokenizers:
        ok = ids_of[name] == expected and text_of[name] == text
        rows.append((name, load_s, n_bytes / encode_s[name] / 1e6, n_bytes / decode_s[name] / 1e6, len(ids_of[name]), ok))

    ours = rows[0]
    print()
    print(f"{'tokenizer':<28} {'load ms':>8} {'encode MB/s':>12} {'decode MB/s':>12} {'tokens':>9}  same ids + round trip")
    for name, load_s, enc, dec, n_tokens, ok in rows:
        print(f"{name:<28} {load_s * 1e3:8.1f} {enc:12.1f} {dec:12.1f} {n_tokens:9d}  {'yes' if ok else 'NO'}")
    print()
    print("rwkv_cpp speed as a multiple of each peer's:")
    for name, _, enc, dec, _, _ in rows[1:]:
        print(f"  vs {name:<26} encode {ours[2] / enc:6.1f}x   decode {ours[3] / dec:6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
