"""The Results tab's queries: filters as SQL over the stored columns, re-run in LanceDB (no model),
the rows of one image, and manual keep / reject written into the table. No gradio here.

"Kept" means what a run keeps: the row decoded, every analyser that ran handled it, it passes the
gates (:mod:`raycurate.gates`, built from the filter values here for the analysers that ran) and it
is not a duplicate (``duplicate_of IS NULL``). Manual labels override the gates: ``keep`` brings a
decoded row in, ``reject`` takes it out; they do not override dedup (a duplicate is represented by
its keeper), exactly as ``raycurate export --filter`` applies them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from ..gates import MANUAL_LABEL, build_gates, kept_predicate, with_manual_labels
from ..settings import FilterSettings
from ..store.table import sql_str

SHOW = ("kept", "dropped", "rejected", "all")
LABELS = ("keep", "reject")
MEDIA = ("image", "video_frame")
# Sort choices: label -> (column, descending)
SORTS: dict[str, tuple[str, bool]] = {
    "best video score first": ("stage3_score", True),
    "sharpest first": ("quality_sharpness", True),
    "largest face first": ("face_largest_area", True),
    "lowest NSFW first": ("nsfw_score", False),
    "newest first": ("analyzed_at", True),
}
CAPTION_COLUMNS = ("face_count", "quality_sharpness", "nsfw_score", "stage3_score", "clip_aesthetic",
                   "media_type", "frame_timestamp", "source_video_uri", MANUAL_LABEL, "duplicate_of")


@dataclass(frozen=True)
class Filters:
    """What the Results tab shows; the gate values mean what the config's ``filter:`` keys mean."""

    run_id: str | None = None                 # None: every run in the table
    show: str = "kept"                        # kept | dropped | rejected | all
    media: tuple[str, ...] = MEDIA
    min_faces: int | None = 1
    max_faces: int | None = None
    max_nsfw_score: float | None = 0.5
    min_sharpness: float | None = None
    min_side: int | None = 64
    drop_blurry: bool = True
    max_abs_yaw: float | None = None          # the largest face's |yaw| (InsightFace head pose)
    include_duplicates: bool = False
    where: str | None = None                  # extra SQL over stored columns, AND-ed to everything shown

    @classmethod
    def from_filter(cls, spec: FilterSettings, **kw: Any) -> "Filters":
        """The values of the typed ``filter`` settings (their ``where`` becomes the extra SQL)."""
        return cls(min_faces=spec.min_faces, max_faces=spec.max_faces, max_nsfw_score=spec.max_nsfw_score,
                   min_sharpness=spec.min_sharpness, min_side=spec.min_side, drop_blurry=spec.drop_blurry,
                   max_abs_yaw=spec.max_abs_yaw, where=spec.where, **kw)

    def filter_settings(self) -> FilterSettings:
        """The ``filter`` settings these values stand for (for :func:`raycurate.gates.build_gates`)."""
        return FilterSettings(min_faces=self.min_faces, max_faces=self.max_faces, max_nsfw_score=self.max_nsfw_score,
                              min_sharpness=self.min_sharpness, max_abs_yaw=self.max_abs_yaw, min_side=self.min_side,
                              drop_blurry=self.drop_blurry, where=None)

    def with_(self, **kw: Any) -> "Filters":
        return replace(self, **kw)


def kept_sql(f: Filters, analysers: Sequence[str], *, labels: bool) -> str:
    """SQL of the rows ``f`` keeps (gates for ``analysers``, manual labels when the column exists, dedup)."""
    keep = kept_predicate(build_gates(f.filter_settings(), analysers), analysers)
    if labels:
        keep = with_manual_labels(keep)
    if not f.include_duplicates:
        keep = f"({keep}) AND duplicate_of IS NULL"
    return keep


