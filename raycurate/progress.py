"""Live progress of a run, without Ray: counts per step (decoded, each analyser, stored; or the video
cascade's stages), their rates and ETAs, and how they are shown: bars on a terminal, a plain line at least
every 10 s elsewhere (logs, Ray jobs, the UI's run log).

The engine (:mod:`raycurate.engine.progress`) feeds a :class:`Progress` from the counts the workers report
per batch to the pipeline's small bookkeeping actor (it holds a :class:`StepCounts`:
:mod:`raycurate.bookkeeping`); everything here is plain and testable with a
fake clock.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, TextIO

LINE_INTERVAL_S = 10.0   # a plain line at least this often where there is no terminal
Clock = Callable[[], float]


@dataclass(frozen=True)
class Step:
    """One counted step: ``key`` as reported by the workers, ``label`` as shown, ``total`` when known."""
    key: str
    label: str
    total: int | None = None


class StepCounts:
    """Counts per step, added to by the workers (per batch) and read by the driver: the counter actor's class."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, key: str, n: int) -> None:
        self.counts[key] = self.counts.get(key, 0) + int(n)

    def snapshot(self) -> dict[str, int]:
        return dict(self.counts)


class Progress:
    """The counts of one pipeline's steps and what follows from them: each step's rate (items/s since its
    first item) and ETA (its total left at that rate)."""

    def __init__(self, title: str, steps: Sequence[Step], clock: Clock = time.monotonic) -> None:
        self.title = title
        self.steps = list(steps)
        self.clock = clock
        self.started = clock()
        self.counts = {s.key: 0 for s in self.steps}
        self._first: dict[str, tuple[float, int]] = {}   # key -> (time, count) when its first items were seen

    def update(self, counts: Mapping[str, int]) -> None:
        """Take the counts reported so far (absolute, as the counter holds them); unknown keys are ignored, and
        a count is held to its step's total (a batch run again after its worker died reports twice)."""
        now = self.clock()
        for s in self.steps:
            key = s.key
            n = int(counts.get(key, self.counts[key]))
            n = min(n, s.total) if s.total is not None else n
            if n > 0 and key not in self._first:
                self._first[key] = (now, n)
            self.counts[key] = n

    def elapsed(self) -> float:
        return self.clock() - self.started

    def rate(self, key: str) -> float | None:
        """Items per second since the step's first items arrived; None before a second reading moved it."""
        if key not in self._first:
            return None
        t0, n0 = self._first[key]
        dt, dn = self.clock() - t0, self.counts[key] - n0
        if dt <= 0 or dn <= 0:
            return None
        return dn / dt

    def eta(self, key: str) -> float | None:
        """Seconds left for the step at its rate; 0 when it is done; None without a total or a rate."""
        total = self.step(key).total
        if total is None:
            return None
        left = total - self.counts[key]
        if left <= 0:
            return 0.0
        rate = self.rate(key)
        return left / rate if rate else None

    def eta_total(self) -> float | None:
        """The pipeline's ETA: the longest of its steps' times left, a step without a rate of its own (its
        items arrive in large batches, or have not started) taken at the rate of the nearest step before it
        that has one; None while no step has a rate, or when the last step's total is unknown (the video path:
        how many frames a video yields is known once it is read)."""
        if not self.steps or self.steps[-1].total is None:
            return None
        longest, upstream = None, None
        for s in self.steps:
            upstream = self.rate(s.key) or upstream
            if s.total is None:
                continue
            left = s.total - self.counts[s.key]
            if left <= 0:
                continue
            if upstream is None:
                return None
            longest = max(longest or 0.0, left / upstream)
        return longest if longest is not None else (0.0 if upstream is not None else None)

    def step(self, key: str) -> Step:
        return next(s for s in self.steps if s.key == key)

    def line(self) -> str:
        """One plain line: ``[raycurate] images 0:12: decoded 16/58 (2.1/s), face 8/58, stored 0/58, ETA 0:21``
        (the ETA: :meth:`eta_total`'s, when known)."""
        return "[raycurate] " + snapshot_text(self.as_dict())

    def as_dict(self) -> dict[str, Any]:
        """What the UI reads (``OUT/logs/progress-images.json``): per step its label, count, total, rate and ETA;
        the pipeline's elapsed time and ETA."""
        return {"title": self.title, "elapsed_s": round(self.elapsed(), 1), "eta_s": _round(self.eta_total()),
                "steps": [{"key": s.key, "label": s.label, "count": self.counts[s.key], "total": s.total,
                           "rate": _round(self.rate(s.key)), "eta_s": _round(self.eta(s.key))}
                          for s in self.steps]}

    def to_json(self) -> str:
        return json.dumps(self.as_dict())


