"""Per-stage counts of a run, read from what it has stored: live while it runs, the funnel after.

Every number comes from a LanceDB count over the run's rows (``run_id``) in the ``videos``,
``frames``, ``stage3`` and ``images`` tables, so the same function serves a run in progress
(counts grow as rows land) and a finished one, whoever started it. Gate drops are counted the
way the manifest counts them: each gate over the rows every analyser handled.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from ..gates import Gate, kept_predicate, ok_predicate
from ..run_report import stored_counts, video_stage_counts
from ..store.table import sql_str

COLUMNS = ["stage", "in", "kept", "dropped", "errors"]
_LISTING = re.compile(r"\[raycurate\] (\d+) files: (\d+) images, (\d+) videos, (\d+) other")


@dataclass(frozen=True)
class Listing:
    files: int
    images: int
    videos: int
    other: int


def parse_listing(lines: Iterable[str]) -> Listing | None:
    """The listing counts from a run's log (the line ``N files: a images, v videos, o other``)."""
    for line in lines:
        m = _LISTING.search(line)
        if m:
            return Listing(*(int(g) for g in m.groups()))
    return None


def listing_row(listing: Listing) -> list[Any]:
    """The input row: files found, images and videos kept, other files dropped (skipped)."""
    return ["input files", listing.files, listing.images + listing.videos, listing.other, 0]


LIVE_FILES = ("progress-videos.json", "progress-images.json")   # in OUT/logs/, written by the run's driver


def live_text(out_dir: str) -> str:
    """The run's live counts per step (what its terminal shows, :mod:`raycurate.progress`), from the files its
    driver writes in ``OUT/logs/`` while a pipeline runs: one line per pipeline started; empty before."""
    import json
    import os

    from ..progress import snapshot_text

    lines = []
    for name in LIVE_FILES:
        try:
            with open(os.path.join(out_dir, "logs", name), encoding="utf-8") as f:
                lines.append(snapshot_text(json.load(f)))
        except (OSError, ValueError, KeyError):   # not started yet, or being replaced
            continue
    return "\n".join(lines)


def _tables(db: str) -> dict[str, Any]:
    """The run tables present in ``db`` (a run in progress may not have made them all yet)."""
    from ..store import FRAMES_TABLE, STAGE3_TABLE, TABLE_NAME, VIDEOS_TABLE, open_table

    found = {}
    for name in (VIDEOS_TABLE, FRAMES_TABLE, STAGE3_TABLE, TABLE_NAME):
        try:
            found[name] = open_table(db, name)
        except FileNotFoundError:
            continue
    return found


def _count(table: Any, where: str) -> int:
    try:
        return int(table.count_rows(where))
    except Exception:   # a column a run in progress has not added yet: nothing counted
        return 0


def _sum(table: Any, where: str, column: str) -> int:
    values = table.search().where(where).select([column]).limit(None).to_arrow().column(column).to_pylist()
    return int(sum(v or 0 for v in values))


def _stage_errors(frames: Any, run: str, stage: str) -> int:
    """Frames on which one of the stage's analysers failed."""
    from ..stages import STAGES

    cls = STAGES[stage]
    cols = [f"{n}_error" for n in (*cls.analyzer_names, *cls.optional_names) if f"{n}_error" in frames.schema.names]
    if not cols:
        return 0
    return _count(frames, f"{run} AND (" + " OR ".join(f"{c} IS NOT NULL" for c in cols) + ")")


def stage_rows(db: str, run_id: str, *, gates: Sequence[Gate], analysers: Sequence[str],
               listing: Listing | None = None, dedup: bool = True) -> list[list[Any]]:
    """Rows of :data:`COLUMNS`: input, video path (when the run has videos), decode, each analyser
    (dropped: by its gates), core gates, kept after gates, duplicates, kept."""
    tables = _tables(db)
    run = f"run_id = {sql_str(run_id)}"
    rows: list[list[Any]] = []
    if listing is not None:
        rows.append(listing_row(listing))
    selected = 0
    videos = tables.get("videos")
    if videos is not None and _count(videos, run):
        decoded = _sum(videos, run, "frames_decoded")
        candidates = _sum(videos, run, "candidates")
        moving = candidates - _sum(videos, run, "motion_dropped")
        rows.append(["video sampling + motion", decoded, moving, decoded - moving,
                     _count(videos, f"{run} AND error IS NOT NULL")])
    frames = tables.get("frames")
    if frames is not None and _count(frames, run):
        stage3 = tables.get("stage3")
        if stage3 is not None and not _count(stage3, run):
            stage3 = None
        stages = video_stage_counts(frames, stage3, run, count=_count)   # as the manifest counts them
        for n in (1, 2):
            s = stages[f"stage{n}"]
            rows.append([f"video stage {n}", s["in"], s["kept"], s["dropped"], _stage_errors(frames, run, f"stage{n}")])
        if "stage3" in stages:
            s = stages["stage3"]
            selected = s["selected"]
            rows.append(["video stage 3", s["in"], s["kept"], s["dropped"], 0])
            rows.append(["video winners (separation, max frames)", s["kept"], selected, s["kept"] - selected, 0])
    images = tables.get("images")
    stored = _count(images, run) if images is not None else 0
    expected = (listing.images + selected) if listing is not None else stored
    if images is None or not stored:
        if listing is not None:
            rows.append(["images decoded", expected, 0, 0, 0])
        return rows
    counts = stored_counts(images, run, analysers, gates, count=_count)   # as the manifest counts them
    stored = counts["rows_written"]
    ok_decode = stored - counts["decode_errors"]
    rows.append(["images decoded", max(expected, stored), ok_decode, 0, stored - ok_decode])
    for name in analysers:
        a = counts["analyzers"][name]
        rows.append([f"analyser {name}", ok_decode, ok_decode - a["errored"] - a["dropped"], a["dropped"],
                     a["errored"]])
    n_ok = _count(images, f"{run} AND {ok_predicate(analysers)}")
    for g in gates:
        if not g.analyzer:
            dropped = counts["gates"][g.name]["dropped"]
            rows.append([f"gate {g.name}", n_ok, n_ok - dropped, dropped, 0])
    passed = _count(images, f"{run} AND {kept_predicate(gates, analysers)}")
    rows.append(["passed every gate", ok_decode, passed, ok_decode - passed, 0])
    if dedup:
        kept = _count(images, f"{run} AND {kept_predicate(gates, analysers)} AND duplicate_of IS NULL")
        rows.append(["duplicates removed", passed, kept, passed - kept, 0])
    return rows


def kept_of(rows: Sequence[Sequence[Any]]) -> int | None:
    """The final kept count of :func:`stage_rows` (None before any image is stored)."""
    for row in reversed(rows):
        if row[0] in ("duplicates removed", "passed every gate"):
            return int(row[2])
    return None


def gates_from_manifest(manifest: dict[str, Any]) -> list[Gate]:
    return [Gate(g["name"], g.get("analyzer") or "", g["sql"]) for g in manifest.get("gates", [])]


__all__ = ["COLUMNS", "LIVE_FILES", "Listing", "gates_from_manifest", "kept_of", "listing_row", "live_text",
           "parse_listing", "stage_rows"]
