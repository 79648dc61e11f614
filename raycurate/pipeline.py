"""The Ray Data pipeline: the only module that imports ray.

list (driver) -> read + decode (Ray tasks) -> one actor pool per analyser
(``map_batches`` with ``ActorPoolStrategy``) -> streamed write to LanceDB
(each write task appends its rows; nothing is collected on the driver).
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import ray
from ray.data import ActorPoolStrategy, Datasink
from ray.data.block import Block, BlockAccessor

from .analyzers import ANALYZERS, build_analyzer
from .decode import DecodeError, decode_image
from .resources import ActorRequest, actor_request
from .sources import FileRef, content_id, read_bytes
from .store.schema import CORE_FIELDS, conform, images_schema
from .store.table import open_or_create_images_table

# Decoded pixels travel between stages as raw bytes plus their shape, so every
# column has a plain, declared Arrow type (no tensor extension types).
PIXEL_FIELDS = [pa.field("pixels", pa.large_binary()), pa.field("pixels_h", pa.int32()),
                pa.field("pixels_w", pa.int32())]
_DECODE_NAMES = ("id", "uri", "media_type", "file_size", "format", "mode", "width", "height",
                 "exif_orientation", "n_frames", "error", "warning", "decode_ms")
DECODE_SCHEMA = pa.schema([f for f in CORE_FIELDS if f.name in _DECODE_NAMES] + PIXEL_FIELDS)


def init_ray(ray_cfg: Mapping[str, Any]) -> None:
    """Join the configured cluster, or start a local Ray (once per process)."""
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "ignore_reinit_error": True,
                              "logging_level": logging.WARNING}
    if ray_cfg.get("address"):
        ray.init(address=ray_cfg["address"], **kwargs)
        return
    if ray_cfg.get("num_cpus") is not None:
        kwargs["num_cpus"] = ray_cfg["num_cpus"]
    if ray_cfg.get("num_gpus") is not None:
        kwargs["num_gpus"] = ray_cfg["num_gpus"]
    ray.init(**kwargs)


def decode_row(uri: str, size: int, *, max_side: int, max_pixels: int) -> dict[str, Any]:
    """Read one file, hash it, decode it; a failure becomes the row's ``error``."""
    start = time.perf_counter()
    row: dict[str, Any] = {name: None for name in DECODE_SCHEMA.names}
    row.update(uri=uri, media_type="image", file_size=int(size))
    try:
        data = read_bytes(uri)
        row["id"] = content_id(data)
        row["file_size"] = len(data)
        img = decode_image(data, max_side=max_side, max_pixels=max_pixels)
        row.update(format=img.format, mode=img.mode, width=img.width, height=img.height,
                   exif_orientation=img.orientation, n_frames=img.n_frames, warning=img.warning,
                   pixels=img.rgb.tobytes(), pixels_h=img.rgb.shape[0], pixels_w=img.rgb.shape[1])
    except DecodeError as exc:
        row["error"] = str(exc)
    except OSError as exc:
        row["id"] = row["id"] or content_id(uri.encode())  # unreadable: an id from its name
        row["error"] = f"cannot read file: {exc}"
    row["decode_ms"] = (time.perf_counter() - start) * 1000.0
    return row


def read_and_decode(batch: pa.Table, *, max_side: int, max_pixels: int) -> pa.Table:
    rows = [decode_row(str(uri), int(size), max_side=max_side, max_pixels=max_pixels)
            for uri, size in zip(batch.column("uri").to_pylist(), batch.column("size").to_pylist())]
    return pa.Table.from_pylist(rows, schema=DECODE_SCHEMA)


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


class AnalyzerActor:
    """Ray actor around one plain analyser: builds it and loads its model once."""

    name: str
    section: Mapping[str, Any]

    def __init__(self) -> None:
        self.analyzer = build_analyzer(self.name, self.section)
        self.analyzer.setup()
        self.fields = type(self.analyzer).fields()

    def __call__(self, batch: pa.Table) -> pa.Table:
        out = self.analyzer({"image": images_of(batch), "error": batch.column("error").to_pylist()})
        for f in self.fields:
            batch = batch.append_column(f, pa.array(out[f.name], type=f.type))
        return batch


def actor_class(name: str, section: Mapping[str, Any]) -> type[AnalyzerActor]:
    """An :class:`AnalyzerActor` bound to one analyser's config, named after it (``FaceAnalyzerActor``),
    so that each pool has a readable name in Ray's logs and stats."""
    cls_name = f"{ANALYZERS[name].__name__}Actor"
    return type(cls_name, (AnalyzerActor,), {"name": name, "section": dict(section), "__qualname__": cls_name})


