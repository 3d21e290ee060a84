"""Tokenizers for RWKV models: World (65536 ids, the C library's trie), bytes (256 ids) and
GPT-NeoX 20B (50277 ids, through Hugging Face ``tokenizers``), plus a streaming decoder.

Example::

    from rwkv_cpp import WorldTokenizer, StreamDecoder

    tokenizer = WorldTokenizer()              # the vocabulary shipped with the package
    ids = tokenizer.encode("Hello, 世界")     # [33155, 45, 33, 10267, 14610]
    assert tokenizer.decode(ids) == "Hello, 世界"

    stream = StreamDecoder(tokenizer)
    text = "".join(stream.feed(i) for i in ids) + stream.flush()
"""

from __future__ import annotations

import array
import codecs
import operator
import os
from contextlib import contextmanager
from importlib import resources
from typing import Iterable, Iterator, List, NoReturn, Optional, Sequence, Union

import numpy as np

from . import _native
from ._native import ffi
from .errors import InvalidArgumentError, InvalidTokenError

__all__ = [
    "WorldTokenizer",
    "ByteTokenizer",
    "NeoxTokenizer",
    "StreamDecoder",
    "tokenizer_for_vocab_size",
]

PathLike = Union[str, "os.PathLike[str]"]
TokenIds = Union[Sequence[int], np.ndarray]
Text = Union[str, bytes, bytearray, memoryview]

WORLD_VOCAB_FILE = "rwkv_vocab_v20230424.txt"
NEOX_TOKENIZER_FILE = "20B_tokenizer.json"

# Buffers the C calls fill completely before they are read: no need to zero them first.
_new_uninitialized = ffi.new_allocator(should_clear_after_alloc=False)

# WorldTokenizer.decode_bytes's first guess at the output size.
_DECODE_BYTES_PER_TOKEN = 8

# Vocabularies up to this size get a table of int objects (see WorldTokenizer._load).
_INT_TABLE_MAX = 1 << 17

# array.array type code of a 32-bit unsigned int: the uint32_t the C API takes.
_UINT32_CODE = next(code for code in ("I", "L") if array.array(code).itemsize == 4)


@contextmanager
def _data_file(name: str) -> Iterator[str]:
    """A real path to a file shipped in rwkv_cpp/data (extracted while in use if the package
    is zipped)."""
    with resources.as_file(resources.files(__package__) / "data" / name) as path:
        yield str(path)


def _to_bytes(text: Text) -> bytes:
    if isinstance(text, str):
        return text.encode("utf-8")
    if isinstance(text, bytes):
        return text
    if isinstance(text, (bytearray, memoryview)):
        return bytes(text)
    raise TypeError(f"text must be str or bytes, not {type(text).__name__}")


def _invalid_token(ids: Sequence[int], vocab_size: int) -> InvalidTokenError:
    """The error for the first id outside [0, vocab_size) (or not an integer)."""
    for position, token in enumerate(ids):
        try:
            value = operator.index(token)
        except TypeError:
            return InvalidTokenError(f"token id {token!r} at position {position} is not an integer")
        if value < 0 or value >= vocab_size:
            return InvalidTokenError(
                f"token id {value} at position {position} is out of range (vocabulary size {vocab_size})"
            )
    return InvalidTokenError(f"invalid token ids (vocabulary size {vocab_size})")


def _as_uint32(ids: TokenIds, vocab_size: int):
    """ids as a buffer of uint32 (no copy for a contiguous uint32 numpy array). Raises
    InvalidTokenError for an id that does not fit (negative, 2**32 or more); a list's ids
    between vocab_size and 2**32 are left to the C library to reject."""
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
            raise InvalidArgumentError(f"token ids must be a 1-D integer array, not {ids.ndim}-D {ids.dtype}")
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
            raise _invalid_token(ids.tolist(), vocab_size)
        return np.ascontiguousarray(ids, dtype=np.uint32)
    try:
        return array.array(_UINT32_CODE, ids)
    except (OverflowError, TypeError):
        raise _invalid_token(list(ids), vocab_size) from None


