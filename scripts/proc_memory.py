"""Peak memory of a process and everything it started (Ray's raylet, GCS and workers included), sampled in a
thread: summed RSS (pages of Ray's shared-memory object store and of shared libraries count in every process
that maps them), summed PSS (each shared page split between the processes that map it: the fair total) and
summed USS (memory private to each process: the floor)."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil


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
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            procs = [root] + root.children(recursive=True)
        except psutil.NoSuchProcess:
            return
        rss = pss = uss = 0
        detail: dict[str, tuple[int, int, int, int]] = {}
        for p in procs:
            try:
                mem = p.memory_full_info()
                name = label(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            p_pss = getattr(mem, "pss", mem.uss)   # PSS is Linux only
            times = p.cpu_times()
            self._cpu[p.pid] = times.user + times.system
            self._names[p.pid] = name
            rss += mem.rss
            pss += p_pss
            uss += mem.uss
            detail[name] = (mem.rss, p_pss, mem.uss, shmem(p.pid))
        if rss > self.rss:
            self.rss, self.detail = rss, detail
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
