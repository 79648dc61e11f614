"""Runs started from the web UI: ``raycurate run`` in a child process, one at a time.

The child is started from an argv list (never a shell string) in its own session, so Cancel
ends it and every process it started (local Ray included) by its process group. Its output goes
to ``OUT/run.log``, shown as it is; counts are read from the files the run writes (its state file, live
progress and manifest: :mod:`raycurate.ui.progress`), never from the log.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

from ..run_state import RUN_STATE as STATE_FILE
from ..settings import Settings   # OUT/.raycurate-run.json, written at the start and end of a run

LOG_NAME = "run.log"
# Ray's and Python's routine lines, left out of the log the page shows (run.log keeps everything)
_NOISE = re.compile(r"^\d{4}-\d\d-\d\d [\d:,.]+\s+INFO\b|^\[\d{4}-\d\d-\d\d [\d:,.]+ [IW] \d+ \d+\]"
                    r"|^\s*warnings\.warn\(|UserWarning:|FutureWarning:|DeprecationWarning:")


@dataclass(frozen=True)
class RunRequest:
    """One run as the UI asks for it; ``input_uri`` is already confined to the roots."""

    input_uri: str
    out_dir: str
    db: str
    preset: str
    profile: str | None
    overrides: Sequence[tuple[str, Any]] = ()
    persons: Sequence[tuple[str, Sequence[str]]] = ()   # --person: (name, reference photos)

    def settings(self) -> Settings:
        """The run's typed settings, checked as the CLI checks them (ConfigError / ModelError on bad ones)."""
        from ..stages import check_runnable
        from .params import settings_for

        settings = settings_for(self.preset, self.profile, self.overrides)
        check_runnable(settings)
        return settings


def set_value(value: Any) -> str:
    """A value as ``--set`` reads it (YAML): true/false, null, numbers."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    raise TypeError(f"the UI sets numbers and booleans only, got {type(value).__name__}")


def build_argv(req: RunRequest, python: str | None = None) -> list[str]:
    """The child's argv: ``python -m raycurate.cli run INPUT --out OUT --db DB --preset P ...``."""
    argv = [python or sys.executable, "-m", "raycurate.cli", "run", req.input_uri, "--out", req.out_dir,
            "--db", req.db, "--preset", req.preset]
    if req.profile:
        argv += ["--profile", req.profile]
    for key, value in req.overrides:
        argv += ["--set", f"{key}={set_value(value)}"]
    for name, refs in req.persons:
        argv += ["--person", f"{name}={','.join(refs)}"]
    return argv


@dataclass
class RunProcess:
    """A started run. ``status`` is running, finished, failed or cancelled."""

    request: RunRequest
    argv: list[str]
    popen: subprocess.Popen
    started: float = field(default_factory=time.time)
    cancelled: bool = False
    ended: float | None = None

    @property
    def log_path(self) -> str:
        return os.path.join(self.request.out_dir, LOG_NAME)

    @property
    def status(self) -> str:
        code = self.popen.poll()
        if code is None:
            return "running"
        if self.ended is None:
            self.ended = time.time()
        if self.cancelled:
            return "cancelled"
        return "finished" if code == 0 else "failed"

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def state(self) -> dict[str, Any] | None:
        """The child's state file (OUT/.raycurate-run.json: its run id, written before any work; what it listed,
        once listed; finished); None before it is written."""
        try:
            with open(os.path.join(self.request.out_dir, STATE_FILE), encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def run_id(self) -> str | None:
        """The run id the child chose (from its state file)."""
        return (self.state() or {}).get("run_id")

    def manifest(self) -> dict[str, Any] | None:
        try:
            with open(os.path.join(self.request.out_dir, "manifest.json"), encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def log_tail(self, lines: int = 40, max_bytes: int = 64_000) -> list[str]:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - max_bytes))
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return []
        return text.splitlines()[-lines:]

    def elapsed(self) -> float:
        return (self.ended or time.time()) - self.started

    def cancel(self, grace_s: float = 8.0) -> None:
        """End the child's whole process group: SIGTERM, then SIGKILL after ``grace_s``."""
        if self.popen.poll() is not None:
            return
        self.cancelled = True
        pgid = self.popen.pid     # start_new_session: the child leads its own group
        _signal_group(pgid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(pgid, signal.SIGKILL)   # Ray's helpers in the group that outlived the driver
        self.popen.wait(timeout=30)


def readable(lines: list[str]) -> list[str]:
    """The log lines worth showing: raycurate's own, warnings and errors, the summary; not Ray's INFO lines."""
    return [line for line in lines if not _NOISE.search(line) and not line.startswith("$ ")]


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Runner:
    """Starts runs one at a time into ``runs_dir/<stamp>/``, all into one LanceDB."""

    def __init__(self, runs_dir: str, db: str, env: dict[str, str] | None = None) -> None:
        self.runs_dir = runs_dir
        self.db = db
        self.env = env
        self.current: RunProcess | None = None
        self._lock = threading.Lock()

    def new_out_dir(self) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        base = os.path.join(self.runs_dir, f"run-{stamp}")
        out, n = base, 1
        while os.path.exists(out):
            n += 1
            out = f"{base}-{n}"
        return out

    def busy(self) -> bool:
        return self.current is not None and self.current.status == "running"

    def start(self, req: RunRequest) -> RunProcess:
        """Start ``req`` (its config must already be validated); refuses while a run is going."""
        with self._lock:
            if self.busy():
                raise RuntimeError("a run is already going: wait for it or cancel it")
            os.makedirs(req.out_dir, exist_ok=True)
            argv = build_argv(req)
            env = dict(os.environ if self.env is None else self.env)
            env.setdefault("PYTHONUNBUFFERED", "1")
            env.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
            package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
            with open(os.path.join(req.out_dir, LOG_NAME), "ab") as log:
                log.write(("$ " + " ".join(argv) + "\n").encode())
                log.flush()
                popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=req.out_dir, env=env, start_new_session=True, shell=False)
            self.current = RunProcess(req, argv, popen)
            return self.current

    def cancel(self) -> bool:
        run = self.current
        if run is None or run.status != "running":
            return False
        run.cancel()
        return True


__all__ = ["LOG_NAME", "RunProcess", "RunRequest", "Runner", "build_argv", "readable", "set_value"]
