"""Tokenizers against their references: WorldTokenizer against BlinkDL's TRIE_TOKENIZER (the
rwkv package), NeoxTokenizer against Hugging Face `tokenizers` on the same 20B json; round
trips, the streaming decoder, and clear errors for bad input."""

from __future__ import annotations

import random
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import rwkv_cpp
from rwkv_cpp import ByteTokenizer, NeoxTokenizer, StreamDecoder, WorldTokenizer, tokenizer_for_vocab_size
from rwkv_cpp.errors import InvalidArgumentError, InvalidTokenError, ModelFileError, ModelFormatError

REPO = Path(__file__).resolve().parent.parent
SHIPPED_WORLD_VOCAB = Path(rwkv_cpp.__file__).resolve().parent / "data" / "rwkv_vocab_v20230424.txt"
SHIPPED_NEOX_JSON = REPO / "rwkv_cpp" / "data" / "20B_tokenizer.json"
SHARED_DATA = REPO.parent / "shared" / "data"
# The reference gets the project's shared copy of the vocabulary where there is one.
REFERENCE_WORLD_VOCAB = SHARED_DATA / "rwkv_vocab_v20230424.txt" if (SHARED_DATA / "rwkv_vocab_v20230424.txt").is_file() else SHIPPED_WORLD_VOCAB
WORLD_N_VOCAB = 65530  # ids 1..65529 in the file; 0 is end of text

SAMPLES = {
    "english": (
        "It was the best of times, it was the worst of times, it was the age of wisdom, it was "
        "the age of foolishness. Mr. O'Neill's \"quoted\" words—an em dash; ellipsis… and 3.14159, "
        "1,000,000 or 2024-05-09T12:34:56Z. Don't stop: can't, won't, shouldn't've!"
    ),
    "chinese": "机器学习是人工智能的一个分支。它使计算机能够从数据中学习，而无需明确编程。深度学习使用多层神经网络。",
    "japanese": "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。カタカナ、ひらがな、漢字、ｈａｌｆｗｉｄｔｈ ｶﾀｶﾅ。",
    "tamil": "தமிழ் மொழி இந்தியாவின் தமிழ்நாடு மாநிலத்திலும் இலங்கையிலும் பேசப்படும் ஒரு திராவிட மொழியாகும்.",
    "korean_arabic_hindi": "대한민국은 민주공화국이다. اللغة العربية هي أكثر اللغات السامية تحدثًا. हिन्दी भारत की भाषा है।",
    "cyrillic_greek_accents": "Москва — столица России. Η Αθήνα είναι η πρωτεύουσα. Straße, Größe, naïve café, Ångström.",
    "emoji": (
        "😀😃😄 👍🏽👍🏿 🇯🇵🇫🇷🇺🇸 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️‍🔥 🧑🏿‍💻 👩🏻‍🔬 🫠 🫶🏼 ©️ ™ 1️⃣ #️⃣ "
        "a\u200db \ufeff zero\u200bwidth e\u0301 combining"
    ),
    "code": (
        "def fib(n: int) -> int:\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\n"
        "#include <stdio.h>\nint main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n"
        "<div class=\"x\">&amp;&lt;</div> SELECT * FROM t WHERE a >= 1; $x = @{ 'k' = \"v\" }\n"
    ),
    "whitespace": (
        " " * 1 + "x" + " " * 2 + "x" + " " * 7 + "x" + " " * 16 + "x" + " " * 64 + "x" + " " * 127
        + "x" + " " * 128 + "x" + " " * 129 + "x" + " " * 300 + "\t\t\t\n\n\n\r\n\r\n \n \t \u3000\u00a0 end"
    ),
}

# Byte strings that are not valid UTF-8: lone continuation bytes, truncated sequences,
# overlong forms, encoded surrogates, bytes never used in UTF-8.
INVALID_UTF8 = [
    b"\x80", b"\xbf", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
    b"\xf8\x88\x80\x80\x80", b"\xfe\xff", b"abc\xe4\xb8", b"\xe4\xb8abc", b"\xf0\x9f\x98",
    b"\xc3\x28", b"\xff" * 10, "世界".encode()[:-1] + b"\xff", b"\x00\x01\x02 \x7f\x80",
]


