"""Live progress on Ray: the workers report their counts per batch to the pipeline's bookkeeping actor
(:mod:`.bookkeeping`, on the driver's node, which holds a :class:`~raycurate.progress.StepCounts`); the driver
polls it and shows a :class:`~raycurate.progress.Progress` (bars on a terminal, a line every 10 s in logs) and,
for the UI, writes it to ``OUT/logs/progress-{images,videos}.json``."""
from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import ray

from ..console import console
from ..progress import Progress, ProgressRenderer, Step
from .bookkeeping import book_handle

POLL_S = 0.5
_COUNTERS: dict[str, Any] = {}


def report(name: str | None, key: str, n: int) -> None:
    """Add ``n`` to step ``key`` of the counts of the book called ``name`` (looked up once per process); never
    waits, never fails a batch: progress is only shown."""
    report_many(name, {key: n})


def report_many(name: str | None, counts: Mapping[str, int]) -> None:
    """:func:`report` of several steps in one call to the book."""
    counts = {k: int(n) for k, n in counts.items() if n > 0}
    if not name or not counts:
        return
    if name not in _COUNTERS:
        try:
            _COUNTERS[name] = book_handle(name)
        except ValueError:
            logging.getLogger(__name__).warning("progress counter %s not found: progress not reported", name)
            _COUNTERS[name] = None
    handle = _COUNTERS[name]
    if handle is not None:
        try:
            handle.add.remote(counts)
        except Exception:  # a counter gone (the pipeline ended): nothing to show any more
            _COUNTERS[name] = None


class _Poller:
    """The driver's thread: reads the counter, updates the progress, redraws it, writes the UI's file."""

    def __init__(self, actor: Any, progress: Progress, files: Sequence[tuple[Progress, str]]) -> None:
        self.actor = actor
        self.progress = progress
        self.renderer = ProgressRenderer(progress, console())
        self.files = list(files)   # each part of the pipeline's progress and the file it is written to
        self.counts: dict[str, int] = {}   # the last counts read
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="raycurate-progress", daemon=True)

    def _poll(self) -> None:
        try:
            counts = ray.get(self.actor.snapshot.remote(), timeout=10)
        except Exception:  # progress must never break a run
            return
        self.progress.update(counts)
        self.renderer.refresh()
        for part, path in self.files:
            part.update(counts)
            tmp = f"{path}.tmp"
            try:
                with open(tmp, "w", encoding="utf-8") as f:
                    f.write(part.to_json())
                os.replace(tmp, path)
            except OSError:
                pass
        self.counts = counts

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            self._poll()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()
        self.renderer.close()


@dataclass(frozen=True)
class Part:
    """One part of a pipeline's progress (the video cascade, the image analysis): its title, its steps and,
    for the UI, the file its counts are written to (``OUT/logs/progress-{videos,images}.json``)."""
    title: str
    steps: Sequence[Step]
    path: str | None = None


@contextmanager
def live_progress(book: str, parts: Sequence[Part]) -> Iterator[tuple[str, dict[str, int]]]:
    """The driver's display of the counts kept by the pipeline's book (:func:`~.bookkeeping.bookkeeping`)
    while the pipeline runs (all ``parts``' steps, in order); yields the name the workers report to
    (:func:`report`), and a dict that holds the final counts once the pipeline is done. Each part with a
    ``path`` is written there as JSON at each poll."""
    files = []
    for part in parts:
        if part.path:
            os.makedirs(os.path.dirname(part.path), exist_ok=True)
            files.append((Progress(part.title, part.steps), part.path))
    whole = Progress(" + ".join(p.title for p in parts), [s for p in parts for s in p.steps])
    poller = _Poller(book_handle(book), whole, files)
    poller.start()
    final: dict[str, int] = {}
    try:
        yield book, final
    finally:
        poller.stop()
        final.update(poller.counts)
        _COUNTERS.pop(book, None)
