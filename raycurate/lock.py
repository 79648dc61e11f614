"""One writer per OUT: the lock a run holds on OUT and on its DB (:func:`hold`).

A run holds ``.raycurate-lock.json`` at the root of OUT (a folder or a bucket prefix, through
:class:`~raycurate.storage.OutputDir`) and at the root of its DB when that is not OUT's root itself (a DB inside
OUT is locked too: a run whose ``--db`` points into another run's OUT meets that run there). The file names its
holder: host, pid, start, lease end, a random nonce, the command line (secrets redacted).

The rules, each an invariant:

* **Live**: a lock whose lease has not ended and whose holder is not known dead is never taken:
  :class:`LockHeld` (one line naming host, pid and start), or with ``wait`` a poll until it is free or stale.
* **Lease**: the holder moves ``lease_until`` to now + ``lease_s`` every ``renew_s`` (< ``lease_s``) from a
  daemon thread while it lives, so a lock whose lease ended belongs to a run that stopped (or hung longer than
  ``lease_s``). Leases compare wall clocks: hosts sharing OUT must agree on the time well within ``lease_s``.
* **Takeover**: a lock whose lease ended, or whose holder is on this host with its pid gone, or whose file
  cannot be read, is taken over with a note (in :attr:`LockInfo.notes`, and logged as one line).
* **Release**: leaving :func:`hold` (normally or by any exception), or :func:`release_held` (a process leaving
  without unwinding), deletes each lock whose nonce is still ours; a lock another run took by then is left.
  A process killed outright leaves its lock to the takeover rule (at once on its host: its pid is gone).
* **Local, atomic**: a free lock is taken by hard-linking a private file that already holds the record to the
  lock's name (``O_CREAT|O_EXCL`` where links are refused; a reader then waits out an empty file younger than
  5 s): of two runs exactly one wins. A stale lock is first renamed to a name of the taker's own (one renamer
  wins); if what it moved is not the stale lock it read (another run took over in between), it is put back.
* **Bucket**: pyarrow has no conditional write, so the taker writes the lock, waits ``settle_s``, reads it
  back and holds it only if its nonce is still there (else another run won, and it starts over). The window
  this leaves: a run that stalls more than ``settle_s`` between reading the lock free and writing its own
  overwrites a lock another run has already read back; both then hold it until the overwritten one's next
  renewal, which logs that it lost the lock.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from . import storage

LOCK_FILE = ".raycurate-lock.json"
LEASE_S = 60.0       # how long a lock lives without renewal (renewed every lease_s / 4)
SETTLE_S = 1.0       # in a bucket: the wait between writing a lock and reading it back


class LockHeld(OSError):
    """OUT (or the DB) is locked by a live run; the message is one line naming it."""


@dataclass
class LockInfo:
    """The locks a run holds: their roots, its nonce and record, the notes of the stale locks it took over."""
    roots: list[str]
    nonce: str
    record: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def _iso(t: float, timespec: str = "seconds") -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec=timespec)


def _parse(data: bytes) -> dict[str, Any]:
    """A lock's record; {} when the bytes are not one."""
    try:
        rec = json.loads(data.decode("utf-8"))
    except ValueError:
        return {}
    return rec if isinstance(rec, dict) else {}


def _stale(rec: dict[str, Any], now: float) -> str | None:
    """Why the lock ``rec`` may be taken over (None: it is live)."""
    if not rec:
        return "its lock file is unreadable"
    if rec.get("host") == socket.gethostname():
        try:
            os.kill(int(rec.get("pid")), 0)
        except ProcessLookupError:
            return "its process is gone"
        except (OSError, ValueError, TypeError):   # PermissionError: it lives, under another user
            pass
    try:
        lease_until = datetime.fromisoformat(str(rec.get("lease_until"))).timestamp()
    except ValueError:
        lease_until = 0.0
    return f"its lease expired at {rec.get('lease_until')}" if lease_until < now else None


def _who(rec: dict[str, Any]) -> str:
    return f"pid {rec.get('pid')} on {rec.get('host')}, started {rec.get('started_at')}"