def source_code() -> str:
    """The repository's own source files: real code, comments and docstrings."""
    parts = []
    for pattern in ("rwkv_cpp/*.py", "native/src/*.c", "native/include/*.h"):
        parts.extend(path.read_text("utf-8", errors="replace") for path in sorted(REPO.glob(pattern)))
    return "\n".join(parts)


def varied_text(seed: int = 0) -> str:
    """Every sample and the source code, shuffled into one text of about 0.5 MB."""
    rng = random.Random(seed)
    pieces = list(SAMPLES.values()) * 40
    rng.shuffle(pieces)
    return source_code() + "\n\n".join(pieces)


def random_bytes(rng: random.Random, max_len: int = 64) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, max_len)))


@pytest.fixture(scope="module")
def reference():
    rwkv_tokenizer = pytest.importorskip("rwkv.rwkv_tokenizer", reason="the reference needs the rwkv package")
    return rwkv_tokenizer.TRIE_TOKENIZER(str(REFERENCE_WORLD_VOCAB))


@pytest.fixture(scope="module")
def world():
    return WorldTokenizer()


@pytest.fixture(scope="module")
def text():
    return varied_text()


# ---- World: identical ids to the reference ----


def test_shipped_vocabulary_is_the_reference_file():
    if not (SHARED_DATA / "rwkv_vocab_v20230424.txt").is_file():
        pytest.skip("no shared copy of the vocabulary to compare with")
    assert SHIPPED_WORLD_VOCAB.read_bytes() == (SHARED_DATA / "rwkv_vocab_v20230424.txt").read_bytes()


def test_world_loads(world):
    assert world.vocab_size == WORLD_N_VOCAB
    assert Path(world.path).resolve() == SHIPPED_WORLD_VOCAB
    assert WorldTokenizer(REFERENCE_WORLD_VOCAB).encode("Hello 世界") == [33155, 33, 10267, 14610]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_world_matches_reference_per_script(world, reference, name):
    sample = SAMPLES[name]
    assert world.encode(sample) == reference.encode(sample)
    assert world.encode(sample.encode("utf-8")) == reference.encode(sample)


def test_world_matches_reference_on_varied_text(world, reference, text):
    ids = world.encode(text)
    assert ids == reference.encode(text)
    assert len(ids) > 100_000


def test_world_matches_reference_on_every_byte(world, reference):
    for byte in range(256):
        assert world.encode(bytes([byte])) == reference.encodeBytes(bytes([byte])), byte
    everything = bytes(range(256))
    assert world.encode(everything) == reference.encodeBytes(everything)
    assert world.encode(everything[::-1] * 3) == reference.encodeBytes(everything[::-1] * 3)


def test_world_matches_reference_on_invalid_utf8(world, reference):
    for data in INVALID_UTF8:
        assert world.encode(data) == reference.encodeBytes(data), data


def test_world_matches_reference_on_random_bytes(world, reference, text):
    rng = random.Random(1)
    for _ in range(500):
        data = random_bytes(rng)
        assert world.encode(data) == reference.encodeBytes(data), data
    # Slices of real text at arbitrary byte offsets: characters cut in half at both ends.
    encoded = text.encode("utf-8")
    for _ in range(300):
        start = rng.randrange(len(encoded))
        data = encoded[start:start + rng.randint(1, 200)]
        assert world.encode(data) == reference.encodeBytes(data), data


def test_world_empty_input(world, reference):
    assert world.encode("") == [] == reference.encode("")
    assert world.encode(b"") == []
    assert world.decode([]) == ""
    assert world.decode_bytes([]) == b""


