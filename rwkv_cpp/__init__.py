"""rwkv_cpp: a small, fast inference engine for RWKV language models.

Example::

    import rwkv_cpp

    with rwkv_cpp.Model("model.bin") as model:
        logits, state = model.eval_sequence([34, 105, 110])
        logits, state = model.eval(int(logits.argmax()), state)

The shared library is opened on first use (``RWKV_CPP_LIBRARY`` overrides where).
"""

# The one place the version is defined; the shared library must report the same.
__version__ = "0.1.0"

from .errors import (  # noqa: E402
    InvalidArgumentError,
    InvalidTokenError,
    LibraryNotFoundError,
    LibraryVersionError,
    ModelFileError,
    ModelFormatError,
    RwkvError,
    StateSizeError,
)
from .model import Model, library_path, system_info  # noqa: E402
from .tokenizers import (  # noqa: E402
    ByteTokenizer,
    NeoxTokenizer,
    StreamDecoder,
    WorldTokenizer,
    tokenizer_for_vocab_size,
)
# Binds the name to the function after the submodule rwkv_cpp.quantize is loaded, so the
# package attribute stays the function.
from .quantize import quantize_model_file as quantize  # noqa: E402
from .sampling import Sampler, SamplingParams  # noqa: E402
from .generate import TextStream  # noqa: E402

__all__ = [
    "__version__",
    "Model",
    "quantize",
    "Sampler",
    "SamplingParams",
    "TextStream",
    "system_info",
    "library_path",
    "WorldTokenizer",
    "ByteTokenizer",
    "NeoxTokenizer",
    "StreamDecoder",
    "tokenizer_for_vocab_size",
    "RwkvError",
    "LibraryNotFoundError",
    "LibraryVersionError",
    "ModelFileError",
    "ModelFormatError",
    "InvalidArgumentError",
    "InvalidTokenError",
    "StateSizeError",
]
