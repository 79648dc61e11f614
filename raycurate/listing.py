"""What a run reads: the files under INPUT (a folder, a single file or a bucket prefix), what was skipped
and why, and which excluded locations (OUT, the DB) were met inside it.

Local folders are walked here (``os.scandir``, links never followed blindly); buckets are listed through
``pyarrow.fs`` (:func:`raycurate.sources.open_filesystem`) and have no links. Both give a :class:`Listing`.
Each file is then classified by its first bytes (:func:`raycurate.sources.classify`); a local file is opened
non-blocking and only when it is a regular file, so listing never waits on a FIFO or a device.
"""
from __future__ import annotations

import errno
import heapq
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

import pyarrow.fs as pafs

from . import storage
from .sources import SNIFF_BYTES, FileRef, SourceError, _info, _not_found, _to_uri, classify, open_filesystem


@dataclass(frozen=True)
class Skipped:
    """A name under INPUT that is not read, and why (one line a user can act on)."""

    uri: str
    reason: str


@dataclass
class Listing:
    """``files``: what the run reads, sorted by uri. ``skipped``: names not read, each with its reason, sorted.
    ``excluded``: excluded locations (OUT, the DB) met under INPUT and not descended, sorted."""

    files: list[FileRef]
    skipped: list[Skipped] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)


def _hidden(name: str) -> bool:
    """Hidden files (.DS_Store, ._foo) are never media: skipped without a note, as they always were."""
    return name.startswith(".")


def lies_under(real: str, tops: Sequence[str]) -> bool:
    """Whether the resolved path ``real`` equals or lies under one of the resolved paths ``tops``."""
    return any(real == t or real.startswith(t.rstrip(os.sep) + os.sep) for t in tops)


def _special(mode: int) -> str | None:
    """What a non-regular, non-directory file is ("a FIFO"...), or None for a regular file or a folder."""
    for test, what in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return what
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return "not a regular file"


