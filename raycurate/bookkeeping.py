"""A pipeline's bookkeeping, without Ray: its crash ledgers, one per part (:class:`~raycurate.faults.CrashLedger`),
and its progress counts (:class:`~raycurate.progress.StepCounts`), in one object that the engine runs as one
small actor (:mod:`raycurate.engine.bookkeeping`). This module imports nothing heavy: the actor's process
loads only what its class needs (~130 MB RSS; the class in a module of ``raycurate.engine`` made it 230)."""
from __future__ import annotations

from typing import Any, Mapping

from .faults import CrashLedger
from .progress import StepCounts


class RunBook:
    """A :class:`~raycurate.faults.CrashLedger` per part (``images``, ``videos``), made on first use, and one
    :class:`~raycurate.progress.StepCounts`."""

    def __init__(self) -> None:
        self.ledgers: dict[str, CrashLedger] = {}
        self.counts = StepCounts()

    def _ledger(self, part: str) -> CrashLedger:
        return self.ledgers.setdefault(part, CrashLedger())

    def begin(self, part: str, key: str) -> int:
        return self._ledger(part).begin(key)

    def end(self, part: str, key: str) -> None:
        self._ledger(part).end(key)

    def crashed(self, part: str, scope: str, item: str) -> None:
        self._ledger(part).crashed(scope, item)

    def report(self, part: str) -> dict[str, Any]:
        return self._ledger(part).report()

    def add(self, counts: Mapping[str, int]) -> None:
        for key, n in counts.items():
            self.counts.add(key, n)

    def snapshot(self) -> dict[str, int]:
        return self.counts.snapshot()
