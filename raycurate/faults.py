"""Worker deaths: retried batches, and files that kill a worker.

Ray restarts an actor that dies (``max_restarts``) and resubmits the batch it was
working on (``max_task_retries``); a task whose worker dies is run again
(``max_retries``). That covers a lost node or an out-of-memory kill. A file that
crashes native code (a decoder or a model runtime that segfaults on it) would
kill every retry of its batch, forever, and its batch-mates with it.

The crash ledger breaks that loop. Before a worker processes a batch it records
the batch as begun, and as ended once done; a batch that is begun while an
earlier begin of it never ended was in flight when a worker died. Such a batch is
processed one file at a time, each file begun and ended on its own, so the next
death names its file. A file that was in flight at two deaths (its batch's and
its own) is not tried again: it becomes a row with an error and the run goes on.

This module is plain Python (no ray): :class:`CrashLedger` holds the counts
(:mod:`raycurate.engine` keeps one per part of a pipeline in the pipeline's
bookkeeping actor, :mod:`raycurate.bookkeeping`, on the driver's node),
:func:`guarded` is the protocol a worker follows around a batch.

Fault injection for tests: ``RAYCURATE_TEST_KILL="SCOPE:MATCH[:once];..."`` makes a
worker of ``SCOPE`` (``decode``, an analyser's name, ``stage1``...) SIGKILL
itself when it processes an item whose key contains ``MATCH``; with ``once``,
only the first time across the run (a marker file in ``RAYCURATE_TEST_KILL_DIR``).
``RAYCURATE_TEST_HOLD="SCOPE:MATCH;..."`` makes a worker of ``SCOPE`` that reaches an item whose key contains
``MATCH`` write a marker file in ``RAYCURATE_TEST_KILL_DIR`` (:func:`hold_marker`: the key and the pid, as
JSON) and then sleep until it is killed, its parent is gone or the marker is removed (then it goes on), for
``RAYCURATE_TEST_HOLD_S`` seconds at most (600 by default): a
test that waits for the marker knows the run is half-way, that item and its batch not analysed. Both hooks
are announced at one point, :func:`fault_point`.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from typing import Any, Callable, Protocol, Sequence, TypeVar

R = TypeVar("R")

KILL_LIMIT = 2       # deaths with a file in flight after which it is recorded as an error, not retried
MAX_LISTED = 100     # crashed files reported by name (the count is never capped)


class Ledger(Protocol):
    def begin(self, key: str) -> int: ...
    def end(self, key: str) -> None: ...
    def crashed(self, scope: str, item: str) -> None: ...


class CrashLedger:
    """Begun-but-not-ended counts of batches and items, and what died on them."""

    def __init__(self) -> None:
        self._open: dict[str, int] = {}
        self.retried_batches = 0
        self.crashed_items: list[dict[str, str]] = []
        self._crashed: set[tuple[str, str]] = set()

    def begin(self, key: str) -> int:
        """Record ``key`` as begun; return how many earlier begins of it never ended (worker deaths)."""
        prior = self._open.get(key, 0)
        if prior and ":batch:" in key:
            self.retried_batches += 1
        self._open[key] = prior + 1
        return prior

    def end(self, key: str) -> None:
        self._open.pop(key, None)

    def crashed(self, scope: str, item: str) -> None:
        if (scope, item) in self._crashed:
            return
        self._crashed.add((scope, item))
        if len(self.crashed_items) < MAX_LISTED:
            self.crashed_items.append({"scope": scope, "item": item})

    def report(self) -> dict[str, Any]:
        return {"retried_batches": self.retried_batches, "crashed_files": len(self._crashed),
                "crashed": list(self.crashed_items), "kill_limit": KILL_LIMIT}


def crash_message(what: str) -> str:
    return (f"WorkerDied: a worker died twice while {what} this file (a crash in native code, or killed); "
            "it was not tried again")


def guarded(ledger: Ledger | None, scope: str, keys: Sequence[str], process: Callable[[list[int]], list[R]],
            crashed: Callable[[int], R]) -> list[R]:
    """``process(indices)`` over the batch whose items are ``keys``, under the crash ledger.

    ``process`` returns one result per index given; ``crashed(i)`` is the result for an item that
    killed a worker :data:`KILL_LIMIT` times. Without a ledger the batch is simply processed.
    """
    if ledger is None:
        return process(list(range(len(keys))))
    batch_key = f"{scope}:batch:" + hashlib.sha1("\n".join(keys).encode()).hexdigest()
    batch_deaths = ledger.begin(batch_key)
    if batch_deaths == 0:
        fault_point(scope, keys)
        out = process(list(range(len(keys))))
        ledger.end(batch_key)
        return out
    # A worker died with this batch in flight: one item at a time, so that the next death names its file.
    results: list[R] = []
    for i, key in enumerate(keys):
        item_key = f"{scope}:item:{key}"
        deaths = 1 + ledger.begin(item_key)   # the batch's death, then its own
        if deaths >= KILL_LIMIT:     # left open: a later retry of the batch skips it too
            ledger.crashed(scope, key)
            results.append(crashed(i))
        else:
            fault_point(scope, [key])
            results.extend(process([i]))
            ledger.end(item_key)
    ledger.end(batch_key)
    return results


def fault_point(scope: str, keys: Sequence[str]) -> None:
    """Where a worker of ``scope`` is about to process the items ``keys``: the test hooks of the module
    docstring (:func:`maybe_hold`, then :func:`maybe_kill`); nothing unless their variables are set."""
    maybe_hold(scope, keys)
    maybe_kill(scope, keys)


def _rules(var: str, scope: str, keys: Sequence[str]) -> list[list[str]]:
    """The rules of ``var`` (``SCOPE:MATCH[:...];...``) of ``scope`` that one of ``keys`` matches, split."""
    spec = os.environ.get(var)
    if not spec:
        return []
    rules = [r.split(":") for r in filter(None, (r.strip() for r in spec.split(";")))]
    return [parts for parts in rules if parts[0] == scope and any(parts[1] in k for k in keys)]


def hold_marker(directory: str, scope: str, match: str) -> str:
    """The file a worker holding on ``SCOPE:MATCH`` writes in ``directory`` (``RAYCURATE_TEST_KILL_DIR``)."""
    return os.path.join(directory, "hold-" + hashlib.sha1(f"{scope}:{match}".encode()).hexdigest() + ".json")


def maybe_hold(scope: str, keys: Sequence[str]) -> None:
    """The hold hook described in the module docstring; does nothing unless ``RAYCURATE_TEST_HOLD`` is set."""
    rules = _rules("RAYCURATE_TEST_HOLD", scope, keys)
    marker_dir = os.environ.get("RAYCURATE_TEST_KILL_DIR")
    if not rules or not marker_dir:
        return
    match = rules[0][1]
    key = next(k for k in keys if match in k)
    marker = hold_marker(marker_dir, scope, match)
    tmp = f"{marker}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:   # written whole, then renamed: a reader never sees half of it
        json.dump({"scope": scope, "match": match, "key": key, "pid": os.getpid()}, f)
    os.replace(tmp, marker)
    parent = os.getppid()
    until = time.monotonic() + float(os.environ.get("RAYCURATE_TEST_HOLD_S", "600"))
    while time.monotonic() < until and os.path.exists(marker):   # the test removes the marker: go on
        if os.getppid() != parent:   # what started this worker (Ray's raylet) is gone: so is the run
            os._exit(1)
        time.sleep(0.2)


def maybe_kill(scope: str, keys: Sequence[str]) -> None:
    """The test hook described in the module docstring; does nothing unless ``RAYCURATE_TEST_KILL`` is set."""
    for parts in _rules("RAYCURATE_TEST_KILL", scope, keys):
        rule = ":".join(parts)
        if len(parts) > 2 and parts[2] == "once":
            marker_dir = os.environ.get("RAYCURATE_TEST_KILL_DIR")
            if not marker_dir:
                continue
            marker = os.path.join(marker_dir, hashlib.sha1(rule.encode()).hexdigest())
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                continue
        os.kill(os.getpid(), signal.SIGKILL)
