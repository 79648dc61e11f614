"""The run's funnel: counts kept, dropped and failed per step, of the video path and the image path.

One computation (plain code, no ray): the run makes it as it ends (:func:`funnels`) and keeps it in its
manifest (``funnel``); the report (:mod:`raycurate.report`) and the web UI read it there and never count it
again. Only the report of a run whose manifest is gone counts it from the tables, with these same functions."""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

from .gates import Gate, ok_predicate
from .run_report import count_rows, video_stage_counts
from .store.schema import FRAMES_TABLE, STAGE3_TABLE, TABLE_NAME, VIDEOS_TABLE
from .store.table import open_table, sql_str

CATALOGUE = "run_id IS NOT NULL"   # every run's rows: the whole catalogue a DB holds


def manifest_gates(manifest: Mapping[str, Any] | None) -> list[Gate]:
    """The gates a run's manifest records, in the order they ran."""
    return [Gate(g["name"], g.get("analyzer") or "", g["sql"]) for g in (manifest or {}).get("gates", [])]


PATHS = ("input", "video", "images")   # a step's part of the run: the listing, the video path, the image path


def funnel_step(path: str, stage: str, n_in: int, kept: int, dropped: int = 0, errors: int = 0) -> dict[str, Any]:
    """One step of a funnel (of ``path``, one of :data:`PATHS`): how many came in, went on, were dropped,
    failed."""
    return {"path": path, "stage": stage, "in": int(n_in), "kept": int(kept), "dropped": int(dropped),
            "errors": int(errors)}


def run_tables(db_uri: str) -> dict[str, Any]:
    """The tables a run writes (``videos``, ``frames``, ``stage3``, ``images``) that the DB holds; none when a
    local DB folder is absent (a run with no media made none, and reading must not make one)."""
    if "://" not in db_uri and not os.path.isdir(db_uri):
        return {}
    found = {}
    for name in (VIDEOS_TABLE, FRAMES_TABLE, STAGE3_TABLE, TABLE_NAME):
        try:
            found[name] = open_table(db_uri, name)
        except FileNotFoundError:
            continue
    return found


def video_funnel(tables: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """The video path's steps over the rows ``where`` picks: videos read, frames sampled of those decoded, the
    motion filter, each cascade stage (errors: frames one of its analysers failed on), the winners chosen
    (separation, max frames); [] without videos."""
    from .stages import STAGES

    videos, frames, stage3 = (tables.get(n) for n in (VIDEOS_TABLE, FRAMES_TABLE, STAGE3_TABLE))
    if videos is None or not videos.count_rows(where):
        return []
    v = videos.search().where(where).select(["frames_decoded", "candidates", "motion_dropped", "error"]) \
        .limit(None).to_list()
    failed = sum(1 for r in v if r["error"])
    decoded, sampled = sum(r["frames_decoded"] or 0 for r in v), sum(r["candidates"] or 0 for r in v)
    moving = sampled - sum(r["motion_dropped"] or 0 for r in v)
    steps = [funnel_step("video", "videos", len(v), len(v) - failed, 0, failed),
             funnel_step("video", "frames sampled (of decoded)", decoded, sampled, decoded - sampled),
             funnel_step("video", "motion filter", sampled, moving, sampled - moving)]
    if frames is None:
        return steps
    for name, s in video_stage_counts(frames, stage3, where).items():
        cls = STAGES.get(name)
        cols = [f"{n}_error" for n in (*cls.analyzer_names, *cls.optional_names)
                if f"{n}_error" in frames.schema.names] if cls else []
        errors = count_rows(frames, f"{where} AND ({' OR '.join(f'{c} IS NOT NULL' for c in cols)})") if cols else 0
        label = f"video {name.replace('stage', 'stage ')}"
        steps.append(funnel_step("video", label, s["in"], s["kept"], s["dropped"], errors))
        if "selected" in s:
            steps.append(funnel_step("video", "video winners (separation, max frames)", s["kept"], s["selected"],
                                     s["kept"] - s["selected"]))
    return steps


def image_funnel(images: Any, where: str, *, analysers: Sequence[str], gates: Sequence[Gate], dedup: bool,
                 keep_sql: str | None = None, exported: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """The image path's steps over the rows ``where`` picks: decoded, analysed without error, each gate in
    turn (over the rows every gate before it let through), duplicates removed, the manual labels (only where
    they change the count), and, with ``exported`` (exported, failed), the export."""
    rows = count_rows(images, where)
    decoded = count_rows(images, f"{where} AND error IS NULL")
    passing = f"{where} AND {ok_predicate(analysers)}"
    ok = count_rows(images, passing)
    steps = [funnel_step("images", "images decoded", rows, decoded, 0, rows - decoded),
             funnel_step("images", "analysed without error", decoded, ok, 0, decoded - ok)]
    before = ok
    for g in gates:
        passing += f" AND ({g.predicate})"
        after = count_rows(images, passing)
        steps.append(funnel_step("images", f"gate {g.name}", before, after, before - after))
        before = after
    if dedup and "duplicate_of" in images.schema.names:
        after = count_rows(images, f"{passing} AND duplicate_of IS NULL")
        steps.append(funnel_step("images", "duplicates removed", before, after, before - after))
        before = after
    if keep_sql:
        kept = count_rows(images, f"{where} AND ({keep_sql})")
        if kept != before:   # the web UI's manual labels: keep brings a row in, reject takes one out
            steps.append(funnel_step("images", "manual labels", before, kept, max(0, before - kept)))
        before = kept
    if exported is not None:
        steps.append(funnel_step("images", "exported", before, exported[0], 0, exported[1]))
    return steps


def funnels(db_uri: str, manifest: Mapping[str, Any], *, dedup: bool,
            export: bool) -> dict[str, list[dict[str, Any]]]:
    """The run's funnel, counts kept and dropped per step, computed once as the run ends and kept in its
    manifest (``funnel``), where the report and the web UI read it. Two scopes, each a list of steps (the
    listing, then the video path's, then the image path's: see :func:`funnel_step`): ``run``, the rows this
    run stored, from the files it listed; ``catalogue``, the whole curated set the DB holds after it, to what
    OUT holds (what ``report.html`` shows)."""
    tables = run_tables(db_uri)
    images = tables.get(TABLE_NAME)
    inp, c = manifest["input"], manifest["counts"]
    run = f"run_id = {sql_str(manifest['run_id'])}"
    out: dict[str, list[dict[str, Any]]] = {}
    for scope, where in (("run", run), ("catalogue", CATALOGUE)):
        steps = ([funnel_step("input", "input files", inp["files"], inp["images"] + inp["videos"], inp["other"])]
                 if scope == "run" else [])
        steps += video_funnel(tables, where)
        if images is not None and images.count_rows(where):
            if scope == "catalogue":
                steps.append(funnel_step("images", "contents in the catalogue", c["catalogue"], c["catalogue"]))
            steps += image_funnel(images, where, analysers=list(manifest["models"]), gates=manifest_gates(manifest),
                                  dedup=dedup, keep_sql=manifest.get("keep_sql"),
                                  exported=(c["exported"], c.get("export_errors", 0))
                                  if export and scope == "catalogue" else None)
        out[scope] = steps
    return out


__all__ = ["CATALOGUE", "PATHS", "funnel_step", "funnels", "image_funnel", "manifest_gates", "run_tables",
           "video_funnel"]
