"""Where the rows go: a Ray Data sink that appends them to a LanceDB table from the workers, and the
progress display that counts them there."""
from __future__ import annotations

import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

import pyarrow as pa
from ray.data import Datasink
from ray.data.block import Block, BlockAccessor

from ..heap import trim
from ..rows import PIXEL_FIELDS
from ..storage import configure as use_storage
from ..storage import resolved as storage_settings
from ..store.schema import TABLE_NAME, conform
from ..store.table import open_or_create_table


class LanceSink(Datasink):
    """Appends each write task's rows to a LanceDB table (from the workers), pixels dropped,
    stamped with the run id (and the time, where the table has ``analyzed_at``).

    ``storage``: the bucket settings the write tasks use (default: the driver's, resolved when built)."""

    def __init__(self, db_uri: str, schema: pa.Schema, run_id: str, rows_per_write: int = 256,
                 table_name: str = TABLE_NAME, storage: Mapping[str, Any] | None = None) -> None:
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
            tables.append(conform(t, self.schema))
        if not tables:
            return 0
        data = pa.concat_tables(tables)
        open_or_create_table(self.db_uri, self.table_name, self.schema).add(data)
        n = data.num_rows
        del data, tables
        trim()   # the rows are stored: give their memory back
        return n

    def get_name(self) -> str:
        return f"WriteLanceDB({self.table_name})"


class StoredRowsProgress:
    """Progress of a run as rows land in LanceDB: a bar on a terminal, a line every 10 s in logs.

    It polls the table's row count (metadata only), so it counts what is really stored.
    """

    def __init__(self, table: Any, total: int | None, interval: float = 1.0,
                 label: str = "images analysed and stored") -> None:
        self.table = table
        self.total = total
        self.label = label
        self.interval = interval
        self.base = table.count_rows()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="raycurate-progress", daemon=True)

    def _stored(self) -> int:
        try:
            self.table.checkout_latest()
            return max(0, self.table.count_rows() - self.base)
        except Exception:  # progress must never break a run
            return 0

    def _watch(self) -> None:
        from tqdm import tqdm

        tty = sys.stderr.isatty()
        bar = tqdm(total=self.total, desc=self.label, unit="row", disable=not tty)
        cap = self.total if self.total is not None else float("inf")
        last_log = time.monotonic()
        while not self._stop.wait(self.interval):
            done = min(cap, self._stored())
            bar.update(done - bar.n)
            if not tty and time.monotonic() - last_log >= 10.0:
                of = f"/{self.total}" if self.total is not None else ""
                print(f"[raycurate] {done}{of} {self.label}", file=sys.stderr, flush=True)
                last_log = time.monotonic()
        bar.update(min(cap, self._stored()) - bar.n)
        bar.close()

    def __enter__(self) -> "StoredRowsProgress":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
