"""Export of the kept images: originals copied byte for byte, ``metadata.jsonl``.

Rows are streamed out of LanceDB with the keep predicate applied inside
LanceDB; nothing is decoded or analysed again. Output names come from the
source name made safe (no path separators, no leading dots, a restricted
alphabet) plus the content id, so two sources can never collide and nothing
can be written outside the output folder.
"""
from __future__ import annotations

import json
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterator


from .sources import read_bytes

FORMAT_EXTENSIONS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp",
                     "TIFF": ".tif", "BMP": ".bmp", "JPEG2000": ".jp2", "PPM": ".ppm"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
VECTOR_COLUMNS = ("content_vector",)


def safe_stem(uri: str) -> str:
    """The file-name stem of ``uri`` in a safe alphabet: no separators, no leading dots, at most 80 chars."""
    base = uri.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return _UNSAFE.sub("_", os.path.splitext(base)[0]).strip("._-")[:80] or "image"


def safe_name(uri: str, content_id: str, fmt: str | None) -> str:
    """A file name for an exported image that cannot escape its folder or collide."""
    base = uri.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    ext = FORMAT_EXTENSIONS.get(fmt or "", _UNSAFE.sub("", os.path.splitext(base)[1].lower())[:8] or ".bin")
    return f"{safe_stem(uri)}-{content_id[:16]}{ext}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


@dataclass
class ExportResult:
    kept: int = 0
    exported: int = 0
    exact_duplicates: int = 0
    copy_errors: int = 0


def iter_rows(table: Any, where: str, columns: list[str], batch_size: int = 1024) -> Iterator[dict[str, Any]]:
    """Rows of ``table`` matching ``where``, streamed in batches from LanceDB."""
    reader = table.search().where(where).select(columns).limit(None).to_batches(batch_size=batch_size)
    for batch in reader:
        yield from batch.to_pylist()


def canonical_uris(table: Any, where: str) -> dict[str, str]:
    """For each content id among matching rows, the smallest uri: the copy that is exported."""
    best: dict[str, str] = {}
    for row in iter_rows(table, where, ["id", "uri"], batch_size=8192):
        if row["id"] not in best or row["uri"] < best[row["id"]]:
            best[row["id"]] = row["uri"]
    return best


def _copy(uri: str, dest: str) -> str | None:
    try:
        data = read_bytes(uri)
        with open(dest, "wb") as f:
            f.write(data)
        return None
    except OSError as exc:
        return f"export copy failed: {exc}"


def export_kept(table: Any, where: str, out_dir: str, *, copy_images: bool, threads: int,
                progress: Any = None) -> ExportResult:
    """Write ``metadata.jsonl`` (and copy the original files) for rows matching ``where``.

    The same bytes under several names (one content id) are exported once, from
    the smallest uri; the other rows say ``duplicate_of``.
    """
    os.makedirs(out_dir, exist_ok=True)
    image_dir = os.path.join(out_dir, "images")
    if copy_images:
        os.makedirs(image_dir, exist_ok=True)
    columns = [f.name for f in table.schema if f.name not in VECTOR_COLUMNS]
    canonical = canonical_uris(table, where)
    exported_ids: set[str] = set()
    result = ExportResult()
    with open(os.path.join(out_dir, "metadata.jsonl"), "w", encoding="utf-8") as meta, \
            ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        reader = table.search().where(where).select(columns).limit(None).to_batches(batch_size=256)
        for batch in reader:
            rows = batch.to_pylist()
            jobs = {}
            for i, row in enumerate(rows):
                result.kept += 1
                row["file"] = None
                row["duplicate_of"] = None
                if row["uri"] != canonical[row["id"]] or row["id"] in exported_ids:
                    row["duplicate_of"] = canonical[row["id"]]
                    result.exact_duplicates += 1
                    continue
                exported_ids.add(row["id"])
                if copy_images:
                    name = safe_name(row["uri"], row["id"], row.get("format"))
                    row["file"] = f"images/{name}"
                    jobs[i] = pool.submit(_copy, row["uri"], os.path.join(image_dir, name))
            for i, job in jobs.items():
                err = job.result()
                if err:
                    rows[i]["file"] = None
                    rows[i]["export_error"] = err
                    result.copy_errors += 1
                else:
                    result.exported += 1
            if progress is not None:
                progress.update(len(rows))
            for row in rows:
                meta.write(json.dumps(_jsonable(row), ensure_ascii=False) + "\n")
    return result
