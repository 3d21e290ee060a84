"""Finds and opens the rwkv_cpp shared library (cffi ABI mode), checks its version, and
turns C errors into Python exceptions. No logic beyond that: see model.py."""

from __future__ import annotations

import os
import sys
import threading
from importlib import resources
from pathlib import Path
from typing import Dict, List, NamedTuple, NoReturn, Optional

from cffi import FFI

from .errors import (
    InvalidArgumentError,
    LibraryNotFoundError,
    LibraryVersionError,
    ModelFileError,
    ModelFormatError,
    RwkvError,
)

# The prototypes of native/include/rwkv.h, without its preprocessor lines.
CDEF = """
enum rwkv_error_flags {
    RWKV_ERROR_NONE = 0,
    RWKV_ERROR_ARGS = 256,
    RWKV_ERROR_FILE = 512,
    RWKV_ERROR_MODEL = 768,
    RWKV_ERROR_MODEL_PARAMS = 1024,
    RWKV_ERROR_GRAPH = 1280,
    RWKV_ERROR_CTX = 1536,
    RWKV_ERROR_ALLOC = 1,
    RWKV_ERROR_FILE_OPEN = 2,
    RWKV_ERROR_FILE_STAT = 3,
    RWKV_ERROR_FILE_READ = 4,
    RWKV_ERROR_FILE_WRITE = 5,
    RWKV_ERROR_FILE_MAGIC = 6,
    RWKV_ERROR_FILE_VERSION = 7,
    RWKV_ERROR_DATA_TYPE = 8,
    RWKV_ERROR_UNSUPPORTED = 9,
    RWKV_ERROR_SHAPE = 10,
    RWKV_ERROR_DIMENSION = 11,
    RWKV_ERROR_KEY = 12,
    RWKV_ERROR_DATA = 13,
    RWKV_ERROR_PARAM_MISSING = 14
};

struct rwkv_context;

void rwkv_set_print_errors(struct rwkv_context * ctx, bool print_errors);
bool rwkv_get_print_errors(const struct rwkv_context * ctx);
enum rwkv_error_flags rwkv_get_last_error(struct rwkv_context * ctx);
struct rwkv_context * rwkv_init_from_file(const char * model_file_path, uint32_t n_threads, uint32_t n_gpu_layers);
struct rwkv_context * rwkv_clone_context(struct rwkv_context * ctx, uint32_t n_threads);
bool rwkv_gpu_offload_layers(struct rwkv_context * ctx, uint32_t n_layers);
bool rwkv_eval(struct rwkv_context * ctx, uint32_t token, const float * state_in, float * state_out, float * logits_out);
bool rwkv_eval_sequence(struct rwkv_context * ctx, const uint32_t * tokens, size_t sequence_len, const float * state_in, float * state_out, float * logits_out);
bool rwkv_eval_sequence_in_chunks(struct rwkv_context * ctx, const uint32_t * tokens, size_t sequence_len, size_t chunk_size, const float * state_in, float * state_out, float * logits_out);
size_t rwkv_get_n_vocab(const struct rwkv_context * ctx);
size_t rwkv_get_n_embed(const struct rwkv_context * ctx);
size_t rwkv_get_n_layer(const struct rwkv_context * ctx);
size_t rwkv_get_state_len(const struct rwkv_context * ctx);
size_t rwkv_get_logits_len(const struct rwkv_context * ctx);
void rwkv_init_state(const struct rwkv_context * ctx, float * state);
void rwkv_free(struct rwkv_context * ctx);
bool rwkv_quantize_model_file(const char * model_file_path_in, const char * model_file_path_out, const char * format_name);
const char * rwkv_get_system_info_string(void);
uint32_t rwkv_get_state_buffer_element_count(const struct rwkv_context * ctx);
uint32_t rwkv_get_logits_buffer_element_count(const struct rwkv_context * ctx);

const char * rwkv_get_last_error_message(const struct rwkv_context * ctx);
const char * rwkv_get_version_string(void);
uint32_t rwkv_get_version(void);
uint32_t rwkv_get_arch_version_major(const struct rwkv_context * ctx);
uint32_t rwkv_get_arch_version_minor(const struct rwkv_context * ctx);
uint32_t rwkv_get_gpu_layer_count(const struct rwkv_context * ctx);

bool rwkv_eval_sequence_all_logits(struct rwkv_context * ctx, const uint32_t * tokens, size_t sequence_len,
                                   const float * state_in, float * state_out, float * logits_out);
bool rwkv_state_save(struct rwkv_context * ctx, const char * path, const float * state);
bool rwkv_state_load(struct rwkv_context * ctx, const char * path, float * state_out);
uint64_t rwkv_get_model_file_hash(struct rwkv_context * ctx);

struct rwkv_quantize_params {
    const char * format_name;
    const char * head_format_name;
    void (*progress)(void * user_data, size_t n_done, size_t n_total);
    void * user_data;
};
struct rwkv_quantize_params rwkv_quantize_default_params(void);
bool rwkv_quantize_model_file_ex(const char * model_file_path_in, const char * model_file_path_out,
                                 const struct rwkv_quantize_params * params);

/* Sampling */
struct rwkv_sampling_params {
    float temperature;
    uint32_t top_k;
    float top_p;
    float min_p;
    float repetition_penalty;
    float presence_penalty;
    float frequency_penalty;
    float penalty_decay;
    uint64_t seed;
};
struct rwkv_sampler;
struct rwkv_sampling_params rwkv_sampling_default_params(void);
struct rwkv_sampler * rwkv_sampler_create(size_t n_vocab, const struct rwkv_sampling_params * params);
void rwkv_sampler_free(struct rwkv_sampler * sampler);
bool rwkv_sampler_set_logit_bias(struct rwkv_sampler * sampler, const uint32_t * tokens, const float * biases, size_t n);
bool rwkv_sampler_apply(struct rwkv_sampler * sampler, const float * logits, size_t n_vocab, float * adjusted);
bool rwkv_sampler_get_probs(struct rwkv_sampler * sampler, const float * logits, size_t n_vocab, float * probs);
bool rwkv_sampler_sample(struct rwkv_sampler * sampler, const float * logits, size_t n_vocab, uint32_t * token_out);
bool rwkv_sampler_accept(struct rwkv_sampler * sampler, uint32_t token);
void rwkv_sampler_reset(struct rwkv_sampler * sampler);
uint64_t rwkv_sampler_get_seed(const struct rwkv_sampler * sampler);
enum rwkv_error_flags rwkv_sampler_get_last_error(struct rwkv_sampler * sampler);
const char * rwkv_sampler_get_last_error_message(const struct rwkv_sampler * sampler);
void rwkv_sampler_set_print_errors(struct rwkv_sampler * sampler, bool print_errors);
bool rwkv_sampler_get_print_errors(const struct rwkv_sampler * sampler);

struct rwkv_tokenizer;
struct rwkv_tokenizer * rwkv_tokenizer_load(const char * vocab_path);
void rwkv_tokenizer_free(struct rwkv_tokenizer * tokenizer);
size_t rwkv_tokenizer_vocab_size(const struct rwkv_tokenizer * tokenizer);
bool rwkv_tokenizer_encode(const struct rwkv_tokenizer * tokenizer, const char * text, size_t n_bytes,
                           uint32_t * tokens, size_t capacity, size_t * n_tokens);
bool rwkv_tokenizer_decode(const struct rwkv_tokenizer * tokenizer, const uint32_t * tokens, size_t n_tokens,
                           char * out, size_t capacity, size_t * n_bytes);

struct rwkv_gpu_info {
    char name[256];
    uint32_t compute_major, compute_minor;
    uint32_t sm_count;
    double clock_ghz;
    uint64_t memory_bytes;
    double memory_bandwidth_gbs;
    double fp32_tflops;
};
bool rwkv_get_gpu_info(struct rwkv_gpu_info * info);
"""

