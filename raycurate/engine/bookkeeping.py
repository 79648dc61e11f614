"""A pipeline's one bookkeeping actor (a :class:`~raycurate.bookkeeping.RunBook`, on the driver's node): its
crash ledgers, one per part (:mod:`.ledger`), and its progress counts (:mod:`.progress`). One actor instead of
one per ledger and one for the counts: every Ray actor is a process of its own (~130 MB RSS, measured by
``scripts/bench_run.py --memory-detail``), and a process to start."""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from typing import Any, Iterator

import ray

from ..bookkeeping import RunBook

PART_SEP = "#"   # a ledger's address: "{book}#{part}"


def book_handle(name: str) -> Any:
    """The book called ``name`` (raises ``ValueError`` where there is none)."""
    return ray.get_actor(name)


@contextmanager
def bookkeeping(run_id: str, what: str) -> Iterator[str]:
    """The pipeline's book, pinned to the driver's node (if that node dies the run is gone anyway); yields its
    name. Ray restarts it if it dies (a restarted ledger forgets what began: a batch is then tried once more)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # unique per pipeline: a worker process outlives a pipeline and keeps its handles by name, so a resumed
    # run in the same process must not meet the killed book of its first try
    name = f"raycurate-book-{what}-{run_id}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    actor = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(RunBook).options(
        name=name, scheduling_strategy=NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(),
                                                                      soft=False)).remote()
    try:
        yield name
    finally:
        ray.kill(actor)
