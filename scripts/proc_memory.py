"""Peak memory of a process and everything it started (Ray's raylet, GCS and workers included), sampled in a
thread: summed RSS (pages of Ray's shared-memory object store count in every process that maps them) and
summed USS (memory private to each process: the better total)."""
from __future__ import annotations

import threading
import time

import psutil


class TreePeak:
    """``with TreePeak(pid) as peak: ...`` -> ``peak.rss``, ``peak.uss`` (bytes, summed over the tree at its
    largest), ``peak.by_name`` (each process's RSS at the moment of the RSS peak)."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.rss = 0
        self.uss = 0
        self.by_name: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            procs = [root] + root.children(recursive=True)
        except psutil.NoSuchProcess:
            return
        rss = uss = 0
        names: dict[str, int] = {}
        for p in procs:
            try:
                mem = p.memory_full_info()
                name = " ".join(p.cmdline()[:1] + [a for a in p.cmdline()[1:3] if "ray::" in a])[:60] or p.name()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            rss += mem.rss
            uss += mem.uss
            names[f"{p.pid} {p.name()} {name}"] = mem.rss
        if rss > self.rss:
            self.rss, self.by_name = rss, names
        self.uss = max(self.uss, uss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.interval)

    def __enter__(self) -> "TreePeak":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
