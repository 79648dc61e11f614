"""Worker deaths (:mod:`raycurate.faults`) on Ray: Ray restarts actors and retries their batches; the crash
ledger, one actor per pipeline on the driver's node, turns a file that keeps killing workers into an error row."""
from __future__ import annotations

import logging
import os
import uuid
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

import pyarrow as pa
import ray

from ..faults import CrashLedger, guarded


class RemoteLedger:
    """A worker's view of the run's :class:`~raycurate.faults.CrashLedger` actor."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def begin(self, key: str) -> int:
        return int(ray.get(self.handle.begin.remote(key)))

    def end(self, key: str) -> None:
        ray.get(self.handle.end.remote(key))

    def crashed(self, scope: str, item: str) -> None:
        ray.get(self.handle.crashed.remote(scope, item))


_WORKER_LEDGERS: dict[str, RemoteLedger | None] = {}


def worker_ledger(name: str | None) -> RemoteLedger | None:
    """The ledger called ``name`` (looked up once per worker process); None without one."""
    if not name:
        return None
    if name not in _WORKER_LEDGERS:
        try:
            _WORKER_LEDGERS[name] = RemoteLedger(ray.get_actor(name))
        except ValueError:
            logging.getLogger(__name__).warning("crash ledger %s not found: batches run unguarded", name)
            _WORKER_LEDGERS[name] = None
    return _WORKER_LEDGERS[name]


@contextmanager
def crash_ledger(run_id: str, what: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """A crash ledger actor for one pipeline, pinned to the driver's node (if that node dies the run is
    gone anyway); yields its name and a dict that holds its report once the pipeline is done."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # unique per pipeline: a worker process outlives a pipeline and keeps its handle by name (worker_ledger),
    # so a resumed run in the same process must not meet the killed ledger of its first try
    name = f"raycurate-crash-ledger-{what}-{run_id}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    actor = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(CrashLedger).options(
        name=name, scheduling_strategy=NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(),
                                                                      soft=False)).remote()
    report: dict[str, Any] = {}
    try:
        yield name, report
        report.update(ray.get(actor.report.remote()))
    finally:
        ray.kill(actor)


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
