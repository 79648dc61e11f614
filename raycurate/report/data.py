"""What the report shows, read from a run's manifest (``OUT/manifest.json``, as a dict) and its LanceDB tables
into plain records: the funnel, each stored score with its thresholds, each video's stage scores, the kept
images with the values that let them through, samples each gate dropped, the identities, the models and the
errors. No HTML here; pictures are :mod:`.thumbs`' data URIs.

Without a manifest (``raycurate report DB --run`` of a run whose manifest is gone) the tables still give the
funnel of the video path, the histograms and the timelines; the gates, their thresholds and the kept images
need the run's configuration, and the report says so."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pyarrow as pa

from ..funnel import CATALOGUE
from ..gates import Gate, kept_predicate, ok_predicate
from ..run_report import merge_segments
from ..settings import Settings
from ..store.people_schema import FACES_TABLE, IDENTITIES_TABLE
from ..store.schema import FRAMES_TABLE, STAGE3_TABLE, TABLE_NAME, VIDEOS_TABLE
from ..store.table import open_table, sql_str
from .identities import identities, unknown_faces
from .people import Tally, people_tallies
from .provenance import errors, models
from .records import Card, read_rows, show
from .svg import Line, Series, Step
from .thumbs import data_uri

MAX_KEPT = 60            # kept images on the contact sheet
PER_GATE = 4             # dropped samples shown per gate
MAX_VIDEOS = 30          # timelines drawn
# numeric columns that describe a file or a place in a video, not a score
NOT_SCORES = {"file_size", "width", "height", "exif_orientation", "n_frames", "frame_index", "frame_timestamp",
              "timestamp", "scene_index", "segment", "duplicate_distance", "face_age", "face_index"}
STAGES = ("stage1", "stage2", "stage3")


@dataclass
class Histogram:
    table: str
    column: str
    values: list[float]
    lines: list[Line]
    integer: bool


@dataclass
class Timeline:
    uri: str
    length: int
    series: list[Series]
    cuts: list[int]
    selected: list[int]
    note: str | None = None


@dataclass
class RejectedGate:
    name: str
    sql: str
    dropped: int
    samples: list[Card]


@dataclass
class ReportData:
    run_id: str
    manifest: Mapping[str, Any] | None
    catalogue: bool = False    # the whole curated set the DB holds after the run, not the run's own rows
    notes: list[str] = field(default_factory=list)
    video_funnel: list[Step] = field(default_factory=list)
    image_funnel: list[Step] = field(default_factory=list)
    histograms: list[Histogram] = field(default_factory=list)
    timelines: list[Timeline] = field(default_factory=list)
    kept: list[Card] = field(default_factory=list)
    kept_total: int = 0
    rejected: list[RejectedGate] = field(default_factory=list)
    identities: list[Card] = field(default_factory=list)
    people: list[Tally] = field(default_factory=list)   # expressions, body shots, orientations (.people)
    unknown_total: int = 0     # the run's faces in no identity (unknown)
    unknown: list[Card] = field(default_factory=list)
    models: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    errors_total: int = 0


def _tables(db_uri: str) -> dict[str, Any]:
    """The run tables the DB holds; none when a local DB folder is absent (a run with no media made none)."""
    if "://" not in db_uri and not os.path.isdir(db_uri):
        return {}
    found = {}
    for name in (TABLE_NAME, VIDEOS_TABLE, FRAMES_TABLE, STAGE3_TABLE, FACES_TABLE, IDENTITIES_TABLE):
        try:
            found[name] = open_table(db_uri, name)
        except FileNotFoundError:
            continue
    return found


def latest_run(db_uri: str) -> str | None:
    """The newest run id in the ``images`` table (else ``frames``): ids start with their UTC start time."""
    for name, table in _tables(db_uri).items():
        if name in (TABLE_NAME, FRAMES_TABLE):
            ids = table.search().select(["run_id"]).limit(None).to_arrow().column("run_id").to_pylist()
            if ids:
                return max(ids)
    return None


def has_run(db_uri: str, run_id: str) -> bool:
    """Whether a table of the DB holds rows of ``run_id``."""
    run = f"run_id = {sql_str(run_id)}"
    return any(t.count_rows(run) for n, t in _tables(db_uri).items() if n in (TABLE_NAME, VIDEOS_TABLE))


def gate_columns(gate_sql: str, names: Sequence[str]) -> list[str]:
    """The stored columns a gate's SQL reads, in order of appearance."""
    seen: list[str] = []
    for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", gate_sql):
        if word in names and word not in seen:
            seen.append(word)
    return seen