class _Walk:
    """One walk of a local INPUT. Invariants (tests/test_listing.py checks each on real files):

    - every regular file reachable under INPUT without leaving it is listed exactly once per distinct path
      that reaches it without re-entering a listed folder: a file under two names (a hard link, a file
      symlink inside INPUT) is listed under both; the content ids of the read step make them one item;
    - every folder (same ``(st_dev, st_ino)``) is listed once: real folders first, then folders reached
      through links, in path order; a link (or a second mount) that would enter a folder already listed is one
      :class:`Skipped` entry naming the first path, so a loop (``d/up -> ..``) costs one line, not a re-listing;
    - a symlink whose resolved target lies outside the resolved INPUT is not followed unless
      ``follow_links``: one :class:`Skipped` entry naming the target;
    - a dangling symlink, a loop of links (ELOOP), a FIFO, a socket, a character or block device, directly or
      through a link, is never opened: one :class:`Skipped` entry each, with its reason;
    - nothing whose resolved path equals or lies under an excluded location is listed or descended: the path
      met is in ``excluded`` (INPUT itself included, when it is inside OUT);
    - a folder that cannot be read is one :class:`Skipped` entry; a file that cannot be read stays listed (the
      read step records the error row); hidden files are skipped without a note.
    """

    def __init__(self, root: str, exclude: Sequence[str], follow_links: bool):
        self.root = root
        self.root_real = os.path.realpath(root)
        self.exclude = [os.path.realpath(os.path.abspath(os.path.expanduser(e))) for e in exclude if "://" not in e]
        self.follow_links = follow_links
        self.files: list[tuple[str, os.stat_result]] = []
        self.skipped: list[Skipped] = []
        self.excluded: list[str] = []
        self.seen: dict[tuple[int, int], str] = {}   # (st_dev, st_ino) of a listed folder -> its listed path
        self.links: list[str] = []                    # a heap of symlinks met, resolved after the real folders

    def inside(self, real: str) -> bool:
        return lies_under(real, [self.root_real])

    def run(self) -> None:
        st = os.stat(self.root)   # INPUT itself is followed: it is what the user named
        if lies_under(self.root_real, self.exclude):
            self.excluded.append(self.root)
        elif stat.S_ISDIR(st.st_mode):
            self.folder(self.root, self.root_real, st)
            while self.links:
                self.link(heapq.heappop(self.links))
        elif stat.S_ISREG(st.st_mode):
            self.files.append((self.root, st))
        else:
            self.skipped.append(Skipped(self.root, f"{_special(st.st_mode)}: not read"))

    def folder(self, path: str, real: str, st: os.stat_result) -> None:
        """List the folder ``path`` (resolved: ``real``) and every real folder under it; links wait."""
        stack = [(path, real, st)]
        while stack:
            path, real, st = stack.pop()
            key = (st.st_dev, st.st_ino)
            if key in self.seen:
                self.skipped.append(Skipped(path, f"same folder as {self.seen[key]} (already listed)"))
                continue
            self.seen[key] = path
            try:
                with os.scandir(path) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                self.skipped.append(Skipped(path, f"folder not listed: {exc.strerror or exc}"))
                continue
            for entry in reversed(entries):   # the stack pops them in name order
                child, child_real = entry.path, os.path.join(real, entry.name)
                try:
                    if entry.is_symlink():
                        heapq.heappush(self.links, child)
                        continue
                    est = entry.stat(follow_symlinks=False)
                except OSError as exc:   # removed while listed
                    self.skipped.append(Skipped(child, f"not read: {exc.strerror or exc}"))
                    continue
                if lies_under(child_real, self.exclude):
                    self.excluded.append(child)
                elif stat.S_ISDIR(est.st_mode):
                    stack.append((child, child_real, est))
                elif _hidden(entry.name):
                    continue
                elif stat.S_ISREG(est.st_mode):
                    self.files.append((child, est))
                else:
                    self.skipped.append(Skipped(child, f"{_special(est.st_mode)}: not read"))

    def link(self, path: str) -> None:
        """A symlink met in a listed folder: followed, or one :class:`Skipped` / ``excluded`` entry."""
        hidden = _hidden(os.path.basename(path))   # a hidden name is a file's: skipped without a note
        try:
            st = os.stat(path)
        except OSError as exc:
            if hidden:
                return
            if exc.errno == errno.ELOOP:
                self.skipped.append(Skipped(path, "symlink loop (too many levels of symbolic links): not read"))
            elif exc.errno == errno.ENOENT:
                self.skipped.append(Skipped(path, f"dangling symlink: its target {_target(path)} does not exist"))
            else:
                self.skipped.append(Skipped(path, f"symlink not followed: {exc.strerror or exc}"))
            return
        if hidden and not stat.S_ISDIR(st.st_mode):
            return
        real = os.path.realpath(path)
        if lies_under(real, self.exclude):
            self.excluded.append(path)
        elif not self.follow_links and not self.inside(real):
            self.skipped.append(Skipped(path, f"symlink leads outside INPUT to {real} "
                                              "(not followed: input.follow_links is false)"))
        elif stat.S_ISDIR(st.st_mode):
            first = self.seen.get((st.st_dev, st.st_ino))
            if first is None:
                self.folder(path, real, st)
            elif lies_under(os.path.realpath(os.path.dirname(path)), [real]):
                self.skipped.append(Skipped(path, f"directory loop: leads back to {first} (already listed)"))
            else:
                self.skipped.append(Skipped(path, f"same folder as {first} (already listed)"))
        elif stat.S_ISREG(st.st_mode):
            self.files.append((path, st))
        else:
            self.skipped.append(Skipped(path, f"symlink to {_special(st.st_mode)} ({real}): not read"))