def scope_sql(f: Filters) -> str | None:
    """The rows considered at all: the run, the media types, the extra SQL."""
    parts = []
    if f.run_id:
        parts.append(f"run_id = {sql_str(f.run_id)}")
    media = [m for m in f.media if m in MEDIA]
    if len(media) < len(MEDIA):
        parts.append("media_type IN (" + ", ".join(sql_str(m) for m in media) + ")" if media else "FALSE")
    if f.where and f.where.strip():
        parts.append(f"({f.where.strip()})")
    return " AND ".join(parts) or None


def filter_sql(f: Filters, analysers: Sequence[str], *, labels: bool) -> str:
    """The whole predicate of what ``f`` shows."""
    if f.show not in SHOW:
        raise ValueError(f"show must be one of {', '.join(SHOW)}, got {f.show!r}")
    keep = kept_sql(f, analysers, labels=labels)
    chosen = {"kept": keep, "dropped": f"NOT coalesce(({keep}), false)",
              "rejected": f"{MANUAL_LABEL} = 'reject'" if labels else "FALSE", "all": "TRUE"}[f.show]
    scope = scope_sql(f)
    return f"{scope} AND ({chosen})" if scope else chosen


class Results:
    """The ``images`` table of one LanceDB, queried for the UI (opened again when it changes)."""

    def __init__(self, db_uri: str) -> None:
        self.db_uri = db_uri
        self._table: Any = None
        self._ran: dict[str | None, list[str]] = {}

    # -- the table ------------------------------------------------------------------------------
    def table(self) -> Any | None:
        """The images table at its latest version, or None when there is none yet."""
        from ..store import open_images_table

        if self._table is None:
            try:
                self._table = open_images_table(self.db_uri)
            except (FileNotFoundError, OSError, ValueError):
                return None
        else:
            self._table.checkout_latest()
        return self._table

    def has_labels(self) -> bool:
        t = self.table()
        return t is not None and MANUAL_LABEL in t.schema.names

    def runs(self) -> list[tuple[str, int]]:
        """(run id, rows), newest first (run ids start with their UTC start time)."""
        t = self.table()
        if t is None:
            return []
        ids = t.search().select(["run_id"]).limit(None).to_arrow().column("run_id")
        counts = pc.value_counts(ids).to_pylist()
        return sorted(((c["values"], c["counts"]) for c in counts), reverse=True)

    def analysers(self, run_id: str | None) -> list[str]:
        """The analysers whose columns the rows in scope hold (cached per run; a finished run's set is fixed)."""
        from ..analyzers import ANALYZERS

        if run_id not in self._ran or run_id is None:
            t = self.table()
            if t is None:
                return []
            scope = f"run_id = {sql_str(run_id)} AND " if run_id else ""
            names = set(t.schema.names)
            self._ran[run_id] = [n for n in ANALYZERS if f"{n}_model" in names
                                 and t.count_rows(f"{scope}{n}_model IS NOT NULL") > 0]
        return self._ran[run_id]

    def forget(self, run_id: str | None = None) -> None:
        """Drop cached analyser sets (a run that was in progress)."""
        self._ran.pop(run_id, None)

    # -- queries ----------------------------------------------------------------------------------
    def where(self, f: Filters) -> str:
        return filter_sql(f, self.analysers(f.run_id), labels=self.has_labels())

    def count(self, f: Filters) -> int:
        t = self.table()
        return 0 if t is None else int(t.count_rows(self.where(f)))

    def page(self, f: Filters, *, sort: str = "best video score first", limit: int = 120) -> list[dict[str, Any]]:
        """Up to ``limit`` matching rows (id, uri, run_id and :data:`CAPTION_COLUMNS`), sorted; nulls last."""
        t = self.table()
        if t is None:
            return []
        column, descending = SORTS.get(sort, SORTS["best video score first"])
        names = set(t.schema.names)
        cols = ["id", "uri", "run_id"] + [c for c in CAPTION_COLUMNS if c in names]
        if column in names and column not in cols:
            cols.append(column)
        data = t.search().where(self.where(f)).select(cols).limit(None).to_arrow()
        if data.num_rows == 0:
            return []
        rows = data.to_pylist()
        rows.sort(key=lambda r: r["uri"])
        if column in names:   # stable: ties stay in uri order; nulls last either way
            present = [r for r in rows if r.get(column) is not None]
            present.sort(key=lambda r: r[column], reverse=descending)
            rows = present + [r for r in rows if r.get(column) is None]
        return rows[:limit]

    def values(self, f: Filters, column: str) -> list[float]:
        """The finite values of a numeric ``column`` over the rows ``f`` shows."""
        t = self.table()
        if t is None or column not in t.schema.names:
            return []
        data = t.search().where(self.where(f)).select([column]).limit(None).to_arrow().column(column)
        return [float(v) for v in data.to_pylist() if v is not None and math.isfinite(float(v))]

    def row(self, content_id: str, uri: str | None = None, run_id: str | None = None) -> dict[str, Any] | None:
        """Every stored column of one row (vectors replaced by a short description)."""
        t = self.table()
        if t is None:
            return None
        cond = [f"id = {sql_str(content_id)}"] + ([f"uri = {sql_str(uri)}"] if uri else []) + \
            ([f"run_id = {sql_str(run_id)}"] if run_id else [])
        found = t.search().where(" AND ".join(cond)).limit(1).to_arrow()
        if found.num_rows == 0:
            return None
        row = found.to_pylist()[0]
        for field in found.schema:
            if pa.types.is_fixed_size_list(field.type) and row.get(field.name) is not None:
                row[field.name] = f"<{field.type.list_size}-d vector>"
        return row

    def set_label(self, content_id: str, label: str | None) -> int:
        """Store a manual ``keep`` / ``reject`` (None clears it) on every row of this content id;
        returns the rows changed. Adds the label columns to a table made before they existed."""
        from ..schemas import images_schema
        from ..store import open_or_create_images_table

        if label is not None and label not in LABELS:
            raise ValueError(f"label must be one of {', '.join(LABELS)} or None, got {label!r}")
        if not self.has_labels():
            self._table = open_or_create_images_table(self.db_uri, images_schema())
        t = self.table()
        where = f"id = {sql_str(content_id)}"
        now = datetime.now(timezone.utc) if label is not None else None
        t.update(where=where, values={MANUAL_LABEL: label, "manual_label_at": now})
        return int(t.count_rows(where))


