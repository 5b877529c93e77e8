"""Decompressing a zlib stream into a byte array: libdeflate when the system has it, else Python's zlib.

Inflating the PNG data is most of an evaluation's time (about 0.85 ms per 854x480 mask with zlib 1.2, 0.1 ms with
libdeflate, whose match copying is word-wide). libdeflate is used through ctypes only if its shared library is
installed (``libdeflate0`` on Debian, pulled in by libtiff); it needs no Python package, and both paths return the
same bytes and verify the stream's Adler-32 checksum.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import zlib
from collections.abc import Callable

import numpy as np

#: libdeflate's success code; anything else (bad data, short output, too much output) is a failure.
_LIBDEFLATE_SUCCESS = 0


def zlib_inflate(data: bytes, size: int) -> np.ndarray | None:
    """(size,) uint8 contents of the zlib stream ``data``, or None if it is corrupt or not exactly ``size`` bytes."""
    try:
        raw = zlib.decompress(data, bufsize=size)
    except zlib.error:
        return None
    return np.frombuffer(raw, dtype=np.uint8) if len(raw) == size else None


class LibdeflateInflater:
    """``zlib_inflate`` through libdeflate's ``libdeflate_zlib_decompress`` (one decompressor per process)."""

    def __init__(self, library: ctypes.CDLL) -> None:
        library.libdeflate_alloc_decompressor.restype = ctypes.c_void_p
        library.libdeflate_zlib_decompress.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                                       ctypes.c_void_p, ctypes.c_size_t,
                                                       ctypes.POINTER(ctypes.c_size_t)]
        library.libdeflate_zlib_decompress.restype = ctypes.c_int
        self._decompress = library.libdeflate_zlib_decompress
        self._decompressor = library.libdeflate_alloc_decompressor()
        if not self._decompressor:
            raise OSError("libdeflate_alloc_decompressor failed")

    def __call__(self, data: bytes, size: int) -> np.ndarray | None:
        out = np.empty(size, dtype=np.uint8)
        written = ctypes.c_size_t()
        status = self._decompress(self._decompressor, data, len(data), out.ctypes.data, size, ctypes.byref(written))
        return out if status == _LIBDEFLATE_SUCCESS and written.value == size else None


def _best_inflater() -> Callable[[bytes, int], np.ndarray | None]:
    for name in ("libdeflate.so.0", ctypes.util.find_library("deflate")):
        if name:
            try:
                return LibdeflateInflater(ctypes.CDLL(name))
            except (OSError, AttributeError):
                continue
    return zlib_inflate


#: The inflater ``eval.masks`` uses.
inflate: Callable[[bytes, int], np.ndarray | None] = _best_inflater()
