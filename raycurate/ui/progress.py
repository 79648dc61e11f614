"""A run's counts per step as the web UI shows them, read from the files the run writes, never from its log.

While a run goes: what it listed (its state file, ``OUT/.raycurate-run.json``, key ``input``) and the live
counts its driver writes per pipeline (``OUT/logs/progress-{videos,images}.json``: :mod:`raycurate.progress`).
Once it has finished: the funnel its manifest holds (``funnel``, computed once by the run as it ended:
:mod:`raycurate.funnel`). Every table is a list of rows of :data:`COLUMNS`.
"""
from __future__ import annotations

import json
import os
from typing import Any, Mapping

COLUMNS = ["stage", "in", "kept", "dropped", "errors"]
LIVE_FILES = {"videos": "progress-videos.json", "images": "progress-images.json"}   # in OUT/logs/


def _read(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError):   # not written yet, or being replaced
        return None
    return doc if isinstance(doc, dict) else None


def live_snapshots(out_dir: str) -> dict[str, dict[str, Any]]:
    """The live progress the run's driver writes (``videos``, ``images``: a :meth:`raycurate.progress.Progress.
    as_dict` each), for the pipelines that have started."""
    found = {what: _read(os.path.join(out_dir, "logs", name)) for what, name in LIVE_FILES.items()}
    return {what: doc for what, doc in found.items() if doc and isinstance(doc.get("steps"), list)}


def live_text(out_dir: str) -> str:
    """The run's live counts per step (what its terminal shows, :mod:`raycurate.progress`): one line per
    pipeline started; empty before."""
    from ..progress import snapshot_text

    lines = []
    for doc in live_snapshots(out_dir).values():
        try:
            lines.append(snapshot_text(doc))
        except (KeyError, TypeError):   # a file of another version: nothing shown
            continue
    return "\n".join(lines)


def input_row(state: Mapping[str, Any] | None) -> list[Any] | None:
    """The listing's row (files found, images and videos kept, other files dropped) from the run's state
    file; None before the run has listed its input."""
    inp = (state or {}).get("input")
    if not isinstance(inp, Mapping):
        return None
    return ["input files", inp["files"], inp["images"] + inp["videos"], inp["other"], 0]


def _counts(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["key"]: s for s in doc["steps"]}


def live_rows(state: Mapping[str, Any] | None, snapshots: Mapping[str, Mapping[str, Any]]) -> list[list[Any]]:
    """The table while a run goes: the listing, then each pipeline's steps so far. A video stage takes in what
    the step before it passed (kept: passed, dropped: scored and not passed); an image step's ``in`` is the
    images to go through it, ``kept`` those done (the rest is pending)."""
    rows = [r for r in (input_row(state),) if r is not None]
    videos = snapshots.get("videos")
    if videos:
        c = _counts(videos)
        if "segments" in c:
            seg = c["segments"]
            rows.append(["video segments read", seg["total"] or seg["count"], seg["count"], 0, 0])
        n_in = c["frames"]["count"] if "frames" in c else 0
        for key in [k for k in c if k.endswith("_scored")]:
            name = key[: -len("_scored")]
            scored, passed = c[key]["count"], c.get(f"{name}_passed", {"count": 0})["count"]
            rows.append([f"video {name.replace('stage', 'stage ')}", n_in, passed, scored - passed, 0])
            n_in = passed
        if "winners" in c:
            rows.append(["video winners", n_in, c["winners"]["count"], 0, 0])
    images = snapshots.get("images")
    if images:
        for s in images["steps"]:
            label = {"decoded": "images decoded", "stored": "images stored"}.get(s["key"], f"analyser {s['label']}")
            rows.append([label, s["total"] if s["total"] is not None else s["count"], s["count"], 0, 0])
    return rows


def stored_of(snapshots: Mapping[str, Mapping[str, Any]]) -> tuple[int, int] | None:
    """(images stored, images to store) of the image path so far; None before it starts."""
    images = snapshots.get("images")
    stored = _counts(images).get("stored") if images else None
    return (stored["count"], stored["total"] or 0) if stored else None


def funnel_rows(manifest: Mapping[str, Any] | None) -> list[list[Any]]:
    """The funnel of a finished run's own rows, as its manifest holds it (the listing, the video path, the image
    path, each step in order); [] without a manifest, or one written before manifests held their funnel."""
    steps = ((manifest or {}).get("funnel") or {}).get("run") or []
    return [[s["stage"], s["in"], s["kept"], s["dropped"], s["errors"]] for s in steps]


__all__ = ["COLUMNS", "LIVE_FILES", "funnel_rows", "input_row", "live_rows", "live_snapshots", "live_text",
           "stored_of"]
