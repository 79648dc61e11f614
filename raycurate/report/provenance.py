"""The report's models and errors: which model stands behind each analyser's stored columns (and, from the
manifest, why that one, or why none), and the rows a run stored with an error column set."""
from __future__ import annotations

from typing import Any, Mapping

from ..store.schema import FRAMES_TABLE, TABLE_NAME, VIDEOS_TABLE
from .records import read_rows

MAX_ERRORS = 200


def models(tables: Mapping[str, Any], run: str, m: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """Per analyser: the model behind its columns as stored on the rows (``<name>_model``), and, from the
    manifest, why that one (fallback, choice) or why none (skipped)."""
    stored: dict[str, set[str]] = {}
    for name in (TABLE_NAME, FRAMES_TABLE):
        table = tables.get(name)
        if table is None:
            continue
        cols = [c for c in table.schema.names if c.endswith("_model") and c != "face_embedding_model"]
        data = table.search().where(run).select(cols).limit(None).to_arrow() if cols else None
        for c in cols:
            stored.setdefault(c[:-len("_model")], set()).update(v for v in data.column(c).to_pylist() if v)
    info = dict((m or {}).get("models", {}))
    out = []
    for name in sorted(set(stored) | set(info)):
        if not stored.get(name) and name not in info:
            continue
        i = info.get(name, {})
        out.append({"analyser": name, "stored": ", ".join(sorted(stored.get(name, ()))) or "-",
                    "model (manifest)": i.get("model") or "-", "why": i.get("choice") or i.get("fallback") or ""})
    for name, why in (m or {}).get("skipped_analyzers", {}).items():
        out.append({"analyser": name, "stored": "-", "model (manifest)": "skipped", "why": why})
    return out


def errors(tables: Mapping[str, Any], run: str) -> tuple[list[dict[str, str]], int]:
    """Rows with an error column set: images (decoding, each analyser), videos, frames (a stage's analyser)."""
    found: list[dict[str, str]] = []
    total = 0
    for name, key in ((TABLE_NAME, "uri"), (VIDEOS_TABLE, "uri"), (FRAMES_TABLE, "video_uri")):
        table = tables.get(name)
        if table is None:
            continue
        cols = [c for c in table.schema.names if c == "error" or c.endswith("_error")]
        if not cols:
            continue
        where = f"{run} AND (" + " OR ".join(f"{c} IS NOT NULL" for c in cols) + ")"
        total += table.count_rows(where)
        for r in read_rows(table, where, [key, "frame_index", *cols], MAX_ERRORS):
            for c in cols:
                if r.get(c):
                    place = r[key] + (f"#frame{r['frame_index']}" if name == FRAMES_TABLE else "")
                    found.append({"table": name, "where": place, "column": c, "error": r[c]})
    return found[:MAX_ERRORS], total


__all__ = ["MAX_ERRORS", "errors", "models"]