def thresholds(settings: Settings | None, gates: Sequence[Gate]) -> dict[str, list[Line]]:
    """Lines to draw per score column, from the run's settings: the gates it ran (keys ``images.<column>``:
    gates read the ``images`` table), the cascade's thresholds and the motion threshold (keys ``<column>``: any
    table holding the column)."""
    if settings is None:
        return {}
    f, names = settings.filter, {g.name for g in gates}
    out: dict[str, list[Line]] = {}

    def add(column: str, value: Any, label: str, kind: str = "min") -> None:
        if value is not None:
            out.setdefault(column, []).append(Line(float(value), label, kind))

    if "quality.min_sharpness" in names:
        add("images.quality_sharpness", f.min_sharpness, f"filter.min_sharpness >= {f.min_sharpness}")
    if "quality.drop_blurry" in names:
        blur = settings.analyzers.quality.blur_threshold
        add("images.quality_sharpness", blur, f"blurry below analyzers.quality.blur_threshold {blur}")
    if "face.min_faces" in names:
        add("images.face_count", f.min_faces, f"filter.min_faces >= {f.min_faces}")
    if "face.max_faces" in names:
        add("images.face_count", f.max_faces, f"filter.max_faces <= {f.max_faces}", "max")
    if "nsfw.max_score" in names:
        add("images.nsfw_score", f.max_nsfw_score, f"filter.max_nsfw_score <= {f.max_nsfw_score}", "max")
    for stage in STAGES:
        value = getattr(settings.cascade, stage).threshold
        add(f"{stage}_score", value, f"cascade.{stage}.threshold {value}")
    motion = settings.video.motion_threshold
    add("motion", motion, f"video.motion_threshold {motion}")
    return out


def _histograms(tables: Mapping[str, Any], run: str, lines: Mapping[str, list[Line]]) -> list[Histogram]:
    """Every numeric score column of the run's rows in ``images``, ``frames`` and ``stage3`` that holds a value."""
    out = []
    for name in (TABLE_NAME, FRAMES_TABLE, STAGE3_TABLE):
        table = tables.get(name)
        if table is None:
            continue
        numeric = [f for f in table.schema if (pa.types.is_floating(f.type) or pa.types.is_integer(f.type))
                   and f.name not in NOT_SCORES and not f.name.endswith("_ms")]
        if not numeric:
            continue
        data = table.search().where(run).select([f.name for f in numeric]).limit(None).to_arrow()
        for f in numeric:
            values = [v for v in data.column(f.name).to_pylist() if v is not None]
            if values:
                shown = lines.get(f"{name}.{f.name}", []) + lines.get(f.name, [])
                out.append(Histogram(name, f.name, values, shown, pa.types.is_integer(f.type)))
    return out


def _timelines(tables: Mapping[str, Any], run: str, settings: Settings | None) -> list[Timeline]:
    """Each video's Stage 1-3 scores over its frames, its scene cuts and its selected frames."""
    videos, frames, stage3 = (tables.get(n) for n in (VIDEOS_TABLE, FRAMES_TABLE, STAGE3_TABLE))
    if videos is None:
        return []
    merged = merge_segments(read_rows(videos, run, ["uri", "video_id", "segment", "decoder", "fps", "frames_claimed",
                                               "frames_decoded", "candidates", "motion_dropped", "cuts", "error",
                                               "warning", "decode_s"]))
    by_video: dict[str, list[dict[str, Any]]] = {}
    for r in read_rows(frames, run, ["video_id", "frame_index", "stage1_score", "stage2_score"]) if frames else []:
        by_video.setdefault(r["video_id"], []).append(r)
    s3: dict[str, list[dict[str, Any]]] = {}
    for r in read_rows(stage3, run, ["video_id", "frame_index", "stage3_score", "selected"]) if stage3 else []:
        s3.setdefault(r["video_id"], []).append(r)
    out = []
    for v in merged[:MAX_VIDEOS]:
        rows, rows3 = by_video.get(v["video_id"], []), s3.get(v["video_id"], [])
        series = [Series(stage, [(r["frame_index"], r[f"{stage}_score"]) for r in src
                                 if r.get(f"{stage}_score") is not None],
                         getattr(settings.cascade, stage).threshold if settings else None)
                  for stage, src in (("stage1", rows), ("stage2", rows), ("stage3", rows3))]
        note = f"error: {v['error']}" if v["error"] else (f"warning: {v['warning']}" if v["warning"] else None)
        out.append(Timeline(v["uri"], int(v["frames_claimed"] or v["frames_decoded"] or 0), series, v["cuts"],
                            sorted(r["frame_index"] for r in rows3 if r["selected"]), note))
    return out


def _funnel(tables: Mapping[str, Any], run: str, m: Mapping[str, Any] | None, catalogue: bool,
            dedup: bool) -> tuple[list[Step], list[Step]]:
    """The video path's and the image path's funnel (the listing drawn with the images): the one the run kept in
    its manifest (``funnel``, of its own rows or of the whole catalogue); without it (no manifest, or one
    written before the manifest held its funnel), counted from the tables by the same functions
    (:mod:`raycurate.funnel`)."""
    from ..funnel import image_funnel, manifest_gates, video_funnel

    steps = (m or {}).get("funnel", {}).get("catalogue" if catalogue else "run")
    if steps is None:
        images = tables.get(TABLE_NAME)
        steps = video_funnel(tables, run) + (image_funnel(
            images, run, analysers=list((m or {}).get("models", {})), gates=manifest_gates(m), dedup=dedup,
            keep_sql=(m or {}).get("keep_sql")) if images is not None and images.count_rows(run) else [])
    drawn = [Step(s["stage"], s["in"], s["kept"], s["dropped"], s["errors"]) for s in steps]
    return ([d for d, s in zip(drawn, steps) if s["path"] == "video"],
            [d for d, s in zip(drawn, steps) if s["path"] != "video"])


