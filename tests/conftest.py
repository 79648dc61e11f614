from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"
IMAGES = DATA / "images"

os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session (2 CPUs, like CI)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.fixture()
def cfg():
    from raycurate.config import load_config

    return load_config()


def copy_into(dest: Path, *sources: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for src in sources:
        if src.is_dir():
            shutil.copytree(src, dest / src.name)
        else:
            shutil.copy2(src, dest / src.name)


def stop_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    """End a process started with ``start_new_session=True`` and everything it started: SIGTERM to its
    process group, SIGKILL if it is still there after ``timeout`` seconds."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