def test_world_accepts_bytes_like(world):
    data = "bytes-like 世界".encode("utf-8")
    expected = world.encode(data)
    assert world.encode(bytearray(data)) == expected
    assert world.encode(memoryview(data)) == expected
    with pytest.raises(TypeError):
        world.encode(123)
    with pytest.raises(UnicodeEncodeError):  # a lone surrogate has no UTF-8, as in the reference
        world.encode("\ud800")


# ---- World: decoding ----


def test_world_round_trip_valid_utf8(world, text):
    assert world.decode(world.encode(text)) == text
    for sample in SAMPLES.values():
        assert world.decode(world.encode(sample)) == sample


def test_world_decode_bytes_round_trip_arbitrary_bytes(world):
    rng = random.Random(2)
    for _ in range(300):
        data = random_bytes(rng, 300)
        assert world.decode_bytes(world.encode(data)) == data
    for data in INVALID_UTF8:
        assert world.decode_bytes(world.encode(data)) == data
        assert world.decode(world.encode(data)) == data.decode("utf-8", errors="replace")


def test_world_decode_matches_reference(world, reference):
    rng = random.Random(3)
    for _ in range(100):
        ids = [rng.randrange(1, WORLD_N_VOCAB) for _ in range(rng.randint(0, 100))]
        assert world.decode_bytes(ids) == reference.decodeBytes(ids)
    every_id = list(range(1, WORLD_N_VOCAB))
    assert world.decode_bytes(every_id) == reference.decodeBytes(every_id)


def test_world_decode_accepts_numpy(world):
    ids = world.encode("numpy 数组")
    for dtype in (np.int64, np.int32, np.uint32, np.uint16):
        assert world.decode(np.array(ids, dtype=dtype)) == "numpy 数组"
    assert world.decode(np.array(ids, dtype=np.int64)[::2]) == world.decode(ids[::2])
    assert world.decode(np.array([], dtype=np.int64)) == ""


def test_world_end_of_text_id_decodes_to_nothing(world):
    assert world.decode([0]) == ""
    assert world.decode([33155, 0, 33]) == "Hello "


def test_world_threads(world, text):
    expected = world.encode(text)
    chunks = [text] * 8
    with ThreadPoolExecutor(4) as pool:
        for ids in pool.map(world.encode, chunks):
            assert ids == expected


# ---- streaming ----


def stream_pieces(tokenizer, ids):
    stream = StreamDecoder(tokenizer)
    pieces = [stream.feed(i) for i in ids]
    return pieces, stream.flush()


@pytest.mark.parametrize("tokenizer", [WorldTokenizer, ByteTokenizer], ids=["world", "bytes"])
def test_stream_decoder_never_splits_a_character(tokenizer):
    tokenizer = tokenizer()
    text = SAMPLES["emoji"] + SAMPLES["chinese"] + SAMPLES["tamil"] + SAMPLES["japanese"]
    ids = tokenizer.encode(text)
    # The test means something only if some tokens hold part of a character.
    partial = [i for i in ids if _is_partial(tokenizer.decode_bytes([i]))]
    assert partial, "no token splits a character"
    pieces, tail = stream_pieces(tokenizer, ids)
    assert "".join(pieces) + tail == text == tokenizer.decode(ids)
    assert tail == ""
    for piece in pieces:
        assert "\ufffd" not in piece
        piece.encode("utf-8")  # no lone surrogates either
    assert "" in pieces  # held back while a character was incomplete