def _card(row: Mapping[str, Any], columns: Sequence[str], title: str | None = None) -> Card:
    values = {c: show(row[c]) for c in columns if row.get(c) is not None}
    if row.get("source_video_uri"):
        values["from"] = f"{row['source_video_uri'].rsplit('/', 1)[-1]} @ {show(row.get('frame_timestamp'))} s"
    uri = row.get("uri")
    return Card(title or (uri or "").rsplit("/", 1)[-1], values, data_uri(uri) if uri else None, uri)


def _kept(images: Any, keep_sql: str, gates: Sequence[Gate]) -> tuple[list[Card], int]:
    names = images.schema.names
    cols = [c for g in gates for c in gate_columns(g.predicate, names)]
    cols += [c for c in ("stage3_score", "quality_sharpness", "face_count", "nsfw_score", "identity_id")
             if c in names and c not in cols]
    rows = read_rows(images, keep_sql, ["uri", "source_video_uri", "frame_timestamp", *cols], MAX_KEPT)
    return [_card(r, cols) for r in rows], images.count_rows(keep_sql)


def _rejected(images: Any, run: str, analysers: Sequence[str], gates: Sequence[Gate],
              dedup: bool) -> list[RejectedGate]:
    names = images.schema.names
    ok = f"{run} AND {ok_predicate(analysers)}"
    out = []
    for g in gates:
        where = f"{ok} AND NOT ({g.predicate})"
        cols = gate_columns(g.predicate, names)
        rows = read_rows(images, where, ["uri", "source_video_uri", "frame_timestamp", *cols], PER_GATE)
        out.append(RejectedGate(g.name, g.predicate, images.count_rows(where), [_card(r, cols) for r in rows]))
    if dedup and "duplicate_of" in names:
        where = f"{run} AND {kept_predicate(gates, analysers)} AND duplicate_of IS NOT NULL"
        cols = ["duplicate_column", "duplicate_distance", "duplicate_of"]
        rows = read_rows(images, where, ["uri", "source_video_uri", "frame_timestamp", *cols], PER_GATE)
        out.append(RejectedGate("dedup", "duplicate_of IS NULL", images.count_rows(where),
                                [_card(r, cols) for r in rows]))
    return out


def read_report(db_uri: str, run_id: str, manifest: Mapping[str, Any] | None = None, *,
                settings: Settings | None = None, catalogue: bool = False) -> ReportData:
    """Everything the report of run ``run_id`` shows, from the LanceDB at ``db_uri``, the run's manifest and
    its ``settings`` (typed: the running run's own, or what its manifest recorded; None: only what the tables
    hold); with ``catalogue``, of the whole curated set the DB holds after that run (every run's rows: what OUT
    exports), else of the rows the run itself stored."""
    from ..funnel import manifest_gates

    tables = _tables(db_uri)
    run = CATALOGUE if catalogue else f"run_id = {sql_str(run_id)}"
    m = manifest if manifest and manifest.get("run_id") == run_id else None
    settings = settings if m is not None else None
    data = ReportData(run_id=run_id, manifest=m, catalogue=catalogue)
    if m is None:
        data.notes.append("no manifest of this run beside the DB: its gates, thresholds and kept images are not "
                          "known; the plots show the stored scores only")
    gates = manifest_gates(m)
    analysers = list((m or {}).get("models", {}))
    dedup = settings is not None and settings.dedup.enabled
    data.video_funnel, data.image_funnel = _funnel(tables, run, m, catalogue, dedup)
    data.histograms = _histograms(tables, run, thresholds(settings, gates))
    data.timelines = _timelines(tables, run, settings)
    images = tables.get(TABLE_NAME)
    if images is not None and images.count_rows(run) and m and m.get("keep_sql"):
        data.kept, data.kept_total = _kept(images, m["keep_sql"], gates)
        data.rejected = _rejected(images, run, analysers, gates, dedup)
    data.identities = identities(tables, run)
    data.people = people_tallies(tables, run)
    data.unknown_total, data.unknown = unknown_faces(tables, run)
    data.models = models(tables, run, m)
    data.errors, data.errors_total = errors(tables, run)
    return data


__all__ = ["Card", "Histogram", "RejectedGate", "ReportData", "Timeline", "gate_columns", "has_run", "latest_run",
           "read_report", "thresholds"]