class WorldTokenizer:
    """The RWKV World tokenizer (RWKV-4 World to RWKV-7): greedy longest match over a byte
    trie in the C library, token for token the reference ``TRIE_TOKENIZER``.

    ``path`` is a vocabulary file in ``rwkv_vocab_v20230424.txt``'s format; None loads the
    one shipped with the package. Thread-safe: encode and decode release the GIL.

    Example::

        tokenizer = WorldTokenizer()
        tokenizer.encode("Hello")          # [33155]
        tokenizer.decode([33155, 33])      # 'Hello '
    """

    def __init__(self, path: Optional[PathLike] = None) -> None:
        library = _native.load()
        self._lib = library.lib
        if path is None:
            with _data_file(WORLD_VOCAB_FILE) as shipped:
                self._load(shipped)
        else:
            self._load(os.fspath(path))

    def _load(self, path: str) -> None:
        lib = self._lib
        _native.silence(lib)
        handle = lib.rwkv_tokenizer_load(os.fsencode(path))
        if handle == ffi.NULL:
            _native.raise_last_error(lib, ffi.NULL, "rwkv_tokenizer_load")
        self._handle = ffi.gc(handle, lib.rwkv_tokenizer_free)
        self.path = path
        #: Number of token ids (largest id + 1): 65530 for the shipped vocabulary. Id 0, end
        #: of text in RWKV World, has no text and decodes to nothing.
        self.vocab_size = int(lib.rwkv_tokenizer_vocab_size(handle))
        # One int object per id: encode's list then shares them instead of creating one per
        # token, which would take longer than the C call itself (~2 MB for 65530 ids).
        self._ints = np.arange(self.vocab_size).astype(object) if self.vocab_size <= _INT_TABLE_MAX else None

    def __repr__(self) -> str:
        return f"WorldTokenizer({self.path!r}, vocab_size={self.vocab_size})"

    def encode(self, text: Text) -> List[int]:
        """Token ids of ``text``: a str (encoded as UTF-8) or bytes (any bytes)."""
        data = _to_bytes(text)
        n_bytes = len(data)
        if n_bytes == 0:
            return []
        tokens = _new_uninitialized("uint32_t[]", n_bytes)  # every token is at least one byte
        n_tokens = ffi.new("size_t *")
        _native.silence(self._lib)
        if not self._lib.rwkv_tokenizer_encode(self._handle, data, n_bytes, tokens, n_bytes, n_tokens):
            _native.raise_last_error(self._lib, ffi.NULL, "rwkv_tokenizer_encode")
        ids = np.frombuffer(ffi.buffer(tokens, n_tokens[0] * 4), dtype=np.uint32)
        return self._ints.take(ids).tolist() if self._ints is not None else ids.tolist()

    def decode_bytes(self, ids: TokenIds) -> bytes:
        """The bytes of token ids, concatenated (may be invalid UTF-8 where a character is split
        across tokens). Raises InvalidTokenError for an id outside [0, vocab_size)."""
        tokens = _as_uint32(ids, self.vocab_size)
        n_tokens = len(tokens)
        if n_tokens == 0:
            return b""
        lib = self._lib
        _native.silence(lib)
        tokens_ptr = ffi.from_buffer("uint32_t[]", tokens)
        n_bytes = ffi.new("size_t *")
        # Tokens average 3 to 4 bytes, so this almost always fits in one call. When it does
        # not, the call still reports the size needed (for a bad id it reports 0).
        capacity = _DECODE_BYTES_PER_TOKEN * n_tokens + 64
        out = _new_uninitialized("char[]", capacity)
        if not lib.rwkv_tokenizer_decode(self._handle, tokens_ptr, n_tokens, out, capacity, n_bytes):
            if n_bytes[0] <= capacity:
                self._raise_decode_error()
            capacity = n_bytes[0]
            out = _new_uninitialized("char[]", capacity)
            if not lib.rwkv_tokenizer_decode(self._handle, tokens_ptr, n_tokens, out, capacity, n_bytes):
                self._raise_decode_error()
        return ffi.buffer(out, n_bytes[0])[:]

    def _raise_decode_error(self) -> NoReturn:
        try:
            _native.raise_last_error(self._lib, ffi.NULL, "rwkv_tokenizer_decode")
        except InvalidArgumentError as e:
            raise InvalidTokenError(e.message, e.code) from None

    def decode(self, ids: TokenIds) -> str:
        """The text of token ids; bytes that are not valid UTF-8 become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")


class ByteTokenizer:
    """One token per byte (256 ids), for byte-level models such as the demo checkpoints.

    Example::

        ByteTokenizer().encode("hi")       # [104, 105]
    """

    vocab_size = 256

    def __repr__(self) -> str:
        return "ByteTokenizer()"

    def encode(self, text: Text) -> List[int]:
        """The bytes of ``text`` (a str is encoded as UTF-8)."""
        return list(_to_bytes(text))

    def decode_bytes(self, ids: TokenIds) -> bytes:
        """The bytes with these values; InvalidTokenError for an id outside [0, 256)."""
        if isinstance(ids, np.ndarray):
            return _as_uint32(ids, 256).astype(np.uint8).tobytes()
        if isinstance(ids, (int, np.integer, str, bytes)):
            raise TypeError(f"ids must be a sequence of token ids, not {type(ids).__name__}")
        try:
            return bytes(ids)
        except (ValueError, TypeError):
            raise _invalid_token(list(ids), 256) from None

    def decode(self, ids: TokenIds) -> str:
        """The text of the bytes; invalid UTF-8 becomes U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")


