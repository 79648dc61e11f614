"""The metadata records of an export: their columns (the table's without vectors, plus the export's),
JSON-safe values, and the rows streamed out of LanceDB."""
from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Iterator

import pyarrow as pa

from ..analyzers.face_embedders import FACE_VECTOR_COLUMNS
from ..store.schema import DEDUP_FIELDS

# Vector columns are never exported (every top-level fixed-size list column is one; these are the known ones,
# with the per-face embeddings, a list of vectors).
VECTOR_COLUMNS = ("content_vector", *FACE_VECTOR_COLUMNS, "clip_embedding", "face_embeddings")

# Columns the export adds to every metadata record (null where the option is off).
EXPORT_FIELDS: list[pa.Field] = [
    pa.field("names", pa.list_(pa.string())),        # every name the content was listed under (the files table)
    pa.field("file", pa.string()),                   # images/<name>; null: not copied (or an exact duplicate)
    pa.field("export_error", pa.string()),
    pa.field("caption", pa.string()),                # the kohya caption
    pa.field("identity", pa.string()),               # identity folder: its name or id | unknown (group_by_identity)
    pa.field("face_crops", pa.list_(pa.string())),   # face_crops/<stem>_f<k>.jpg, one per face box
    pa.field("body_crops", pa.list_(pa.string())),
    pa.field("crops", pa.list_(pa.struct([          # every crop written: its box in the upright original's pixels
        pa.field("file", pa.string()), pa.field("kind", pa.string()), pa.field("face_index", pa.int32()),
        pa.field("box", pa.list_(pa.int32(), 4)), pa.field("width", pa.int32()), pa.field("height", pa.int32())]))),
]


def json_safe(value: Any) -> Any:
    """``value`` as JSON can hold it: timestamps as ISO text, non-finite floats as null, tuples as lists
    (metadata.jsonl and the web UI's detail view)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def vector_columns(schema: pa.Schema) -> set[str]:
    """Columns that stay in LanceDB: the known vectors and any top-level fixed-size list."""
    return {f.name for f in schema if f.name in VECTOR_COLUMNS or pa.types.is_fixed_size_list(f.type)}


def metadata_schema(table_schema: pa.Schema) -> pa.Schema:
    """The columns of ``metadata.jsonl`` / ``metadata.parquet``: the table's without vectors, plus the export's."""
    skip = vector_columns(table_schema)
    fields = [f for f in table_schema if f.name not in skip]
    names = {f.name for f in fields}
    return pa.schema(fields + [f for f in DEDUP_FIELDS + EXPORT_FIELDS if f.name not in names])


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