class _Lock:
    """The lock file at one root (a local folder or a bucket prefix)."""

    def __init__(self, root: str, settle_s: float) -> None:
        self.out = storage.OutputDir(root)
        self.made = not self.out.remote and not os.path.isdir(self.out.root)   # removed again when left empty
        self.out.makedirs()
        self.settle_s = settle_s
        self.path = None if self.out.remote else self.out.local(LOCK_FILE)

    def read(self) -> dict[str, Any] | None:
        """The lock's record; None when there is none, {} when it cannot be read as one."""
        try:
            return _parse(self.out.read_bytes(LOCK_FILE))
        except FileNotFoundError:
            return None

    def being_written(self) -> bool:
        """An unreadable local lock younger than 5 s: one taken by an exclusive create, its record on the way."""
        try:
            return self.path is not None and time.time() - os.stat(self.path).st_mtime < 5
        except OSError:
            return False

    def _private(self, data: bytes, nonce: str) -> str:
        tmp = f"{self.path}.{nonce}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        return tmp

    def _create(self, data: bytes, nonce: str) -> bool:
        """Locally: the lock made ours if its name is free (atomic)."""
        assert self.path is not None
        tmp = self._private(data, nonce)
        try:
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        except OSError:   # no hard links here: an exclusive create
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return True
        finally:
            os.unlink(tmp)

    def claim(self, data: bytes, nonce: str, stale: dict[str, Any] | None) -> bool:
        """The lock made ours, free (``stale`` None) or stale (``stale``: its record as read); False: another
        run got there first."""
        if self.out.remote:
            self.out.write_bytes(LOCK_FILE, data)
            time.sleep(self.settle_s)
            return (self.read() or {}).get("nonce") == nonce
        assert self.path is not None
        if stale is not None:
            aside = f"{self.path}.{nonce}.stale"
            try:
                os.rename(self.path, aside)
            except FileNotFoundError:   # another taker moved it first
                return False
            with open(aside, "rb") as f:
                moved = _parse(f.read())
            if moved.get("nonce") != stale.get("nonce"):   # a fresh lock: put it back
                try:
                    os.link(aside, self.path)
                except FileExistsError:
                    pass
            os.unlink(aside)
            if moved.get("nonce") != stale.get("nonce"):
                return False
        return self._create(data, nonce)

    def renew(self, data: bytes, nonce: str) -> bool:
        """The lease moved on, if the lock is still ours (False: it is not)."""
        if (self.read() or {}).get("nonce") != nonce:
            return False
        if self.out.remote:
            self.out.write_bytes(LOCK_FILE, data)
        else:
            os.replace(self._private(data, nonce), str(self.path))   # readers see the old or the new record
        return True

    def release(self, nonce: str) -> None:
        if (self.read() or {}).get("nonce") != nonce:
            return
        if self.out.remote:
            assert self.out.fs is not None
            self.out.fs.delete_file(self.out.sink(LOCK_FILE)[0])
        else:
            os.unlink(str(self.path))
            if self.made and not os.listdir(self.out.root):   # a DB folder the run never wrote into
                os.rmdir(self.out.root)


class _Held:
    """The locks one :func:`hold` took, renewed until :meth:`release`; in ``_HELD`` meanwhile."""

    def __init__(self, nonce: str, record: Callable[[], bytes], renew_s: float, log: Callable[[str], None]):
        self.nonce, self.record, self.renew_s, self.log = nonce, record, renew_s, log
        self.locks: list[_Lock] = []
        self.stop = threading.Event()

    def renew(self) -> None:
        """The leases renewed every ``renew_s`` until released; a lock found taken is said once and left."""
        while not self.stop.wait(self.renew_s):
            with _GUARD:
                for lock in [] if self.stop.is_set() else list(self.locks):
                    try:
                        if not lock.renew(self.record(), self.nonce):
                            self.log(f"[raycurate] lost the lock {lock.out.uri(LOCK_FILE)}: another run took it over")
                            self.locks.remove(lock)
                    except OSError as exc:   # a passing network fault: the next renewal tries again
                        self.log(f"[raycurate] could not renew the lock {lock.out.uri(LOCK_FILE)}: {exc}")

    def release(self) -> None:
        with _GUARD:
            self.stop.set()
            _HELD.discard(self)
            while self.locks:
                lock = self.locks.pop()
                try:
                    lock.release(self.nonce)
                except OSError as exc:   # its lease ends it
                    self.log(f"[raycurate] could not release the lock {lock.out.uri(LOCK_FILE)}: {exc}")


