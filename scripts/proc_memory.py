"""Peak memory of a process and everything it started (Ray's raylet, GCS and workers included), sampled in a
thread: summed RSS (pages of Ray's shared-memory object store and of shared libraries count in every process
that maps them), summed PSS (each shared page split between the processes that map it: the fair total) and
summed USS (memory private to each process: the floor). RSS is read at every sample, PSS and USS each second
and at each new RSS peak (their largest sums may fall between: a lower bound, close at the 1 s cadence)."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil

FULL_EVERY = 5   # PSS, USS and shared memory: every 5th sample (each second) and at each new RSS peak


def label(p: psutil.Process) -> str:
    """``pid what``: a Ray worker by its ``ray::`` title (the actor's class or task), a Python program by its
    script or module (Ray's agents, log monitor, dashboard), anything else by its name (raylet, gcs_server)."""
    cmd = p.cmdline()
    if cmd and cmd[0].startswith("ray::"):
        what = cmd[0].split()[0]
    elif cmd and "python" in p.name():
        args = [a for a in cmd[1:] if not a.startswith("-")][:1] or cmd[1:2]
        what = "python " + " ".join(a if len(a) < 40 else "..." + a[-37:] for a in args)
    else:
        what = p.name()
    return f"{p.pid} {what}"


def shmem(pid: int) -> int:
    """Bytes of shared memory (Ray's object store, /dev/shm) resident in ``pid`` (Linux; else 0)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssShmem:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class TreePeak:
    """``with TreePeak(pid) as peak: ...`` -> ``peak.rss``, ``peak.pss``, ``peak.uss`` (bytes, each summed over
    the tree at its own largest), ``peak.by_name`` (each process's RSS at the moment of the RSS peak) and
    ``peak.detail`` (each process's (rss, pss, uss, shm) at that moment; shm: the part of its RSS that is
    shared memory, Ray's object store)."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.rss = self.pss = self.uss = 0
        self.by_name: dict[str, int] = {}
        self._cpu: dict[int, float] = {}   # each process's CPU seconds, as last seen
        self._names: dict[int, str] = {}   # each process's label
        self.detail: dict[str, tuple[int, int, int, int]] = {}
        self._samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        """RSS and CPU of every process of the tree (cheap: /proc/PID/statm and stat); their PSS, USS and shared
        memory (/proc/PID/smaps: a walk of every mapping, ~2 ms a process, which would take a tenth of a core
        from the run it measures at every sample) only at a new RSS peak and every :data:`FULL_EVERY`-th
        sample."""
        try:
            root = psutil.Process(self.pid)
            procs = [root] + root.children(recursive=True)
        except psutil.NoSuchProcess:
            return
        seen: list[tuple[psutil.Process, str, int]] = []
        for p in procs:
            try:
                rss = p.memory_info().rss
                name = label(p)
                times = p.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            self._cpu[p.pid] = times.user + times.system
            self._names[p.pid] = name
            seen.append((p, name, rss))
        total = sum(rss for _, _, rss in seen)
        self._samples += 1
        peak = total > self.rss
        if not peak and self._samples % FULL_EVERY:
            return
        pss = uss = 0
        detail: dict[str, tuple[int, int, int, int]] = {}
        for p, name, rss in seen:
            try:
                mem = p.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            p_pss = getattr(mem, "pss", mem.uss)   # PSS is Linux only
            pss += p_pss
            uss += mem.uss
            detail[name] = (rss, p_pss, mem.uss, shmem(p.pid))
        if peak:
            self.rss, self.detail = total, detail
            self.by_name = {k: v[0] for k, v in detail.items()}
        self.pss = max(self.pss, pss)
        self.uss = max(self.uss, uss)

    @property
    def cpu_s(self) -> float:
        """CPU seconds (user + system) the tree used, each process as last sampled: a measure of work that
        other load on the machine does not inflate the way it inflates wall time."""
        return sum(self._cpu.values())

    @property
    def cpu_by_name(self) -> dict[str, float]:
        """Each process's CPU seconds, as last sampled, by its label (``pid what``)."""
        return {self._names[pid]: cpu for pid, cpu in self._cpu.items()}

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

    def table(self, top: int = 40) -> str:
        """The processes at the RSS peak, largest first: RSS, PSS, USS and shared memory (of RSS) in MB."""
        rows = [f"{'MB at the RSS peak':<62}{'RSS':>7}{'PSS':>7}{'USS':>7}{'shm':>7}"]
        for name, values in sorted(self.detail.items(), key=lambda kv: -kv[1][0])[:top]:
            rows.append(f"{name[:62]:<62}" + "".join(f"{v / 1e6:>7.0f}" for v in values))
        rows.append(f"{'total':<62}" + "".join(f"{sum(v[i] for v in self.detail.values()) / 1e6:>7.0f}"
                                                for i in range(4)))
        return "\n".join(rows)
