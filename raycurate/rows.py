"""Rows on their way through the pipeline (plain code, no ray; the Ray wiring is in :mod:`raycurate.engine`).

A file becomes a decoded row (:func:`decode_row`, :func:`read_and_decode`); its pixels travel as raw
bytes plus their shape (:data:`PIXEL_FIELDS`) and analysers see them as arrays (:func:`images_of`).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .decode import DecodeError, decode_image
from .faults import Ledger, crash_message, guarded
from .sources import content_id, read_bytes
from .storage import configure as use_storage
from .store.schema import CORE_FIELDS, FRAME_KEY_FIELDS, LINEAGE_FIELDS

# Decoded pixels travel between stages as raw bytes plus their shape, so every
# column has a plain, declared Arrow type (no tensor extension types).
PIXEL_FIELDS = [pa.field("pixels", pa.large_binary()), pa.field("pixels_h", pa.int32()),
                pa.field("pixels_w", pa.int32())]
_DECODE_NAMES = ("id", "uri", "media_type", "file_size", "format", "mode", "width", "height",
                 "exif_orientation", "n_frames", "error", "warning", "decode_ms")
DECODE_SCHEMA = pa.schema([f for f in CORE_FIELDS if f.name in _DECODE_NAMES] + LINEAGE_FIELDS + PIXEL_FIELDS)
# A sampled video frame on its way through the cascade: the analysis copy in ``pixels``, the full-size frame
# (when larger) in ``full_pixels``, as the JPEG bytes the Stage 3 step writes if it wins; a stage drops both
# from the frames it rejects. The row that closes a segment (frame_index -1, no pixels) carries the END_FIELDS.
FULL_PIXELS = pa.field("full_pixels", pa.large_binary())
END_FIELDS = [pa.field("segment_rows", pa.int64()), pa.field("segments", pa.int32()),
              pa.field("cuts", pa.list_(pa.int64())), pa.field("fps", pa.float64()),
              pa.field("video_error", pa.string())]
FRAME_ROW_SCHEMA = pa.schema([f for f in FRAME_KEY_FIELDS if f.name != "run_id"] + PIXEL_FIELDS + [FULL_PIXELS]
                             + END_FIELDS)


def table_of(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """``rows`` as a table of ``schema`` (a key a row lacks is null), as ``pa.Table.from_pylist`` would make it,
    but each binary column (pixels, JPEG bytes) is joined into one buffer: for 45 frames of 1080p Arrow's
    per-value builder took 0.23 to 1.5 s, the join 0.11 to 0.15 s."""
    columns = []
    for field in schema:
        values = [r.get(field.name) for r in rows]
        if pa.types.is_large_binary(field.type) or pa.types.is_binary(field.type):
            columns.append(_binary_array(values, field.type))
        else:
            columns.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _binary_array(values: Sequence[Any], type_: pa.DataType) -> pa.Array:
    """Bytes-like values (None: null) as one binary array, their bytes copied once."""
    valid = np.array([v is not None for v in values], bool)
    sizes = [memoryview(v).nbytes if v is not None else 0 for v in values]
    offsets = np.zeros(len(values) + 1, np.int64 if pa.types.is_large_binary(type_) else np.int32)
    np.cumsum(sizes, out=offsets[1:])
    data = b"".join(memoryview(v).cast("B") for v in values if v is not None)
    nulls = len(values) - int(valid.sum())
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    return pa.Array.from_buffers(type_, len(values), [bitmap, pa.py_buffer(offsets), pa.py_buffer(data)],
                                 null_count=nulls)


def blank_row(uri: str, size: int, lineage: Mapping[str, Any] | None, schema: pa.Schema = DECODE_SCHEMA
              ) -> dict[str, Any]:
    """A row of ``schema`` for the file ``uri`` of ``size`` bytes, all else null; ``lineage`` (a video's frame)
    fills the lineage columns and makes it a ``video_frame``."""
    row: dict[str, Any] = {name: None for name in schema.names}
    row.update(uri=uri, media_type="video_frame" if lineage else "image", file_size=int(size))
    row.update(lineage or {})
    return row


def decode_row(uri: str, size: int, *, max_side: int, max_pixels: int,
               lineage: Mapping[str, Any] | None = None, known_id: str | None = None) -> dict[str, Any]:
    """Read one file, hash it (unless ingest did: ``known_id``), decode it; a failure becomes the row's
    ``error``.

    ``lineage`` (for a video frame) fills the lineage columns and makes it a ``video_frame``.
    """
    start = time.perf_counter()
    row = blank_row(uri, size, lineage)
    try:
        data = read_bytes(uri)
    except OSError as exc:
        row["id"] = known_id or content_id(uri.encode())  # unreadable: an id from its name
        row["error"] = f"cannot read file: {exc}"
        row["decode_ms"] = (time.perf_counter() - start) * 1000.0
        return row
    return decode_bytes(data, row, max_side=max_side, max_pixels=max_pixels, known_id=known_id, start=start)


def decode_bytes(data: bytes, row: dict[str, Any], *, max_side: int, max_pixels: int, known_id: str | None = None,
                 start: float | None = None) -> dict[str, Any]:
    """``row`` (:func:`_blank`'s: uri, lineage) filled from a file's bytes in hand: its id (their hash, unless
    ``known_id``), size, format and pixels; a failure becomes the row's ``error``. A video's winner is decoded
    here from the JPEG bytes its file was written from (the file is never read back)."""
    start = time.perf_counter() if start is None else start
    row["id"] = known_id or content_id(data)
    row["file_size"] = len(data)
    try:
        img = decode_image(data, max_side=max_side, max_pixels=max_pixels)
        row.update(format=img.format, mode=img.mode, width=img.width, height=img.height,
                   exif_orientation=img.orientation, n_frames=img.n_frames, warning=img.warning,
                   pixels=img.rgb.tobytes(), pixels_h=img.rgb.shape[0], pixels_w=img.rgb.shape[1])
    except DecodeError as exc:
        row["error"] = str(exc)
    row["decode_ms"] = (time.perf_counter() - start) * 1000.0
    return row


def row_schema(carried: Sequence[pa.Field] = ()) -> pa.Schema:
    """The rows the image analysers take: :data:`DECODE_SCHEMA`, then ``carried``, the columns a video's winner
    brings from the cascade (:func:`raycurate.stages.carried_analyzers`: null on every other row). Photos and
    winners flow through the same pools in this one schema."""
    return pa.schema(list(DECODE_SCHEMA) + [f for f in carried if f.name not in DECODE_SCHEMA.names])


def file_rows(items: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows (``schema``: :func:`row_schema`) for files still to be read and decoded: photos, and the winners'
    files a killed run left unanalysed. Each item: ``uri``, ``size``, ``id`` (ingest's hash), lineage columns."""
    lineage_names = [f.name for f in LINEAGE_FIELDS]
    rows = []
    for item in items:
        lineage = {k: item[k] for k in lineage_names if item.get(k) is not None}
        row = blank_row(item["uri"], int(item.get("size") or 0), lineage or None, schema)
        row["id"] = item.get("id")
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema)


def to_decode(batch: pa.Table) -> list[bool]:
    """The rows of ``batch`` still to be read and decoded: those with neither pixels nor an error (a table of
    files without a ``pixels`` column: all)."""
    if "pixels" not in batch.column_names:
        return [True] * batch.num_rows
    return pc.and_(batch.column("pixels").is_null(), batch.column("error").is_null()).to_pylist()


def read_and_decode(batch: pa.Table, *, max_side: int, max_pixels: int,
                    ledger: Callable[[], Ledger | None] | None = None,
                    storage: Mapping[str, Any] | None = None) -> pa.Table:
    """``batch`` with its files read and decoded, under the crash ledger that ``ledger()`` returns where the batch
    runs (a file that killed a worker twice becomes an error row); the engine passes a lookup of the run's ledger
    actor. ``batch``: :func:`file_rows` (rows already decoded, a video's winners, pass through as they are;
    the others come first) or plain ``uri``, ``size`` (``id``, lineage) rows (:data:`DECODE_SCHEMA` out)."""
    if storage is not None:   # buckets: the driver's resolved settings (raycurate.storage), not this worker's env
        use_storage(storage)
    pending = to_decode(batch)
    if not any(pending):
        return batch
    schema = batch.schema if "pixels" in batch.column_names else DECODE_SCHEMA
    done = batch.filter(pa.array([not p for p in pending])) if not all(pending) else None
    todo = batch if done is None else batch.filter(pa.array(pending))
    lineage_names = [f.name for f in LINEAGE_FIELDS if f.name in todo.column_names]
    uris = [str(u) for u in todo.column("uri").to_pylist()]
    sizes = todo.column("size" if "size" in todo.column_names else "file_size").to_pylist()
    ids = todo.column("id").to_pylist() if "id" in todo.column_names else [None] * len(uris)

    def lineage(i: int) -> dict[str, Any] | None:
        found = {k: todo.column(k)[i].as_py() for k in lineage_names}
        return found if found.get("source_video_id") else None

    def process(indices: list[int]) -> list[dict[str, Any]]:
        return [decode_row(uris[i], int(sizes[i] or 0), max_side=max_side, max_pixels=max_pixels,
                           lineage=lineage(i), known_id=ids[i]) for i in indices]

    def crashed(i: int) -> dict[str, Any]:
        row = blank_row(uris[i], int(sizes[i] or 0), lineage(i))
        row.update(id=ids[i] or content_id(uris[i].encode()), error=crash_message("decoding"))
        return row

    rows = guarded(ledger() if ledger is not None else None, "decode", uris, process, crashed)
    decoded = table_of(rows, schema)
    return decoded if done is None else pa.concat_tables([decoded, done.select(schema.names)])


def images_of(batch: pa.Table) -> list[np.ndarray]:
    """The RGB arrays of a batch: read-only views on the Arrow buffers, no copy.

    A row without pixels (it failed to decode) gives a 1x1 black image; analysers skip it.
    """
    heights = batch.column("pixels_h").to_pylist()
    widths = batch.column("pixels_w").to_pylist()
    out: list[np.ndarray] = []
    for chunk in batch.column("pixels").chunks:
        _, offsets_buf, data_buf = chunk.buffers()
        offsets = np.frombuffer(offsets_buf, dtype=np.int64)[chunk.offset:chunk.offset + len(chunk) + 1]
        data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.empty(0, np.uint8)
        data.flags.writeable = False  # the batch is shared: analysers must not write into it
        missing = chunk.is_null().to_numpy(zero_copy_only=False)
        for j in range(len(chunk)):
            i = len(out)
            out.append(np.zeros((1, 1, 3), np.uint8) if missing[j]
                       else data[offsets[j]:offsets[j + 1]].reshape(heights[i], widths[i], 3))
    return out