_GUARD = threading.RLock()   # renewals and releases one at a time (a signal handler's release_held() too)
_HELD: set[_Held] = set()


def release_held() -> None:
    """Every lock this process holds released now: for a process about to leave without unwinding (SIGTERM)."""
    with _GUARD:
        for held in list(_HELD):
            held.release()


@contextmanager
def hold(out_dir: str, db_uri: str, *, wait: bool = False, log: Callable[[str], None] = print,
         lease_s: float = LEASE_S, renew_s: float | None = None, settle_s: float = SETTLE_S,
         poll_s: float | None = None, argv: list[str] | None = None) -> Iterator[LockInfo]:
    """Hold the locks of ``out_dir`` and ``db_uri`` while the block runs (the module's rules), taken in sorted
    order (no two runs wait on each other).

    ``wait``: a live lock is polled every ``poll_s`` (default ``lease_s / 12``, at least 0.2 s) until it is
    free or stale, after one line to ``log``; else :class:`LockHeld`. ``renew_s`` defaults to ``lease_s / 4``.
    A root that takes no writes is a :class:`~raycurate.storage.SourceError`. Yields the :class:`LockInfo`."""
    nonce = secrets.token_hex(8)
    base = {"host": socket.gethostname(), "pid": os.getpid(), "started_at": _iso(time.time()), "nonce": nonce,
            "argv": storage.redact_argv(list(argv)) if argv is not None else None}

    def record() -> bytes:
        return json.dumps({**base, "lease_until": _iso(time.time() + lease_s, "milliseconds")}).encode("utf-8")

    info = LockInfo(roots=[], nonce=nonce, record=base)
    held = _Held(nonce, record, renew_s if renew_s is not None else lease_s / 4, log)
    roots = sorted({p.rstrip("/") if storage.is_remote(p) else os.path.abspath(os.path.expanduser(p))
                    for p in (out_dir, db_uri)})
    with _GUARD:
        _HELD.add(held)
    try:
        for root in roots:
            try:
                lock = _Lock(root, settle_s)
                with _GUARD:   # before it is taken: an interrupt while taking it still releases it
                    held.locks.append(lock)
                info.notes += _take(lock, root, record, nonce, wait, log,
                                    poll_s if poll_s is not None else max(0.2, lease_s / 12))
            except OSError as exc:   # a folder or bucket that takes no writes: one line
                if isinstance(exc, LockHeld):
                    raise
                raise storage.SourceError(storage.describe_error(storage.join(root, LOCK_FILE), exc, "lock")) \
                    from None
            info.roots.append(root)
        threading.Thread(target=held.renew, name="raycurate-lock", daemon=True).start()
        yield info
    finally:
        held.release()


def _take(lock: _Lock, root: str, record: Callable[[], bytes], nonce: str, wait: bool,
          log: Callable[[str], None], poll_s: float) -> list[str]:
    """``lock`` taken; the note of a takeover."""
    said = False
    while True:
        rec = lock.read()
        why = None if rec is None else _stale(rec, time.time())
        if rec == {} and lock.being_written():
            time.sleep(0.1)
            continue
        if rec is None or why:
            if not lock.claim(record(), nonce, rec):
                continue
            if rec is None:
                return []
            note = f"took over the lock on {root} of the run `{' '.join(rec.get('argv') or []) or '?'}` " \
                   f"({_who(rec)}): {why}"
            log(f"[raycurate] {note}")
            return [note]
        if not wait:
            raise LockHeld(f"{root} is in use by another run ({_who(rec)}, lease until {rec.get('lease_until')}): "
                           "wait for it, or pass --wait")
        if not said:
            log(f"[raycurate] waiting for the run holding {root}: {_who(rec)}")
            said = True
        time.sleep(poll_s)


__all__ = ["LEASE_S", "LOCK_FILE", "LockHeld", "LockInfo", "hold", "release_held"]
