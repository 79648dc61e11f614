"""Where the rows go: a Ray Data sink that appends them to a LanceDB table from the workers (and reports
them stored to the pipeline's progress counter)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

import pyarrow as pa
from ray.data import Datasink
from ray.data.block import Block, BlockAccessor

from ..heap import trim
from .progress import report
from ..rows import PIXEL_FIELDS
from ..storage import configure as use_storage
from ..storage import resolved as storage_settings
from ..store.schema import TABLE_NAME, conform
from ..store.table import open_or_create_table, upsert


class LanceSink(Datasink):
    """Writes each write task's rows to a LanceDB table (from the workers), one row per content id
    (:func:`~raycurate.store.table.upsert`), pixels dropped,
    stamped with the run id (and the time, where the table has ``analyzed_at``).

    ``storage``: the bucket settings the write tasks use (default: the driver's, resolved when built);
    ``progress``: the counter the stored rows are reported to (:mod:`raycurate.engine.progress`)."""

    def __init__(self, db_uri: str, schema: pa.Schema, run_id: str, rows_per_write: int = 256,
                 table_name: str = TABLE_NAME, storage: Mapping[str, Any] | None = None,
                 progress: str | None = None) -> None:
        self.progress = progress
        self.storage = storage if storage is not None else storage_settings()
        self.db_uri = db_uri
        self.schema = schema
        self.run_id = run_id
        self.rows_per_write = rows_per_write
        self.table_name = table_name

    @property
    def min_rows_per_write(self) -> int:
        return self.rows_per_write

    def on_write_start(self, schema: pa.Schema | None = None) -> None:
        use_storage(self.storage)
        open_or_create_table(self.db_uri, self.table_name, self.schema)

    def write(self, blocks: Iterable[Block], ctx: Any) -> int:
        use_storage(self.storage)
        tables = []
        for block in blocks:
            t = BlockAccessor.for_block(block).to_arrow()
            if t.num_rows == 0:
                continue
            t = t.drop_columns([f.name for f in PIXEL_FIELDS if f.name in t.column_names])
            n = t.num_rows
            t = t.append_column("run_id", pa.array([self.run_id] * n, pa.string()))
            if "analyzed_at" in self.schema.names:
                t = t.append_column("analyzed_at", pa.array([datetime.now(timezone.utc)] * n,
                                                            pa.timestamp("us", tz="UTC")))
            # the columns the pipeline made, typed as the table's: the others (a manual label, the people and
            # dedup marks, a disabled analyser's scores) stay as stored when a content is analysed again
            tables.append(conform(t, pa.schema([f for f in self.schema if f.name in t.column_names])))
        if not tables:
            return 0
        data = pa.concat_tables(tables, promote_options="default")
        upsert(open_or_create_table(self.db_uri, self.table_name, self.schema), data)
        n = data.num_rows
        report(self.progress, "stored", n)
        del data, tables
        trim()   # the rows are stored: give their memory back
        return n

    def get_name(self) -> str:
        return f"WriteLanceDB({self.table_name})"
