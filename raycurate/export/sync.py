"""An export that describes its rows and nothing else, and rewrites nothing that has not changed.

The export writes through a :class:`TrackedOutput`, which remembers every file it is asked to write and
leaves a file alone when it already holds those bytes. :func:`finish` then removes the files the previous
export into the same folder wrote and this one did not (an image no longer kept, the folder of a person no
longer asked for), and records this export's files in ``OUT/.raycurate-export.json``.

Invariants (tests/test_export_sync.py checks them on real runs):

* after an export, the files raycurate wrote in OUT are exactly those this export's rows ask for;
* a file raycurate did not write (a user's own file in OUT, the DB, the manifest, the frames of the video
  path) is never removed: only files listed by an earlier export are;
* exporting the same rows again writes no file (their bytes are there already).
"""
from __future__ import annotations

import filecmp
import json
import os
import threading
from contextlib import contextmanager
from typing import Any, Iterator

from ..storage import OutputDir

EXPORT_LIST = ".raycurate-export.json"   # in OUT: the files the last export wrote, relative to OUT


class TrackedOutput(OutputDir):
    """An :class:`~raycurate.storage.OutputDir` that notes every file written through it (``written``) and does
    not write a file again that already holds the same bytes."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.written: set[str] = set()
        self.unchanged = 0              # files that already held their bytes
        self._lock = threading.Lock()   # the export writes from a thread pool
        self._staged: dict[str, str] = {}   # streamed files (metadata): final name -> the file written first

    def note(self, rel: str, unchanged: bool = False) -> None:
        with self._lock:
            self.written.add(rel)
            self.unchanged += unchanged

    def holds(self, rel: str, size: int | None) -> bool:
        """Whether ``rel`` is there with ``size`` bytes: for a file named by its content id (an exported image,
        a link to it) that is the file; noted as written when so."""
        there = size is not None and self.size(rel) == size
        if there:
            self.note(rel, unchanged=True)
        return there

    def write_bytes(self, rel: str, data: bytes) -> None:
        if self.size(rel) == len(data) and self.read_bytes(rel) == data:
            self.note(rel, unchanged=True)
            return
        super().write_bytes(rel, data)
        self.note(rel)

    def place(self, src_rel: str | None, data: bytes, dest_rel: str) -> None:
        """A copy the writer found missing (:meth:`holds`) written, and noted."""
        super().place(src_rel, data, dest_rel)
        self.note(dest_rel)

    def _stage(self, rel: str) -> str:
        """Where a streamed file is written: beside its final name in a local folder (:meth:`settle` keeps
        the old file when the new one holds the same bytes), else the final name itself."""
        self.note(rel)
        if self.remote:
            return rel
        staged = self._staged[rel] = f"{rel}.part"
        return staged

    @contextmanager
    def open_text(self, rel: str) -> Iterator[Any]:
        with super().open_text(self._stage(rel)) as f:
            yield f

    def sink(self, rel: str) -> tuple[Any, Any]:
        return super().sink(self._stage(rel))

    def settle(self) -> None:
        """Each streamed file in place: the one written replaces the old one, unless they hold the same bytes."""
        for rel, staged in self._staged.items():
            new, old = self.local(staged), self.local(rel)
            if os.path.exists(old) and filecmp.cmp(new, old, shallow=False):
                os.remove(new)
                self.unchanged += 1
            else:
                os.replace(new, old)
        self._staged.clear()


def previous_files(out: OutputDir) -> set[str]:
    """The files the last export into ``out`` wrote (empty when none did, or its list is unreadable)."""
    try:
        listed = json.loads(out.read_bytes(EXPORT_LIST).decode("utf-8"))
    except (OSError, ValueError):
        return set()
    return {rel for rel in listed.get("files", []) if isinstance(rel, str) and _inside(rel)}


def _inside(rel: str) -> bool:
    """A relative path that stays inside OUT (the list is a file a user could edit)."""
    parts = rel.split("/")
    return bool(rel) and not rel.startswith("/") and ".." not in parts and "" not in parts


def finish(out: TrackedOutput, previous: set[str]) -> int:
    """Remove the files of ``previous`` (:func:`previous_files`, read before the export) that this export did
    not write, record this export's files; the number of files removed."""
    out.settle()
    stale = sorted(previous - out.written)
    for rel in stale:
        out.delete(rel)
    out.write_bytes(EXPORT_LIST, json.dumps({"files": sorted(out.written)}, indent=0).encode("utf-8"))
    return len(stale)
