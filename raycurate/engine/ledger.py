"""Worker deaths (:mod:`raycurate.faults`) on Ray: Ray restarts actors and retries their batches; the crash
ledger, one per part of a pipeline, kept by its bookkeeping actor (:mod:`.bookkeeping`) on the driver's node,
turns a file that keeps killing workers into an error row."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

import pyarrow as pa
import ray

from ..faults import guarded
from .bookkeeping import PART_SEP, book_handle


class RemoteLedger:
    """A worker's view of one part's :class:`~raycurate.faults.CrashLedger` in the pipeline's book."""

    def __init__(self, handle: Any, part: str) -> None:
        self.handle = handle
        self.part = part

    def begin(self, key: str) -> int:
        return int(ray.get(self.handle.begin.remote(self.part, key)))

    def end(self, key: str) -> None:
        # not waited for: the book runs a caller's calls in the order they were sent, so a later begin of the
        # same key comes after it; one that never arrives (the worker died on the way) only counts as a death
        self.handle.end.remote(self.part, key)

    def crashed(self, scope: str, item: str) -> None:
        ray.get(self.handle.crashed.remote(self.part, scope, item))


_WORKER_LEDGERS: dict[str, RemoteLedger | None] = {}


def worker_ledger(name: str | None) -> RemoteLedger | None:
    """The ledger at ``name`` (``{book}#{part}``, looked up once per worker process); None without one."""
    if not name:
        return None
    if name not in _WORKER_LEDGERS:
        book, _, part = name.rpartition(PART_SEP)
        try:
            _WORKER_LEDGERS[name] = RemoteLedger(book_handle(book), part)
        except ValueError:
            logging.getLogger(__name__).warning("crash ledger %s not found: batches run unguarded", name)
            _WORKER_LEDGERS[name] = None
    return _WORKER_LEDGERS[name]


@contextmanager
def crash_ledger(book: str, part: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The crash ledger of one part of a pipeline, kept by its book (:func:`~.bookkeeping.bookkeeping`);
    yields its address, for the workers, and a dict that holds its report once the part is done."""
    report: dict[str, Any] = {}
    yield f"{book}{PART_SEP}{part}", report
    report.update(ray.get(book_handle(book).report.remote(part)))


def guarded_columns(batch: pa.Table, fields: Sequence[pa.Field], run: Any, *, ledger: str | None, scope: str,
                    keys: Sequence[str], crashed: Mapping[str, Any]) -> pa.Table:
    """``batch`` with ``fields`` appended, computed by ``run(part) -> {column: values}`` under the crash
    ledger: a row whose file killed a worker twice gets ``crashed`` (its other fields null)."""
    def process(indices: list[int]) -> list[dict[str, Any]]:
        out = run(batch if len(indices) == batch.num_rows else batch.take(indices))
        return [{f.name: out[f.name][j] for f in fields} for j in range(len(indices))]

    dead = {**{f.name: None for f in fields}, **crashed}
    rows = guarded(worker_ledger(ledger), scope, keys, process, lambda i: dead)
    for f in fields:
        batch = batch.append_column(f, pa.array([r[f.name] for r in rows], type=f.type))
    return batch
