"""The ``images`` table: its schema is declared here, once.

Core columns describe the file and its decoding; each analyser adds its own
columns (:meth:`raycurate.analyzers.Analyzer.fields`), including the model
id/version behind them, its error and its time per image.
"""
from __future__ import annotations

from typing import Iterable

import pyarrow as pa

from ..analyzers import ANALYZERS, Analyzer

TABLE_NAME = "images"

CORE_FIELDS: list[pa.Field] = [
    pa.field("id", pa.string(), nullable=False),          # sha256 of the file's bytes
    pa.field("uri", pa.string(), nullable=False),         # where the file was read
    pa.field("run_id", pa.string(), nullable=False),      # the run that wrote the row
    pa.field("media_type", pa.string(), nullable=False),  # image (video frames arrive with the video path)
    pa.field("file_size", pa.int64()),
    pa.field("format", pa.string()),                      # JPEG, PNG, GIF, ...
    pa.field("mode", pa.string()),                        # pixel mode in the file: RGB, L, I;16, P, CMYK ...
    pa.field("width", pa.int32()),                        # upright size of the original
    pa.field("height", pa.int32()),
    pa.field("exif_orientation", pa.int8()),
    pa.field("n_frames", pa.int32()),
    pa.field("error", pa.string()),                       # why the file could not be read or decoded
    pa.field("warning", pa.string()),                     # oddities that did not stop decoding
    pa.field("decode_ms", pa.float32()),
    pa.field("analyzed_at", pa.timestamp("us", tz="UTC")),
]


def images_schema(analyzers: Iterable[type[Analyzer] | Analyzer] | None = None) -> pa.Schema:
    """Core columns plus the columns of ``analyzers`` (all known analysers by default).

    The table always holds every known analyser's columns, so that runs with
    different analysers enabled append to one table; a disabled analyser's
    columns are null.
    """
    classes = ANALYZERS.values() if analyzers is None else [a if isinstance(a, type) else type(a)
                                                            for a in analyzers]
    fields = list(CORE_FIELDS)
    for cls in classes:
        fields.extend(cls.fields())
    return pa.schema(fields)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns, in order and types; missing columns are null."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            col = table.column(field.name)
            columns.append(col if col.type == field.type else col.cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)