class LanceImagesSink(Datasink):
    """Appends each write task's rows to the LanceDB ``images`` table (from the workers)."""

    def __init__(self, db_uri: str, schema: pa.Schema, run_id: str, rows_per_write: int = 256) -> None:
        self.db_uri = db_uri
        self.schema = schema
        self.run_id = run_id
        self.rows_per_write = rows_per_write

    @property
    def min_rows_per_write(self) -> int:
        return self.rows_per_write

    def on_write_start(self, schema: pa.Schema | None = None) -> None:
        open_or_create_images_table(self.db_uri, self.schema)

    def write(self, blocks: Iterable[Block], ctx: Any) -> int:
        tables = []
        for block in blocks:
            t = BlockAccessor.for_block(block).to_arrow()
            if t.num_rows == 0:
                continue
            t = t.drop_columns([f.name for f in PIXEL_FIELDS if f.name in t.column_names])
            n = t.num_rows
            t = t.append_column("run_id", pa.array([self.run_id] * n, pa.string()))
            t = t.append_column("analyzed_at", pa.array([datetime.now(timezone.utc)] * n,
                                                        pa.timestamp("us", tz="UTC")))
            tables.append(conform(t, self.schema))
        if not tables:
            return 0
        data = pa.concat_tables(tables)
        table = open_or_create_images_table(self.db_uri, self.schema)
        table.add(data)
        return data.num_rows

    def get_name(self) -> str:
        return "WriteLanceDB"


class StoredRowsProgress:
    """Progress of a run as rows land in LanceDB: a bar on a terminal, a line every 10 s in logs.

    It polls the table's row count (metadata only), so it counts what is really stored.
    """

    def __init__(self, table: Any, total: int, interval: float = 1.0) -> None:
        self.table = table
        self.total = total
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
        bar = tqdm(total=self.total, desc="analysed and stored", unit="img", disable=not tty)
        last_log = time.monotonic()
        while not self._stop.wait(self.interval):
            done = min(self.total, self._stored())
            bar.update(done - bar.n)
            if not tty and time.monotonic() - last_log >= 10.0:
                print(f"[raycurate] {done}/{self.total} images analysed and stored", file=sys.stderr, flush=True)
                last_log = time.monotonic()
        bar.update(min(self.total, self._stored()) - bar.n)
        bar.close()

    def __enter__(self) -> "StoredRowsProgress":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class PipelineResult:
    rows_written: int
    seconds: float
    actors: dict[str, ActorRequest] = field(default_factory=dict)


def cluster_resources() -> tuple[float, float]:
    res = ray.cluster_resources()
    return float(res.get("CPU", 0.0)), float(res.get("GPU", 0.0))


def run_pipeline(files: Sequence[FileRef], cfg: Mapping[str, Any], *, db_uri: str, run_id: str) -> PipelineResult:
    """Decode and analyse ``files`` (images) on Ray and append the rows to LanceDB."""
    start = time.perf_counter()
    init_ray(cfg["ray"])
    # One progress display: ours (rows stored in LanceDB), not Ray's per-operator bars
    # (and not Ray's warning that they are off).
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    cpus, gpus = cluster_resources()
    dec = cfg["decode"]

    items = [{"uri": f.uri, "size": f.size} for f in files]
    # One block per decode batch: small blocks keep every pool fed and let the busiest one scale out.
    n_blocks = max(1, (len(items) + dec["batch_size"] - 1) // dec["batch_size"])
    ds = ray.data.from_items(items, override_num_blocks=n_blocks)
    ds = ds.map_batches(read_and_decode, batch_size=dec["batch_size"], batch_format="pyarrow",
                        fn_kwargs={"max_side": dec["max_side"], "max_pixels": dec["max_pixels"]},
                        num_cpus=dec["num_cpus"])

    requests: dict[str, ActorRequest] = {}
    for name in ANALYZERS:
        section = cfg["analyzers"][name]
        if not section["enabled"]:
            continue
        analyzer = build_analyzer(name, section)  # validates arguments on the driver; no model loaded
        req = actor_request(analyzer.resources, cluster_cpus=cpus, cluster_gpus=gpus,
                            gpu_memory_gb=cfg["ray"]["gpu_memory_gb"],
                            min_actors=section["min_actors"], max_actors=section["max_actors"])
        requests[name] = req
        ds = ds.map_batches(
            actor_class(name, section), batch_size=analyzer.resources.batch_size, batch_format="pyarrow",
            compute=ActorPoolStrategy(min_size=req.min_actors, max_size=req.max_actors),
            num_cpus=req.num_cpus, num_gpus=req.num_gpus or None)

    needed = dec["num_cpus"] + sum(r.num_cpus * r.min_actors for r in requests.values())
    if needed > cpus + 1e-9:
        raise RuntimeError(
            f"the analysers' actor pools need {needed:g} CPUs for their minimum sizes (plus one decode task) "
            f"but the Ray cluster has {cpus:g}; lower analyzers.*.num_cpus or analyzers.*.min_actors, or add CPUs")

    schema = images_schema()
    table = open_or_create_images_table(db_uri, schema)
    sink = LanceImagesSink(db_uri, schema, run_id, rows_per_write=dec["rows_per_write"])
    with StoredRowsProgress(table, total=len(items)):
        ds.write_datasink(sink)
    written = table.count_rows(f"run_id = '{run_id}'")
    return PipelineResult(rows_written=written, seconds=time.perf_counter() - start, actors=requests)