def _target(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def _sniff_local(path: str) -> bytes:
    """The first bytes of a local file, opened non-blocking and read only when it is (still) a regular file:
    a name swapped for a FIFO after the listing cannot make the run wait."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return b""   # unreadable: classified by extension, the read step records the error
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        return os.read(fd, SNIFF_BYTES)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _list_local(uri: str, root: str, max_files: int | None, threads: int, exclude: Sequence[str],
                follow_links: bool) -> Listing:
    if not os.path.exists(root):
        raise _not_found(uri)
    walk = _Walk(root, exclude, follow_links)
    try:
        walk.run()
    except OSError as exc:   # INPUT itself cannot be read
        raise SourceError(f"input not readable: {uri}: {exc.strerror or exc}") from None
    found = sorted(walk.files, key=lambda f: f[0])[:max_files]

    def sniff(entry: tuple[str, os.stat_result]) -> FileRef:
        path, st = entry
        head = _sniff_local(path) if st.st_size else b""
        return FileRef(uri=path, path=path, size=st.st_size, media_type=classify(path, head),
                       mtime_ns=st.st_mtime_ns)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        files = list(pool.map(sniff, found))
    return Listing(files, sorted(walk.skipped, key=lambda s: s.uri), sorted(set(walk.excluded)))


def _list_bucket(uri: str, max_files: int | None, threads: int, exclude: Sequence[str]) -> Listing:
    """A bucket prefix: every object under it, sorted, hidden names skipped; an object whose key equals or
    lies under an excluded prefix (of the same scheme) is not listed, and that prefix is in ``excluded``."""
    fs, root = open_filesystem(uri)
    info = _info(fs, root, uri)
    if info.type == pafs.FileType.NotFound:
        raise _not_found(uri)
    scheme = uri.split("://", 1)[0].lower()
    prefixes = {open_filesystem(e)[1].rstrip("/"): e for e in exclude
                if "://" in e and e.split("://", 1)[0].lower() == scheme}   # key prefix -> as the caller wrote it
    if info.type == pafs.FileType.File:
        infos = [info]
    else:
        try:
            infos = [i for i in fs.get_file_info(pafs.FileSelector(root, recursive=True))
                     if i.type == pafs.FileType.File]
        except OSError as exc:
            raise SourceError(storage.describe_error(uri, exc, "list")) from None
    excluded: set[str] = set()
    kept = []
    for i in sorted(infos, key=lambda i: i.path):
        hit = next((p for p in prefixes if lies_under(i.path, [p])), None) if prefixes else None
        if hit is not None:
            excluded.add(prefixes[hit])
        elif not _hidden(os.path.basename(i.path)):
            kept.append(i)
    kept = kept[:max_files]

    def sniff(i: pafs.FileInfo) -> FileRef:
        head = b""
        if i.size:
            try:
                with fs.open_input_file(i.path) as f:
                    head = f.read(SNIFF_BYTES)
            except OSError:
                head = b""   # unreadable: classified by extension, the read step records the error
        file_uri = uri if i is info else _to_uri(uri, root, i.path)
        return FileRef(uri=file_uri, path=i.path, size=i.size or 0, media_type=classify(i.path, head),
                       mtime_ns=i.mtime_ns)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        files = list(pool.map(sniff, kept))
    return Listing(files, [], sorted(excluded))


def list_input(uri: str, *, max_files: int | None = None, threads: int = 16, exclude: Sequence[str] = (),
               follow_links: bool = False) -> Listing:
    """The files under ``uri`` (a local folder or file, or a bucket prefix), classified by their first bytes.

    ``exclude``: locations never listed (OUT, the DB; local paths or bucket URIs), met ones are in
    ``excluded``. ``follow_links``: follow symlinks that lead outside INPUT (loops are never followed).
    ``max_files``: at most this many files, the first in path order. The rules of a local walk are those of
    :class:`_Walk`; a missing INPUT raises :class:`SourceError` (one line)."""
    if "://" in uri:
        return _list_bucket(uri, max_files, threads, exclude)
    root = os.path.abspath(os.path.expanduser(uri))
    return _list_local(uri, root, max_files, threads, exclude, follow_links)


__all__ = ["Listing", "Skipped", "list_input"]
