"""raycurate.heap: giving freed heap memory back (glibc's malloc_trim), harmless where there is no glibc."""
import ctypes

import pytest

from raycurate import heap


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setattr(heap, "_LIBC", None)   # look the C library up again in each test


def _glibc() -> bool:
    try:
        ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    return True


@pytest.mark.skipif(not _glibc(), reason="malloc_trim is glibc's")
def test_trim_gives_freed_heap_back_with_glibc():
    blocks = [bytearray(64 * 1024) for _ in range(2000)]   # 128 MB of heap (below malloc's mmap threshold)
    del blocks[::2]   # every other block freed: holes inside the heap, which only malloc_trim gives back
    assert heap.trim() is True   # glibc released the holes' pages
    lib = heap._LIBC
    assert lib and lib is not False
    heap.trim()
    assert heap._LIBC is lib      # the library is looked up once
    del blocks


def test_trim_is_a_no_op_without_a_c_library(monkeypatch):
    def missing(*_a, **_k):
        raise OSError("no libc here")

    monkeypatch.setattr(ctypes, "CDLL", missing)
    assert heap.trim() is False
    assert heap._LIBC is False


def test_trim_is_a_no_op_with_a_c_library_without_malloc_trim(monkeypatch):
    class Musl:   # a C library without glibc's malloc_trim (musl, macOS)
        def __getattr__(self, name):
            raise AttributeError(name)

    monkeypatch.setattr(ctypes, "CDLL", lambda *_a, **_k: Musl())
    assert heap.trim() is False


def test_finding_malloc_trim_starts_no_process(monkeypatch):
    """A subprocess (ctypes.util.find_library runs ldconfig) would be a copy of a large worker for a moment."""
    import subprocess

    def refuse(*_a, **_k):
        raise AssertionError("trim() started a process")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    heap.trim()