ENV_VAR = "RWKV_CPP_LIBRARY"

ffi = FFI()
ffi.cdef(CDEF)

# rwkv_error_flags: the category is the high byte, the detail the low byte.
_CATEGORY_MASK = 0xFF00
_DETAIL_MASK = 0x00FF
_ARGS = 1 << 8
_FILE = 2 << 8
_MODEL = 3 << 8
_MODEL_PARAMS = 4 << 8
# FILE details that mean "the file could not be accessed"; the others in that
# category mean "its content is wrong": FILE_READ is what rwkv.cpp (and this library)
# report for a truncated file, next to FILE_MAGIC, FILE_VERSION, DATA_TYPE, SHAPE ...
_FILE_ACCESS_DETAILS = frozenset({2, 3, 5})  # FILE_OPEN, FILE_STAT, FILE_WRITE


class Library(NamedTuple):
    """An opened shared library: the cffi ``lib`` object and the file it came from."""

    lib: object
    path: str


_lock = threading.Lock()
_by_path: Dict[str, Library] = {}
_default: Optional[Library] = None


def library_file_name(platform: str = sys.platform) -> str:
    """The library's file name on this platform."""
    if platform.startswith(("win32", "cygwin")):
        return "rwkv.dll"
    if platform == "darwin":
        return "librwkv.dylib"
    return "librwkv.so"