def _gpt2_byte_decoder() -> dict:
    """GPT-2's byte-level alphabet, inverted: the printable character that stands for each
    byte in a byte-level BPE vocabulary -> that byte."""
    byte_values = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = byte_values[:]  # printable bytes stand for themselves
    n_others = 0
    for byte in range(256):
        if byte not in byte_values:  # the others, in order, by chr(256), chr(257), ...
            byte_values.append(byte)
            chars.append(256 + n_others)
            n_others += 1
    return {chr(char): byte for byte, char in zip(byte_values, chars)}


class NeoxTokenizer:
    """The GPT-NeoX 20B tokenizer of the RWKV-4 Pile and Raven models (50277 ids), through
    Hugging Face ``tokenizers`` (``pip install tokenizers``).

    ``path`` is a ``tokenizer.json``; None loads the ``20B_tokenizer.json`` shipped with the
    package. Decoding skips the special tokens ``<|endoftext|>`` and ``<|padding|>``, as
    ``tokenizers`` does by default.

    Example::

        tokenizer = NeoxTokenizer()
        tokenizer.encode("Hello world")    # [12092, 1533]
    """

    def __init__(self, path: Optional[PathLike] = None) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as e:
            raise ImportError(
                "NeoxTokenizer needs the Hugging Face 'tokenizers' package: "
                "pip install tokenizers (or pip install 'rwkv-engine[tokenizers]')"
            ) from e
        if path is None:
            with _data_file(NEOX_TOKENIZER_FILE) as shipped:
                self._tokenizer = Tokenizer.from_file(shipped)
            self.path = shipped
        else:
            self.path = os.fspath(path)
            if not os.path.isfile(self.path):
                raise FileNotFoundError(f"tokenizer file {self.path} does not exist")
            self._tokenizer = Tokenizer.from_file(self.path)
        self.vocab_size = int(self._tokenizer.get_vocab_size(with_added_tokens=True))
        self._token_bytes: Optional[List[bytes]] = None

    def __repr__(self) -> str:
        return f"NeoxTokenizer({self.path!r}, vocab_size={self.vocab_size})"

    def encode(self, text: Text) -> List[int]:
        """Token ids of ``text`` (bytes must be UTF-8: the tokenizer works on text)."""
        if not isinstance(text, str):
            text = _to_bytes(text).decode("utf-8")
        return self._tokenizer.encode(text).ids

    def _table(self) -> List[bytes]:
        """The bytes of every id, built on first use."""
        if self._token_bytes is None:
            byte_of = _gpt2_byte_decoder()
            table = [b""] * self.vocab_size
            special = {t.content for t in self._tokenizer.get_added_tokens_decoder().values() if t.special}
            for token, index in self._tokenizer.get_vocab(with_added_tokens=True).items():
                if token in special:
                    continue
                # Added tokens (runs of spaces) hold plain text: characters outside the
                # byte-level alphabet stand for their own UTF-8, as in tokenizers' decoder.
                table[index] = b"".join(
                    bytes((byte_of[c],)) if c in byte_of else c.encode("utf-8") for c in token
                )
            self._token_bytes = table
        return self._token_bytes

    def decode_bytes(self, ids: TokenIds) -> bytes:
        """The bytes of token ids, concatenated; InvalidTokenError for an id out of range."""
        tokens = _as_uint32(ids, self.vocab_size).tolist()
        if tokens and max(tokens) >= self.vocab_size:
            raise _invalid_token(tokens, self.vocab_size)
        table = self._table()
        return b"".join([table[i] for i in tokens])

    def decode(self, ids: TokenIds) -> str:
        """The text of token ids; bytes that are not valid UTF-8 become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")


AnyTokenizer = Union[WorldTokenizer, ByteTokenizer, NeoxTokenizer]


class StreamDecoder:
    """Turns token ids, fed one at a time, into text pieces that never split a character.

    A multi-byte UTF-8 character spread over several tokens comes out whole with the token
    that completes it; bytes that can no longer become a valid character come out as U+FFFD.
    Call :meth:`flush` at the end for what is held back.

    Example::

        stream = StreamDecoder(WorldTokenizer())
        for token in generated_ids:
            print(stream.feed(token), end="", flush=True)
        print(stream.flush())
    """

    def __init__(self, tokenizer: AnyTokenizer) -> None:
        self.tokenizer = tokenizer
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, tokens: Union[int, Iterable[int]]) -> str:
        """The text completed by one token id (or several); "" while a character is incomplete."""
        ids = [tokens] if isinstance(tokens, (int, np.integer)) else list(tokens)
        return self._utf8.decode(self.tokenizer.decode_bytes(ids))

    def flush(self) -> str:
        """What is held back (an incomplete character becomes U+FFFD); starts a new stream."""
        text = self._utf8.decode(b"", final=True)
        self._utf8.reset()
        return text

    def reset(self) -> None:
        """Drops what is held back."""
        self._utf8.reset()


_BY_KIND = {"world": WorldTokenizer, "neox": NeoxTokenizer, "bytes": ByteTokenizer}

# The n_vocab of the models each tokenizer serves: RWKV World models pad their 65530 ids to
# 65536; RWKV-4 Pile / Raven models have 50277 (the 20B tokenizer with its added tokens) and
# some conversions 50254 (without them).
_BY_VOCAB_SIZE = {256: "bytes", 65536: "world", 50277: "neox", 50254: "neox"}


def tokenizer_for_vocab_size(n_vocab: int, kind: Optional[str] = None) -> AnyTokenizer:
    """The tokenizer for a model with ``n_vocab`` logits, or the one ``kind`` names
    ("world", "neox" or "bytes") whatever the size.

    Example::

        with rwkv_cpp.Model("model.bin") as model:
            tokenizer = tokenizer_for_vocab_size(model.n_vocab)
    """
    if kind is None:
        kind = _BY_VOCAB_SIZE.get(int(n_vocab))
        if kind is None:
            raise ValueError(
                f"no tokenizer is known for a vocabulary of {n_vocab} tokens (known: 65536 World, "
                f"50277 or 50254 GPT-NeoX 20B, 256 bytes); pass kind='world', 'neox' or 'bytes'"
            )
    elif kind not in _BY_KIND:
        raise ValueError(f"unknown tokenizer kind {kind!r}; expected 'world', 'neox' or 'bytes'")
    return _BY_KIND[kind]()
