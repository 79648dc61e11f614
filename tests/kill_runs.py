"""The kill test's runs (tests/test_kill.py, scripts/kill_test.py): ``raycurate run`` started again and again on one
OUT, each start killed with SIGKILL once: its driver (its process group, then every process left in its
session: Ray's workers sit in process groups of their own), or one of its Ray workers (the run then left to go
on for a while). What the DB holds after each kill is recorded (:mod:`tests.kill_compare`).

A run is ``python -m raycurate.cli run PILE --out OUT ARGS`` in a session of its own, with its own local Ray,
importing raycurate from this checkout. No process of a run outlives it: :func:`kill_session` returns once its
session is empty.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from .kill_compare import db_counts, duplicated_keys, format_kill

ROOT = Path(__file__).resolve().parents[1]
# not a run's workers: an idle worker, Ray's agents and Ray's own service actors
NOT_WORKERS = ("ray::IDLE", "ray::DashboardAgent", "ray::RuntimeEnvAgent", "ray::ActorLocationTracker", "ray::_")
# raycurate's bookkeeping actor (the crash ledgers, the progress counts): up before the pipeline's workers
BOOKKEEPING = ("ray::RunBook",)


def run_command(pile: str, out: str, args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "raycurate.cli", "run", pile, "--out", out, *args]


def start(cmd: Sequence[str], log: Path | None = None) -> subprocess.Popen:
    """``cmd`` in a session of its own (its pid is the session's id), this checkout's raycurate first on the
    path of the driver and of Ray's workers."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "RAY_ADDRESS": "local"}   # its own local Ray, never a cluster another process started
    sink = open(log, "ab") if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(list(cmd), cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        if log is not None:
            sink.close()


def session_pids(sid: int) -> list[int]:
    """The live processes of session ``sid`` (the driver, the local Ray it started and Ray's workers)."""
    import psutil

    out = []
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except (OSError, psutil.Error):
            continue
    return out


def kill_session(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGKILL to the driver's process group (the driver and the local Ray it started), then to every process
    left in its session; returns once the session is empty (AssertionError if not within ``timeout``)."""
    left = session_pids(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=timeout)
    deadline = time.time() + timeout
    while (left := session_pids(proc.pid)) and time.time() < deadline:
        time.sleep(0.2)
    assert not left, f"processes of the killed run left: {left}"


def ray_workers(sid: int) -> list[tuple[int, str]]:
    """(pid, name) of the Ray workers of session ``sid`` (:data:`NOT_WORKERS` left out): its pipeline's workers
    (decoding tasks, analysers' actors), or when there are none yet, its bookkeeping actors."""
    import psutil

    out = []
    for pid in session_pids(sid):
        try:
            cmd = " ".join(psutil.Process(pid).cmdline()).strip()
        except psutil.Error:
            continue
        if cmd.startswith("ray::") and not cmd.startswith(NOT_WORKERS):
            out.append((pid, cmd.split()[0][:60]))
    return [w for w in out if not w[1].startswith(BOOKKEEPING)] or out


@dataclass
class Clean:
    """The uninterrupted run, as the kill moments are drawn from it."""
    rc: int
    wall_s: float
    workers_s: float | None = None   # when its first Ray worker was at work (None: Ray never started)
    analysis_s: float = 0.0          # its video path and image path (manifest timings)
    rerun_s: float = 0.0             # an unchanged rerun of it (nothing to analyse)
    rows: int = 0                    # its images and frames rows


@dataclass
class Kill:
    n: int
    kind: str                 # driver | worker
    at_s: float = 0.0         # seconds after the start
    outcome: str = ""
    victim: str = ""
    candidates: list[str] = field(default_factory=list)       # the workers it was drawn from
    rc: int | None = None
    rows: dict[str, int] = field(default_factory=dict)        # rows per table after it
    duplicates: dict[str, int] = field(default_factory=dict)  # duplicated keys per table after it


def _wait(proc: subprocess.Popen, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``proc``; True when it ended."""
    try:
        proc.wait(timeout=max(0.0, seconds))
        return True
    except subprocess.TimeoutExpired:
        return False


def _wait_for_workers(proc: subprocess.Popen, limit_s: float) -> list[tuple[int, str]]:
    """Poll until the run's pipeline has Ray workers at work (they are returned), it ended, or ``limit_s``
    passed."""
    deadline = time.time() + limit_s
    while proc.poll() is None and time.time() < deadline:
        workers = ray_workers(proc.pid)
        if workers and not workers[0][1].startswith(BOOKKEEPING):
            return workers
        time.sleep(0.3)
    return []


def _wait_for_rows(proc: subprocess.Popen, db: str, rows: int, limit_s: float) -> None:
    """Poll until the DB's ``images`` table holds ``rows`` rows, the run ended, or ``limit_s`` passed."""
    deadline = time.time() + limit_s
    while proc.poll() is None and time.time() < deadline:
        if db_counts(db)["images"] >= rows:
            return
        time.sleep(0.3)


def kill_once(n: int, kind: str, cmd: Sequence[str], *, delay_s: float = 0.0, after_workers: bool = False,
              until_images: int | None = None, go_on_s: float, db: str, rng: random.Random,
              log: Path | None = None) -> Kill:
    """Start ``cmd``; ``delay_s`` seconds after its Ray workers are at work (``after_workers``), else after its
    start, or once the DB holds ``until_images`` rows of ``images``, SIGKILL its driver and its session, or
    one of its Ray workers and let it go on for up to ``go_on_s`` seconds (then its session is killed). What
    the DB holds after."""
    t0 = time.time()
    proc = start(cmd, log)
    kill = Kill(n, kind)
    try:
        if until_images is not None:
            _wait_for_rows(proc, db, until_images, limit_s=600)
        elif after_workers:
            _wait_for_workers(proc, limit_s=600)
            _wait(proc, delay_s)
        else:
            _wait(proc, t0 + delay_s - time.time())
        if proc.poll() is not None:
            kill.outcome = "ended first"
        elif kind == "driver":
            kill.at_s = time.time() - t0
            kill_session(proc)
            kill.outcome = "driver killed"
        else:
            workers = ray_workers(proc.pid) or _wait_for_workers(proc, limit_s=30)
            kill.at_s = time.time() - t0
            if not workers:
                kill.outcome = "no worker; ended" if _wait(proc, go_on_s) else "no worker; killed"
            else:
                kill.candidates = sorted(name for _, name in workers)
                pid, kill.victim = rng.choice(sorted(workers))
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    kill.victim += " (gone)"
                kill.outcome = "worker killed; " + ("ended" if _wait(proc, go_on_s) else
                                                    f"killed +{go_on_s:.0f}s")
    finally:
        if proc.poll() is None or session_pids(proc.pid):
            kill_session(proc)
    kill.rc = proc.returncode
    kill.rows, kill.duplicates = db_counts(db), duplicated_keys(db)
    return kill


def clean_run(cmd: Sequence[str], log: Path | None = None, limit_s: float = 3600) -> Clean:
    """One uninterrupted run: its exit status, its wall time, when its Ray workers were first at work."""
    t0 = time.time()
    proc = start(cmd, log)
    workers_s = None
    try:
        if _wait_for_workers(proc, limit_s):
            workers_s = time.time() - t0
        proc.wait(timeout=max(1.0, t0 + limit_s - time.time()))
    finally:
        if proc.poll() is None or session_pids(proc.pid):
            kill_session(proc)
    return Clean(proc.returncode, time.time() - t0, workers_s)


def measure_clean(pile: str, out: str, args: Sequence[str], log: Path | None = None) -> Clean:
    """The clean run into ``out``, with its analysis time and rows; then an unchanged rerun, timed, into a copy
    of ``out`` (``out`` + ``_rerun``): the time of a start with nothing to analyse."""
    clean = clean_run(run_command(pile, out, args), log)
    if clean.rc != 0:
        return clean
    timings = json.loads((Path(out) / "manifest.json").read_text())["timings_s"]
    clean.analysis_s = timings.get("video_path", 0.0) + timings.get("pipeline", 0.0)
    rows = db_counts(os.path.join(out, "db"))
    clean.rows = rows["images"] + rows["frames"]
    shutil.copytree(out, out + "_rerun", symlinks=True)
    again = clean_run(run_command(pile, out + "_rerun", args), log)
    clean.rerun_s = again.wall_s if again.rc == 0 else clean.wall_s
    return clean


def killed_runs(cmd: Sequence[str], db: str, clean: Clean, *, kills: int, seed: int, log: Path | None = None,
                say: Callable[[str], None] = print) -> tuple[list[Kill], int]:
    """``kills`` starts of ``cmd``, the driver and a worker killed in turn, then one uninterrupted run (its exit
    status).

    Before start ``n`` of ``kills``, ``left`` is the share of the clean run's images and frames rows the DB
    lacks, and the window ``W`` is ``left`` x the clean run's analysis time x 2 / (``r`` + 1), ``r`` the starts
    left (this one included): the analysis still to do, spread over the kills still to come. The kill comes
    ``u`` x ``W`` after the start's Ray workers are at work; with nothing left to analyse, ``u`` x the time
    of an unchanged rerun after its start. After a worker is killed the run goes on for at most ``v`` x ``W``
    (with nothing left, ``v`` x the clean run's time), then its session is killed. ``u`` and ``v`` are uniform
    over 0.05..0.9, drawn with ``seed``."""
    rng = random.Random(seed)
    out = []
    for n in range(1, kills + 1):
        rows = db_counts(db)
        left = max(0.0, 1.0 - (rows["images"] + rows["frames"]) / max(1, clean.rows))
        u, v = rng.uniform(0.05, 0.9), rng.uniform(0.05, 0.9)
        work = left > 0 and clean.workers_s is not None
        window = left * clean.analysis_s * 2 / (kills - n + 2)
        k = kill_once(n, "driver" if n % 2 else "worker", cmd, delay_s=u * (window if work else clean.rerun_s),
                      after_workers=work, go_on_s=v * (window if work else clean.wall_s), db=db, rng=rng, log=log)
        say(format_kill(k))
        out.append(k)
    final = clean_run(cmd, log)
    return out, final.rc