def candidate_paths() -> List[Path]:
    """Where the library is looked for, in order, when RWKV_CPP_LIBRARY is not set:
    inside the installed package, then a CMake build folder of a source checkout."""
    name = library_file_name()
    package_dir = resources.files(__package__)
    repo_root = Path(__file__).resolve().parent.parent
    return [
        Path(str(package_dir / name)),
        repo_root / "build" / name,
        repo_root / "build" / "Release" / name,  # multi-config generators (MSVC)
    ]


def find_library() -> str:
    """The path of the library to load: RWKV_CPP_LIBRARY if set, else the first candidate."""
    override = os.environ.get(ENV_VAR)
    if override:
        if not os.path.isfile(override):
            raise LibraryNotFoundError(f"{ENV_VAR} is set to {override!r}, which is not a file")
        return os.path.abspath(override)
    tried = candidate_paths()
    for path in tried:
        if path.is_file():
            return str(path)
    raise LibraryNotFoundError(
        f"rwkv_cpp shared library {library_file_name()} not found; looked in: "
        + ", ".join(str(p) for p in tried)
        + f". Install the rwkv-engine wheel, build it with "
        f"'cmake -S . -B build && cmake --build build', or set {ENV_VAR} to its path."
    )


def load(path: Optional[str] = None) -> Library:
    """Opens the library at ``path`` (default: :func:`find_library`) once and returns it.

    Thread-safe; later calls return the same object. Raises LibraryNotFoundError or
    LibraryVersionError.
    """
    global _default
    if path is None and _default is not None:
        return _default
    with _lock:
        if path is None:
            if _default is None:
                _default = _open(find_library())
            return _default
        return _open(os.path.abspath(os.fspath(path)))


def _open(path: str) -> Library:
    # Called with _lock held.
    if path in _by_path:
        return _by_path[path]
    from . import __version__

    try:
        lib = ffi.dlopen(path)
    except OSError as e:
        raise LibraryNotFoundError(f"cannot load the rwkv_cpp shared library {path}: {e}") from None
    try:
        found = ffi.string(lib.rwkv_get_version_string()).decode("utf-8", "replace")
    except AttributeError:
        found = None
    if found != __version__:
        what = f"version {found}" if found else "no rwkv_get_version_string (rwkv.cpp's own library?)"
        raise LibraryVersionError(
            f"the shared library {path} has {what}, but the rwkv_cpp Python package "
            f"{__version__} needs version {__version__}; rebuild the library or set {ENV_VAR}"
        )
    library = Library(lib, path)
    _by_path[path] = library
    return library


def silence(lib, ctx=ffi.NULL) -> None:
    """Stops the library printing errors (for ctx, or NULL: this thread's init/quantize
    calls): the exceptions carry the messages instead."""
    lib.rwkv_set_print_errors(ctx, False)


def error_class(code: int) -> type:
    """The exception class for rwkv_error_flags ``code``."""
    category = code & _CATEGORY_MASK
    if category == _FILE:
        return ModelFileError if (code & _DETAIL_MASK) in _FILE_ACCESS_DETAILS else ModelFormatError
    if category in (_MODEL, _MODEL_PARAMS):
        return ModelFormatError
    if category == _ARGS:
        return InvalidArgumentError
    return RwkvError


def raise_last_error(lib, ctx, what: str) -> NoReturn:
    """Raises the exception for the last error of ctx (NULL: this thread's init/quantize).

    ``what`` names the failed call, used only when the library left no message."""
    message = ffi.string(lib.rwkv_get_last_error_message(ctx)).decode("utf-8", "replace")
    code = int(lib.rwkv_get_last_error(ctx))  # reads and clears
    if not message:
        message = f"{what} failed (error flags {code:#x})"
    raise error_class(code)(message, code)
