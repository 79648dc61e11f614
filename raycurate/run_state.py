"""A run's state file (``OUT/.raycurate-run.json``): which run works in OUT, or worked last, and whether it
finished (the web UI follows a run by it)."""
from __future__ import annotations

import json
import os
from typing import Any, Mapping

from . import storage

RUN_STATE = ".raycurate-run.json"   # in OUT (a folder or a bucket prefix): the run in progress, or the last


def read_state(out_dir: str) -> dict[str, Any] | None:
    try:
        return json.loads(storage.OutputDir(out_dir).read_bytes(RUN_STATE).decode("utf-8"))
    except (OSError, ValueError):
        return None


def write_state(out_dir: str, state: Mapping[str, Any]) -> None:
    out = storage.OutputDir(out_dir)
    if out.remote:   # one PUT: a reader sees the old object or the new one
        out.write_bytes(RUN_STATE, json.dumps(state).encode("utf-8"))
        return
    path = os.path.join(out_dir, RUN_STATE)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(state, f)
    os.replace(path + ".tmp", path)   # atomic: a kill leaves the old state or the new one