def _is_partial(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def test_stream_decoder_on_varied_text(world, text):
    ids = world.encode(text)
    pieces, tail = stream_pieces(world, ids)
    assert "".join(pieces) + tail == text


def test_stream_decoder_invalid_sequences():
    tokenizer = ByteTokenizer()
    stream = StreamDecoder(tokenizer)
    assert stream.feed(0xE4) == ""              # could still become 世
    assert stream.feed(0xB8) == ""
    assert stream.feed(ord("A")) == "\ufffdA"   # can no longer: one replacement, then A
    assert stream.feed(0xFF) == "\ufffd"        # never valid: at once
    assert stream.feed(0xF0) == ""
    assert stream.flush() == "\ufffd"           # cut off at the end
    assert stream.feed([0xE4, 0xB8, 0x96]) == "世"  # flush started a new stream; several ids at once
    stream.feed(0xE4)
    stream.reset()
    assert stream.flush() == ""


def test_stream_decoder_matches_decode_on_random_ids(world):
    rng = random.Random(4)
    for _ in range(50):
        ids = [rng.randrange(1, WORLD_N_VOCAB) for _ in range(rng.randint(0, 40))]
        pieces, tail = stream_pieces(world, ids)
        assert "".join(pieces) + tail == world.decode(ids)


# ---- bytes ----


def test_byte_tokenizer():
    tokenizer = ByteTokenizer()
    assert tokenizer.vocab_size == 256
    assert tokenizer.encode("hé") == [104, 195, 169]
    assert tokenizer.encode(b"\xff\x00") == [255, 0]
    assert tokenizer.decode([104, 195, 169]) == "hé"
    assert tokenizer.decode_bytes(range(256)) == bytes(range(256))
    assert tokenizer.decode([255]) == "\ufffd"
    assert tokenizer.decode(np.array([104, 105])) == "hi"


# ---- GPT-NeoX 20B ----


@pytest.fixture(scope="module")
def hf_tokenizer():
    tokenizers = pytest.importorskip("tokenizers")
    return tokenizers.Tokenizer.from_file(str(SHIPPED_NEOX_JSON))


@pytest.fixture(scope="module")
def neox(hf_tokenizer):
    return NeoxTokenizer()


def test_neox_vocab_size(neox):
    assert neox.vocab_size == 50277


def test_neox_matches_tokenizers(neox, hf_tokenizer, text):
    assert neox.encode(text) == hf_tokenizer.encode(text).ids
    for sample in SAMPLES.values():
        ids = neox.encode(sample)
        assert ids == hf_tokenizer.encode(sample).ids
        assert neox.decode(ids) == hf_tokenizer.decode(ids)
    assert neox.encode("Hello world") == [12092, 1533]


def test_neox_decode_matches_tokenizers_on_random_ids(neox, hf_tokenizer):
    rng = random.Random(5)
    for _ in range(200):
        ids = [rng.randrange(neox.vocab_size) for _ in range(rng.randint(0, 30))]
        assert neox.decode(ids) == hf_tokenizer.decode(ids), ids
    special = neox.encode("a<|endoftext|>b<|padding|>")
    assert 0 in special and 1 in special
    assert neox.decode(special) == hf_tokenizer.decode(special) == "ab"


def test_neox_stream_decoder(neox):
    text = SAMPLES["emoji"] + SAMPLES["chinese"]
    ids = neox.encode(text)
    pieces, tail = stream_pieces(neox, ids)
    assert "".join(pieces) + tail == neox.decode(ids)
    assert all("\ufffd" not in piece for piece in pieces)


def test_neox_bad_ids(neox):
    for bad in ([50277], [-1], [1.5]):
        with pytest.raises(InvalidTokenError):
            neox.decode(bad)


def test_neox_without_tokenizers_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # makes `import tokenizers` fail
    with pytest.raises(ImportError, match="pip install tokenizers"):
        NeoxTokenizer()


def test_neox_missing_file(tmp_path, hf_tokenizer):
    with pytest.raises(FileNotFoundError, match="missing.json"):
        NeoxTokenizer(tmp_path / "missing.json")


# ---- choosing a tokenizer ----


def test_tokenizer_for_vocab_size():
    assert isinstance(tokenizer_for_vocab_size(65536), WorldTokenizer)
    assert isinstance(tokenizer_for_vocab_size(256), ByteTokenizer)
    assert isinstance(tokenizer_for_vocab_size(65536, kind="bytes"), ByteTokenizer)
    assert isinstance(tokenizer_for_vocab_size(12345, kind="world"), WorldTokenizer)
    with pytest.raises(ValueError, match="12345"):
        tokenizer_for_vocab_size(12345)
    with pytest.raises(ValueError, match="'gpt2'"):
        tokenizer_for_vocab_size(65536, kind="gpt2")


@pytest.mark.parametrize("n_vocab", [50277, 50254])
def test_tokenizer_for_vocab_size_neox(n_vocab, hf_tokenizer):
    assert isinstance(tokenizer_for_vocab_size(n_vocab), NeoxTokenizer)


def test_package_exports():
    for name in ("WorldTokenizer", "ByteTokenizer", "NeoxTokenizer", "StreamDecoder", "tokenizer_for_vocab_size"):
        assert name in rwkv_cpp.__all__
        assert getattr(rwkv_cpp, name) is getattr(rwkv_cpp.tokenizers, name)


# ---- bad input ----


@pytest.mark.parametrize(
    "ids, needle",
    [
        ([33155, WORLD_N_VOCAB], f"token id {WORLD_N_VOCAB} at position 1"),
        ([10**6], "token id 1000000 at position 0"),
        ([1, 2, 2**32], "token id 4294967296 at position 2"),
        ([2**40], "token id 1099511627776 at position 0"),
        ([5, -1], "token id -1 at position 1"),
        (np.array([5, 6, -3]), "token id -3 at position 2"),
        (np.array([70000], dtype=np.uint32), "token id 70000 at position 0"),
        ([1, 1.5], "token id 1.5 at position 1 is not an integer"),
        ([1, "2"], "token id '2' at position 1 is not an integer"),
    ],
)
def test_world_bad_ids(world, ids, needle):
    with pytest.raises(InvalidTokenError, match=needle.replace(".", r"\.")):
        world.decode(ids)
    with pytest.raises(InvalidTokenError):
        StreamDecoder(world).feed(ids)


def test_world_bad_id_array_shape(world):
    with pytest.raises(InvalidArgumentError, match="1-D"):
        world.decode(np.zeros((2, 2), dtype=np.int64))


def test_byte_tokenizer_bad_ids():
    with pytest.raises(InvalidTokenError, match="token id 256 at position 1"):
        ByteTokenizer().decode([1, 256])
    with pytest.raises(InvalidTokenError, match="token id -1 at position 0"):
        ByteTokenizer().decode(np.array([-1]))


def test_world_missing_vocabulary(tmp_path):
    path = tmp_path / "missing.txt"
    with pytest.raises(ModelFileError, match="missing.txt") as info:
        WorldTokenizer(path)
    assert info.value.code == 514  # FILE | FILE_OPEN


@pytest.mark.parametrize(
    "content, needle",
    [
        ("1 'a' 1\n2 'bc' 3\n", "line 2: token 2 is 2 bytes long but the line says 3"),
        ("1 'a' 1\n2 'b 1\n", "line 2: unterminated literal"),
        ("1 'a' 1\n1 'b' 1\n", "line 2: token id 1 was already defined on line 1"),
        ("1 '\\xZZ' 1\n", "line 1: truncated \\\\x escape"),
        ("one 'a' 1\n", "line 1: expected the token id"),
        ("1 b'\u00e9' 2\n", "line 1: bytes literal contains the non-ASCII byte 0xC3"),
        ("", "has no tokens"),
    ],
)
def test_world_malformed_vocabulary(tmp_path, content, needle):
    path = tmp_path / "vocab.txt"
    path.write_bytes(content.encode("utf-8"))
    with pytest.raises(ModelFormatError, match=needle) as info:
        WorldTokenizer(path)
    assert str(path) in info.value.message


def test_world_vocabulary_without_some_byte(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("1 'a' 1\n2 'b' 1\n")
    tokenizer = WorldTokenizer(path)
    assert tokenizer.vocab_size == 3
    assert tokenizer.encode("abba") == [1, 2, 2, 1]
    with pytest.raises(InvalidArgumentError, match="byte 0x7A at offset 2 has no token"):
        tokenizer.encode("abz")