def snapshot_text(doc: Mapping[str, Any]) -> str:
    """A :meth:`Progress.as_dict` as text: ``images 0:12: decoded 16/58 (2.1/s), face 8/58, ..., ETA 0:21``."""
    parts = []
    for s in doc["steps"]:
        of = f"/{s['total']}" if s["total"] is not None else ""
        parts.append(f"{s['label']} {s['count']}{of}" + (f" ({s['rate']:.1f}/s)" if s["rate"] else ""))
    tail = f", ETA {clock_text(doc['eta_s'])}" if doc.get("eta_s") is not None else ""
    return f"{doc['title']} {clock_text(doc['elapsed_s'])}: " + ", ".join(parts) + tail


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def clock_text(seconds: float) -> str:
    """``75`` -> ``1:15``, ``3725`` -> ``1:02:05``."""
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class LineCadence:
    """Says when the next plain line is due: ``interval`` seconds after the last (the first: after the start)."""

    def __init__(self, interval: float = LINE_INTERVAL_S, clock: Clock = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self.last = clock()

    def due(self) -> bool:
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            return True
        return False


class ProgressRenderer:
    """Shows a :class:`Progress` on ``stream``: one tqdm bar per step, each with its rate and ETA, on a
    terminal (``tty``); else a :meth:`Progress.line` when one is due (the first as soon as a step has items,
    then at least every ``interval`` seconds) and one at the end."""

    def __init__(self, progress: Progress, stream: TextIO, tty: bool | None = None,
                 interval: float = LINE_INTERVAL_S) -> None:
        self.progress = progress
        self.stream = stream
        self.tty = _isatty(stream) if tty is None else tty
        self.cadence = LineCadence(interval, progress.clock)
        self._started = False   # a first line was written once a step had items
        self._bars: list[Any] = []

    def refresh(self) -> None:
        if self.tty:
            self._draw_bars()
            return
        first = not self._started and any(self.progress.counts.values())
        if first or self.cadence.due():
            self._started = self._started or first
            if first:
                self.cadence.last = self.progress.clock()
            self._write(self.progress.line())

    def close(self) -> None:
        if self.tty:
            self._draw_bars()
            for bar in self._bars:
                bar.close()
            self._bars = []
        else:
            self._write(self.progress.line() + " (done)")

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def _draw_bars(self) -> None:
        from tqdm import tqdm

        p = self.progress
        if not self._bars:
            width = max(len(s.label) for s in p.steps) if p.steps else 0
            fmt = "{desc}: {percentage:3.0f}%|{bar:24}| {n_fmt}/{total_fmt}{postfix}"
            self._bars = [tqdm(total=s.total, desc=f"{p.title} {s.label:<{width}}", file=self.stream,
                               position=i, leave=True, dynamic_ncols=True,
                               bar_format=fmt if s.total is not None else "{desc}: {n_fmt}{postfix}")
                          for i, s in enumerate(p.steps)]
        for bar, s in zip(self._bars, p.steps):
            rate, eta = p.rate(s.key), p.eta(s.key)
            if eta is None and s is p.steps[-1]:   # the last step (stored: in batches) shows the pipeline's
                eta = p.eta_total()
            bar.n = p.counts[s.key]
            shown = ([f"{rate:.1f}/s"] if rate else []) + ([f"ETA {clock_text(eta)}"] if eta is not None else [])
            bar.set_postfix_str(" ".join(shown), refresh=False)
            bar.refresh()


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


__all__ = ["LINE_INTERVAL_S", "LineCadence", "Progress", "ProgressRenderer", "Step", "StepCounts", "clock_text",
           "snapshot_text"]