def caption(row: Mapping[str, Any]) -> str:
    """A gallery caption: the key scores of a row."""
    parts = []
    if row.get("face_count") is not None:
        parts.append(f"faces {row['face_count']}")
    if row.get("quality_sharpness") is not None:
        parts.append(f"sharp {row['quality_sharpness']:.0f}")
    if row.get("nsfw_score") is not None:
        parts.append(f"nsfw {row['nsfw_score']:.2f}")
    if row.get("stage3_score") is not None:
        parts.append(f"video {row['stage3_score']:.2f}")
    if row.get("clip_aesthetic") is not None:
        parts.append(f"aesth {row['clip_aesthetic']:.1f}")
    if row.get(MANUAL_LABEL):
        parts.append(f"[{row[MANUAL_LABEL]}]")
    return " · ".join(parts)


def lineage(row: Mapping[str, Any]) -> str:
    """Where a row comes from, in one line: the file, or the video, frame and time of a frame."""
    video = row.get("source_video_uri")
    if not video:
        return f"photo: {row.get('uri')}"
    ts = row.get("frame_timestamp")
    when = f"{ts:.3f} s" if ts is not None else "time unknown"
    scene = f", scene {row['scene_index']}" if row.get("scene_index") is not None else ""
    return f"frame {row.get('frame_index')} at {when}{scene} of video {video} (frame file {row.get('uri')})"


def jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row for a JSON view: timestamps as ISO text, non-finite floats as null (the export's rule)."""
    from ..export import json_safe

    return {k: json_safe(v) for k, v in row.items()}


__all__ = ["Filters", "LABELS", "MEDIA", "Results", "SHOW", "SORTS", "caption", "filter_sql", "jsonable",
           "kept_sql", "lineage", "scope_sql"]
