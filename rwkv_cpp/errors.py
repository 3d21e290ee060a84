"""Exceptions raised by rwkv_cpp; each carries the C library's message and error flags."""

from __future__ import annotations

__all__ = [
    "RwkvError",
    "LibraryNotFoundError",
    "LibraryVersionError",
    "ModelFileError",
    "ModelFormatError",
    "InvalidArgumentError",
    "InvalidTokenError",
    "StateSizeError",
]


class RwkvError(Exception):
    """Base class of every rwkv_cpp error.

    ``code`` holds the C library's ``rwkv_error_flags`` (a category such as
    ``FILE = 2 << 8`` OR-ed with a detail such as ``FILE_OPEN = 2``), or 0 when the
    error was found in Python before calling C. ``message`` is the text alone.

    Example::

        try:
            rwkv_cpp.Model("missing.bin")
        except rwkv_cpp.RwkvError as e:
            print(e.code, e.message)   # 514 failed to open ... missing.bin ...
    """

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.code = int(code)


class LibraryNotFoundError(RwkvError):
    """The shared library could not be found or opened."""


class LibraryVersionError(RwkvError):
    """The shared library is not the version this package was written for."""


class ModelFileError(RwkvError):
    """A file could not be opened or written (missing, a directory, no permission, disk full)."""


class ModelFormatError(RwkvError):
    """A file was opened but is not a valid model (truncated, wrong magic, version, shapes, types)."""


class InvalidArgumentError(RwkvError, ValueError):
    """An argument has the right type but a value the library rejects."""


class InvalidTokenError(InvalidArgumentError):
    """A token id outside ``[0, n_vocab)``."""


class StateSizeError(InvalidArgumentError):
    """A state or logits buffer with the wrong number of elements."""
