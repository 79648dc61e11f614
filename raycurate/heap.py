"""Giving freed heap memory back to the system.

glibc's malloc keeps what a process frees (in its arenas, one per thread that allocated) for the next
allocation; a worker that decoded a batch of large images, or ran a model over it, stays as large as its
largest batch. :func:`trim` asks glibc to return those free pages (``malloc_trim(0)``): workers call it after
each batch. Where the C library is not glibc (macOS, musl) it does nothing.
"""
from __future__ import annotations

import ctypes
from typing import Any

_LIBC: Any = None   # the C library once loaded; False where it has no malloc_trim


def _libc() -> Any:
    global _LIBC
    if _LIBC is None:
        try:
            # the symbols already loaded in this process (its C library's among them): no search for the
            # library, which would start a subprocess (ctypes.util.find_library runs ldconfig), a copy of
            # a large worker for a moment
            lib = ctypes.CDLL(None)
            lib.malloc_trim.argtypes = [ctypes.c_size_t]
            lib.malloc_trim.restype = ctypes.c_int
            _LIBC = lib
        except (OSError, AttributeError):   # no such library, or no malloc_trim in it (not glibc)
            _LIBC = False
    return _LIBC


def trim() -> bool:
    """Return free heap pages to the system; True if glibc released any."""
    lib = _libc()
    return bool(lib and lib.malloc_trim(0))
