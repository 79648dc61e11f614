"""The Ray Data pipeline: the only module that imports ray.

list (driver) -> read + decode (Ray tasks) -> one actor pool per analyser
(``map_batches`` with ``ActorPoolStrategy``) -> streamed write to LanceDB
(each write task appends its rows; nothing is collected on the driver).
"""
from __future__ import annotations

import logging
import math
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray
from ray.data import ActorPoolStrategy, Datasink
from ray.data.block import Block, BlockAccessor

from .analyzers import ANALYZERS, active_analyzers, build_analyzer
from .analyzers.base import Resources
from .decode import DecodeError, decode_image
from .export import safe_stem
from .faults import KILL_LIMIT, CrashLedger, crash_message, guarded, maybe_kill
from .resources import ActorRequest, actor_request
from .stages import STAGES
from .sources import FileRef, content_id, read_bytes
from .storage import OutputDir, is_remote
from .storage import configure as use_storage
from .storage import join as join_uri
from .storage import resolved as storage_settings
from .store.schema import (CORE_FIELDS, FRAME_KEY_FIELDS, FRAMES_TABLE, LINEAGE_FIELDS, STAGE3_SCHEMA,
                           STAGE3_TABLE, TABLE_NAME, VIDEOS_SCHEMA, VIDEOS_TABLE, conform, frames_schema,
                           images_schema)
from .store.table import open_or_create_table, open_table
from .video.reader import VideoDecodeError, open_video, probe
from .video.sampling import SamplingParams
from .video.select import stage3_rows
from .video.scenes import scene_of
from .video.source import VideoSampler, empty_summary, file_sha256

# Decoded pixels travel between stages as raw bytes plus their shape, so every
# column has a plain, declared Arrow type (no tensor extension types).
PIXEL_FIELDS = [pa.field("pixels", pa.large_binary()), pa.field("pixels_h", pa.int32()),
                pa.field("pixels_w", pa.int32())]
_DECODE_NAMES = ("id", "uri", "media_type", "file_size", "format", "mode", "width", "height",
                 "exif_orientation", "n_frames", "error", "warning", "decode_ms")
DECODE_SCHEMA = pa.schema([f for f in CORE_FIELDS if f.name in _DECODE_NAMES] + LINEAGE_FIELDS + PIXEL_FIELDS)
# A sampled video frame on its way through the cascade.
FRAME_ROW_SCHEMA = pa.schema([f for f in FRAME_KEY_FIELDS if f.name != "run_id"] + PIXEL_FIELDS)


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


# ---------------------------------------------------------------------------------------------
# Worker deaths (raycurate/faults.py): Ray restarts actors and retries their batches; the crash ledger,
# one actor per pipeline on the driver's node, turns a file that keeps killing workers into an error row.
# ---------------------------------------------------------------------------------------------

class RemoteLedger:
    """A worker's view of the run's :class:`~raycurate.faults.CrashLedger` actor."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def begin(self, key: str) -> int:
        return int(ray.get(self.handle.begin.remote(key)))

    def end(self, key: str) -> None:
        ray.get(self.handle.end.remote(key))

    def crashed(self, scope: str, item: str) -> None:
        ray.get(self.handle.crashed.remote(scope, item))


_WORKER_LEDGERS: dict[str, RemoteLedger | None] = {}


def worker_ledger(name: str | None) -> RemoteLedger | None:
    """The ledger called ``name`` (looked up once per worker process); None without one."""
    if not name:
        return None
    if name not in _WORKER_LEDGERS:
        try:
            _WORKER_LEDGERS[name] = RemoteLedger(ray.get_actor(name))
        except ValueError:
            logging.getLogger(__name__).warning("crash ledger %s not found: batches run unguarded", name)
            _WORKER_LEDGERS[name] = None
    return _WORKER_LEDGERS[name]


@contextmanager
def crash_ledger(run_id: str, what: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """A crash ledger actor for one pipeline, pinned to the driver's node (if that node dies the run is
    gone anyway); yields its name and a dict that holds its report once the pipeline is done."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    name = f"raycurate-crash-ledger-{what}-{run_id}-{os.getpid()}"
    actor = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(CrashLedger).options(
        name=name, scheduling_strategy=NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(),
                                                                      soft=False)).remote()
    report: dict[str, Any] = {}
    try:
        yield name, report
        report.update(ray.get(actor.report.remote()))
    finally:
        ray.kill(actor)


def guarded_columns(batch: pa.Table, fields: Sequence[pa.Field], run: Any, *, ledger: str | None, scope: str,
                    keys: Sequence[str], crashed: Mapping[str, Any]) -> pa.Table:
    """``batch`` with ``fields`` appended, computed by ``run(part) -> {column: values}`` under the crash
    ledger: a row whose file killed a worker twice gets ``crashed`` (its other fields null)."""
    def process(indices: list[int]) -> list[dict[str, Any]]:
        out = run(batch if len(indices) == batch.num_rows else batch.take(indices))
        return [{f.name: out[f.name][j] for f in fields} for j in range(len(indices))]

    dead = {**{f.name: None for f in fields}, **crashed}
    rows = guarded(worker_ledger(ledger), scope, keys, process, lambda i: dead)
    for f in fields:
        batch = batch.append_column(f, pa.array([r[f.name] for r in rows], type=f.type))
    return batch


def decode_row(uri: str, size: int, *, max_side: int, max_pixels: int,
               lineage: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read one file, hash it, decode it; a failure becomes the row's ``error``.

    ``lineage`` (for a video frame) fills the lineage columns and makes it a ``video_frame``.
    """
    start = time.perf_counter()
    row: dict[str, Any] = {name: None for name in DECODE_SCHEMA.names}
    row.update(uri=uri, media_type="video_frame" if lineage else "image", file_size=int(size))
    row.update(lineage or {})
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


def read_and_decode(batch: pa.Table, *, max_side: int, max_pixels: int, ledger: str | None = None,
                    storage: Mapping[str, Any] | None = None) -> pa.Table:
    if storage is not None:   # buckets: the driver's resolved settings (raycurate.storage), not this worker's env
        use_storage(storage)
    lineage_names = [f.name for f in LINEAGE_FIELDS if f.name in batch.column_names]
    uris = [str(u) for u in batch.column("uri").to_pylist()]
    sizes = batch.column("size").to_pylist()

    def lineage(i: int) -> dict[str, Any] | None:
        found = {k: batch.column(k)[i].as_py() for k in lineage_names}
        return found if found.get("source_video_id") else None

    def process(indices: list[int]) -> list[dict[str, Any]]:
        return [decode_row(uris[i], int(sizes[i]), max_side=max_side, max_pixels=max_pixels, lineage=lineage(i))
                for i in indices]

    def crashed(i: int) -> dict[str, Any]:
        row: dict[str, Any] = {name: None for name in DECODE_SCHEMA.names}
        row.update(lineage(i) or {})
        row.update(id=content_id(uris[i].encode()), uri=uris[i], file_size=int(sizes[i]),
                   media_type="video_frame" if lineage(i) else "image", error=crash_message("decoding"))
        return row

    rows = guarded(worker_ledger(ledger), "decode", uris, process, crashed)
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
    models_cfg: Mapping[str, Any]
    ledger: str | None = None

    def __init__(self) -> None:
        self.analyzer = build_analyzer(self.name, self.section, self.models_cfg)
        self.analyzer.setup()
        self.fields = type(self.analyzer).fields()

    def _analyze(self, batch: pa.Table) -> dict[str, list[Any]]:
        columns = {k: batch.column(k).to_pylist() for k in self.analyzer.uses}
        return self.analyzer({"image": images_of(batch), "error": batch.column("error").to_pylist(), **columns})

    def __call__(self, batch: pa.Table) -> pa.Table:
        return guarded_columns(batch, self.fields, self._analyze, ledger=self.ledger, scope=self.name,
                               keys=[str(u) for u in batch.column("uri").to_pylist()],
                               crashed={f"{self.name}_model": self.analyzer.model_ref,
                                        f"{self.name}_error": crash_message("analysing")})


def _bound(base: type, cls_name: str, **attrs: Any) -> type:
    """A subclass of ``base`` holding ``attrs`` (its config), named so that each pool has a readable
    name in Ray's logs and stats."""
    return type(cls_name, (base,), {**attrs, "__qualname__": cls_name})


def actor_class(name: str, section: Mapping[str, Any], models_cfg: Mapping[str, Any],
                ledger: str | None = None) -> type[AnalyzerActor]:
    """An :class:`AnalyzerActor` bound to one analyser's config (``FaceAnalyzerActor``)."""
    return _bound(AnalyzerActor, f"{ANALYZERS[name].__name__}Actor", name=name, section=dict(section),
                  models_cfg=dict(models_cfg), ledger=ledger)


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
        return data.num_rows

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


@dataclass
class PipelineResult:
    rows_written: int
    seconds: float
    actors: dict[str, ActorRequest] = field(default_factory=dict)
    faults: dict[str, Any] = field(default_factory=dict)   # the crash ledger's report


def cluster_resources() -> tuple[float, float]:
    res = ray.cluster_resources()
    return float(res.get("CPU", 0.0)), float(res.get("GPU", 0.0))


def _start_ray(cfg: Mapping[str, Any]) -> tuple[float, float]:
    """Ray up, one progress display (ours: rows stored in LanceDB, not Ray's per-operator bars nor its
    warning that they are off); the cluster's CPUs and GPUs."""
    init_ray(cfg["ray"])
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    return cluster_resources()


def ensure_models_on_nodes(model_ids: Iterable[str], models_cfg: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Check, before any actor starts, that every alive node holds the verified weights of ``model_ids``
    in its models directory (``models.dir``, resolved on that node); with ``models.pull_on_nodes`` a node
    pulls what it lacks first. Raises :class:`~raycurate.models.ModelError` naming each node and model that
    is not ready; returns {node ip: {model id: status}}."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from .models import ModelError, ensure_here

    ids = sorted(set(model_ids))
    if not ids:
        return {}
    check = ray.remote(num_cpus=0, max_retries=0)(ensure_here)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    refs = {f"{n['NodeManagerAddress']} ({n['NodeID'][:8]})": check.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
                ids, models_cfg["dir"], pull_missing=models_cfg["pull_on_nodes"])
            for n in nodes}
    report = dict(zip(refs, ray.get(list(refs.values()))))
    bad = [f"{node}: {mid} is {state}" for node, states in report.items() for mid, state in states.items()
           if state != "ok"]
    if bad:
        where = models_cfg["dir"] or "$RAYCURATE_MODELS or ~/.cache/raycurate/models"
        raise ModelError("model weights are not ready on every Ray node (" + "; ".join(bad) + f"). Fill the models "
                         f"directory ({where}) on each node with `raycurate models pull` (or copy it there and run "
                         "`raycurate models verify --record`), or set models.pull_on_nodes: true on a cluster "
                         "with internet")
    return report


def _add_pool(ds: ray.data.Dataset, udf: type, resources: Resources, pool: Mapping[str, Any],
              cfg: Mapping[str, Any], cpus: float, gpus: float) -> tuple[ray.data.Dataset, ActorRequest]:
    """``ds`` followed by an actor pool running ``udf``, sized by ``resources`` and the ``pool`` section."""
    req = actor_request(resources, cluster_cpus=cpus, cluster_gpus=gpus, gpu_memory_gb=cfg["ray"]["gpu_memory_gb"],
                        min_actors=pool["min_actors"], max_actors=pool["max_actors"], num_gpus=pool.get("num_gpus"))
    # Ray Data's defaults restart an actor that dies and resubmit the batch it held, without limit
    # (max_restarts=-1, max_task_retries=-1); the crash ledger (faults.py) ends the loop for a file that
    # keeps killing workers. tests/test_faults.py holds both to that.
    ds = ds.map_batches(udf, batch_size=resources.batch_size, batch_format="pyarrow", num_cpus=req.num_cpus,
                        num_gpus=req.num_gpus or None,
                        compute=ActorPoolStrategy(min_size=req.min_actors, max_size=req.max_actors))
    return ds, req


def _check_pools_fit(task_cpus: float, requests: Mapping[str, ActorRequest], cpus: float, what: str) -> None:
    """Refuse, with a message, pools whose minimum sizes cannot start (Ray would wait forever)."""
    needed = task_cpus + sum(r.num_cpus * r.min_actors for r in requests.values())
    if needed > cpus + 1e-9:
        raise RuntimeError(
            f"{what} need {needed:g} CPUs for one task and the actor pools' minimum sizes but the Ray cluster "
            f"has {cpus:g}; lower num_cpus or min_actors of the pools, or add CPUs")


def run_pipeline(files: Sequence[FileRef], cfg: Mapping[str, Any], *, db_uri: str, run_id: str,
                 lineage: Mapping[str, Mapping[str, Any]] | None = None) -> PipelineResult:
    """Decode and analyse ``files`` (images) on Ray and append the rows to LanceDB.

    ``lineage`` maps the uri of a video frame file to its lineage columns.
    """
    start = time.perf_counter()
    cpus, gpus = _start_ray(cfg)
    dec = cfg["decode"]

    lineage = lineage or {}
    empty = {f.name: None for f in LINEAGE_FIELDS}
    items = [{"uri": f.uri, "size": f.size, **empty, **lineage.get(f.uri, {})} for f in files]
    # One block per decode batch: small blocks keep every pool fed and let the busiest one scale out.
    n_blocks = max(1, (len(items) + dec["batch_size"] - 1) // dec["batch_size"])
    with crash_ledger(run_id, "images") as (ledger, faults):
        ds = ray.data.from_items(items, override_num_blocks=n_blocks)
        # A decode task whose worker dies is run again (Ray Data's default max_retries=-1; the crash ledger
        # bounds it).
        ds = ds.map_batches(read_and_decode, batch_size=dec["batch_size"], batch_format="pyarrow",
                            fn_kwargs={"max_side": dec["max_side"], "max_pixels": dec["max_pixels"],
                                       "ledger": ledger, "storage": storage_settings(cfg.get("storage"))},
                            num_cpus=dec["num_cpus"])

        requests: dict[str, ActorRequest] = {}
        for name in active_analyzers(cfg)[0]:
            section = cfg["analyzers"][name]
            analyzer = build_analyzer(name, section, cfg["models"])  # validates on the driver; no model loaded
            ds, requests[name] = _add_pool(ds, actor_class(name, section, cfg["models"], ledger), analyzer.resources,
                                           section, cfg, cpus, gpus)
        _check_pools_fit(dec["num_cpus"], requests, cpus, "the image path's decode task and analysers")

        schema = images_schema()
        table = open_or_create_table(db_uri, TABLE_NAME, schema)
        sink = LanceSink(db_uri, schema, run_id, rows_per_write=dec["rows_per_write"])
        with StoredRowsProgress(table, total=len(items)):
            ds.write_datasink(sink)
    written = table.count_rows(f"run_id = '{run_id}'")
    return PipelineResult(rows_written=written, seconds=time.perf_counter() - start, actors=requests, faults=faults)


# ---------------------------------------------------------------------------------------------
# The video path: sample -> Stage 1 -> Stage 2 (actor pools) -> frames table; Stage 3 per video on
# the stored scores; the winners are written as image files and join the image path.
# ---------------------------------------------------------------------------------------------

def sampling_params(video_cfg: Mapping[str, Any]) -> SamplingParams:
    return SamplingParams(sample_rate=video_cfg["sample_rate"], min_separation=video_cfg["min_separation"],
                          max_frames=video_cfg["max_frames"], motion_threshold=video_cfg["motion_threshold"],
                          scene_detection=video_cfg["scene_detection"], scene_detector=video_cfg["scene_detector"],
                          scene_bonus=video_cfg["scene_bonus"], scene_window_s=video_cfg["scene_window_s"])


@contextmanager
def local_copy(uri: str) -> Iterator[str]:
    """A local path for ``uri``: itself when local, else a temporary download (decoders need files)."""
    if "://" not in uri:
        yield uri
        return
    suffix = os.path.splitext(uri)[1]
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        tmp.write(read_bytes(uri))
        tmp.flush()
        yield tmp.name


def plan_segments(videos: Sequence[FileRef], video_cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One work item per video, or per segment of ``video.segment_s`` seconds for a long local video,
    so that one long video is decoded by several tasks at once. Segments start on a multiple of the
    sample rate, so the sampled frame indices are the same as without splitting."""
    seg_s = video_cfg["segment_s"]
    step = video_cfg["sample_rate"]

    def plan(f: FileRef) -> list[dict[str, Any]]:
        whole = [{"uri": f.uri, "start": 0, "stop": None, "segment": 0, "video_id": None}]
        if seg_s is None or "://" in f.uri:
            return whole
        try:
            info = probe(f.uri)
        except VideoDecodeError:
            return whole  # the decode task records the error
        if not info.duration or not info.fps or info.duration <= seg_s:
            return whole
        length = int(math.ceil(seg_s * info.fps / step)) * step
        total = info.frame_count_claimed or int(math.ceil(info.duration * info.fps))
        video_id = file_sha256(f.uri)
        starts = list(range(0, total, length))
        return [{"uri": f.uri, "start": start, "segment": k, "video_id": video_id,
                 "stop": None if k == len(starts) - 1 else start + length}   # the last one reads to the end
                for k, start in enumerate(starts)]

    with ThreadPoolExecutor(max_workers=8) as pool:   # probing and hashing are I/O and native code
        return [item for items in pool.map(plan, videos) for item in items]


def sample_videos(batch: pa.Table, *, video_cfg: Mapping[str, Any], max_side: int, db_uri: str,
                  run_id: str, ledger: str | None = None, storage: Mapping[str, Any] | None = None
                  ) -> Iterator[pa.Table]:
    """Each video (segment) of the batch -> batches of sampled frames; its summary row goes to ``videos``.

    A video (segment) that killed the decoding worker twice is not read again: its summary has the error."""
    if storage is not None:
        use_storage(storage)
    params = sampling_params(video_cfg)
    led = worker_ledger(ledger)
    for item in batch.to_pylist():
        uri = item["uri"]
        summary = empty_summary(uri, item["segment"], item["start"], item["stop"])
        key = f"video:item:{uri}#{item['segment']}"
        if led is not None and led.begin(key) >= KILL_LIMIT:
            led.crashed("video", f"{uri}#{item['segment']}")
            summary["error"] = crash_message("decoding")
            _store_summary(summary, run_id, uri, db_uri)
            led.end(key)
            continue
        maybe_kill("video", [uri])
        try:
            with local_copy(uri) as path:
                sampler = VideoSampler(path, uri, params, batch_size=video_cfg["batch_size"], max_side=max_side,
                                       decoders=tuple(video_cfg["decoders"]),
                                       decord_device=video_cfg["decord_device"], start=item["start"],
                                       stop=item["stop"], segment=item["segment"], video_id=item["video_id"])
                summary = sampler.summary
                for rows in sampler:
                    yield pa.Table.from_pylist(rows, schema=FRAME_ROW_SCHEMA)
        except OSError as exc:
            summary["error"] = f"cannot read video: {exc}"
        except Exception as exc:  # a bad file is a row with an error, never a failed run
            summary["error"] = f"video failed while sampling: {type(exc).__name__}: {exc}"[:500]
        _store_summary(summary, run_id, uri, db_uri)
        if led is not None:
            led.end(key)


def _store_summary(summary: Mapping[str, Any], run_id: str, uri: str, db_uri: str) -> None:
    row = {**summary, "run_id": run_id}
    row["video_id"] = row["video_id"] or content_id(uri.encode())
    open_or_create_table(db_uri, VIDEOS_TABLE, VIDEOS_SCHEMA).add(pa.Table.from_pylist([row], schema=VIDEOS_SCHEMA))


class StageActor:
    """Ray actor around one cascade stage; frames the stage rejects lose their pixels here."""

    stage_name: str
    cfg: Mapping[str, Any]
    ledger: str | None = None

    def __init__(self) -> None:
        self.stage = STAGES[self.stage_name].build(self.cfg)
        self.stage.setup()
        self.fields = type(self.stage).fields()

    def _run(self, batch: pa.Table) -> dict[str, list[Any]]:
        active = batch.column("pixels").is_valid().to_pylist()
        previous = {c: batch.column(c).to_pylist() for c in self.stage.uses}
        return self.stage(images_of(batch), active, previous)

    def __call__(self, batch: pa.Table) -> pa.Table:
        crashed: dict[str, Any] = {f"{a.name}_error": crash_message("analysing") for a in self.stage.analyzers}
        crashed[f"{self.stage.name}_passed"] = False
        keys = [f"{u}#{i}" for u, i in zip(batch.column("video_uri").to_pylist(),
                                            batch.column("frame_index").to_pylist())]
        batch = guarded_columns(batch, self.fields, self._run, ledger=self.ledger, scope=self.stage.name, keys=keys,
                                crashed=crashed)
        passed = pc.fill_null(batch.column(f"{self.stage.name}_passed"), False)
        i = batch.schema.get_field_index("pixels")
        pixels = pc.if_else(passed, batch.column("pixels"), pa.scalar(None, pa.large_binary()))
        return batch.set_column(i, "pixels", pixels)


def stage_actor_class(name: str, cfg: Mapping[str, Any], ledger: str | None = None) -> type[StageActor]:
    """A :class:`StageActor` bound to one stage and the run's config (``Stage1Actor``)."""
    return _bound(StageActor, f"{STAGES[name].__name__}Actor", stage_name=name, cfg=cfg, ledger=ledger)


@dataclass
class VideoPipelineResult:
    frames_written: int
    selected: list[dict[str, Any]]            # one dict per winning frame: video, index, lineage
    seconds: float
    actors: dict[str, ActorRequest] = field(default_factory=dict)
    faults: dict[str, Any] = field(default_factory=dict)   # the crash ledger's report


def run_video_pipeline(videos: Sequence[FileRef], cfg: Mapping[str, Any], *, db_uri: str,
                       run_id: str) -> VideoPipelineResult:
    """Sample every video, run Stages 1-2 on Ray, store every frame's scores, then Stage 3 per video."""
    start = time.perf_counter()
    cpus, gpus = _start_ray(cfg)
    vcfg = cfg["video"]

    items = plan_segments(videos, vcfg)
    with crash_ledger(run_id, "videos") as (ledger, faults):
        ds = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
        ds = ds.map_batches(sample_videos, batch_size=1, batch_format="pyarrow", num_cpus=vcfg["num_cpus"],
                            fn_kwargs={"video_cfg": dict(vcfg), "max_side": vcfg["analysis_side"],
                                       "db_uri": db_uri, "run_id": run_id, "ledger": ledger,
                                       "storage": storage_settings(cfg.get("storage"))})
        requests: dict[str, ActorRequest] = {}
        for name, stage_cls in STAGES.items():
            stage = stage_cls.build(cfg)  # validates on the driver; no model loaded
            ds, requests[name] = _add_pool(ds, stage_actor_class(name, cfg, ledger), stage.resources,
                                           cfg["cascade"][name], cfg, cpus, gpus)
        _check_pools_fit(vcfg["num_cpus"], requests, cpus, "the video path's decode task and cascade stages")

        schema = frames_schema()
        open_or_create_table(db_uri, VIDEOS_TABLE, VIDEOS_SCHEMA)
        table = open_or_create_table(db_uri, FRAMES_TABLE, schema)
        with StoredRowsProgress(table, total=None, label="video frames scored"):
            ds.write_datasink(LanceSink(db_uri, schema, run_id, rows_per_write=cfg["decode"]["rows_per_write"],
                                        table_name=FRAMES_TABLE))
    written = table.count_rows(f"run_id = '{run_id}'")
    selected = select_stage3(db_uri, run_id, cfg)
    return VideoPipelineResult(frames_written=written, selected=selected, seconds=time.perf_counter() - start,
                               actors=requests, faults=faults)


def select_stage3(db_uri: str, run_id: str, cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Stage 3 on the stored scores of each video; writes the ``stage3`` table, returns the winners."""
    rows, winners = compute_stage3(db_uri, run_id, cfg)
    if rows:
        table = open_or_create_table(db_uri, STAGE3_TABLE, STAGE3_SCHEMA)
        table.add(pa.Table.from_pylist(rows, schema=STAGE3_SCHEMA))
    return winners


def compute_stage3(db_uri: str, run_id: str, cfg: Mapping[str, Any]
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Stage 3 rows and winners from the ``frames`` and ``videos`` tables of a run, with ``cfg``'s
    weights, thresholds and selection rules. Reads stored scores only: no model is loaded."""
    frames = open_table(db_uri, FRAMES_TABLE)
    columns = ["video_id", "video_uri", "frame_index", "timestamp", "scene_index", "near_cut", "quality_sharpness",
               "quality_exposure", "quality_contrast", "face_count", "face_largest_area", "face_sharpness", "nsfw_score",
               "stage1_score", "stage2_score"]
    rows = frames.search().where(f"run_id = '{run_id}' AND stage2_passed = true").select(columns) \
        .limit(None).to_list()
    # scene numbers across the whole video (a split video's segments each saw only their own cuts)
    cuts: dict[str, set[int]] = {}
    for v in open_table(db_uri, VIDEOS_TABLE).search().where(f"run_id = '{run_id}'") \
            .select(["video_id", "cuts"]).limit(None).to_list():
        cuts.setdefault(v["video_id"], set()).update(v["cuts"] or [])
    by_video: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        r["scene_index"] = scene_of(r["frame_index"], sorted(cuts.get(r["video_id"], ())))
        by_video.setdefault(r["video_id"], []).append(r)
    s3 = cfg["cascade"]["stage3"]
    vcfg = cfg["video"]
    out_rows: list[dict[str, Any]] = []
    winners: list[dict[str, Any]] = []
    for video_rows in by_video.values():
        video_rows.sort(key=lambda r: r["frame_index"])
        scored = stage3_rows(video_rows, weights=s3["weights"], threshold=s3["threshold"],
                             scene_bonus=vcfg["scene_bonus"], min_separation=vcfg["min_separation"],
                             max_frames=vcfg["max_frames"], per_scene=vcfg["scene_detection"])
        by_index = {r["frame_index"]: r for r in video_rows}
        for r in scored:
            out_rows.append({**r, "run_id": run_id})
            if r["selected"]:
                f = by_index[r["frame_index"]]
                winners.append({"video_id": f["video_id"], "video_uri": f["video_uri"],
                                "frame_index": f["frame_index"], "timestamp": f["timestamp"],
                                "scene_index": f["scene_index"], "stage1_score": f["stage1_score"],
                                "stage2_score": f["stage2_score"], "stage3_score": r["stage3_score"]})
    return out_rows, winners


def write_frames(batch: pa.Table, *, frames_dir: str, quality: int, decoders: Sequence[str],
                 storage: Mapping[str, Any] | None = None) -> pa.Table:
    """Decode the winning frames of each video (one video per row) and write them as JPEG files
    (``frames_dir`` may be a bucket prefix)."""
    import cv2

    if storage is not None:
        use_storage(storage)
    out = []
    for row in batch.to_pylist():
        wanted = set(row["frame_indices"])
        stem = safe_stem(row["video_uri"])
        try:
            with local_copy(row["video_uri"]) as path:
                reader = open_video(path, tuple(decoders))
                for frame in reader.frames(step=1, stop=max(wanted) + 1):
                    if frame.index not in wanted:
                        continue
                    name = f"{stem}-{row['video_id'][:12]}-f{frame.index:07d}.jpg"
                    dest = join_uri(frames_dir, name)
                    bgr = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR)
                    if is_remote(frames_dir):
                        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
                        if ok:
                            OutputDir(frames_dir).write_bytes(name, buf.tobytes())
                            out.append({"video_id": row["video_id"], "frame_index": frame.index, "path": dest,
                                        "size": len(buf)})
                    elif cv2.imwrite(dest, bgr, [cv2.IMWRITE_JPEG_QUALITY, quality]):
                        out.append({"video_id": row["video_id"], "frame_index": frame.index, "path": dest,
                                    "size": os.path.getsize(dest)})
        except Exception as exc:  # the frames written so far still count; the rest are reported missing
            print(f"[raycurate] writing frames of {row['video_uri']} failed: {exc}", file=sys.stderr)
    return pa.Table.from_pylist(out, schema=pa.schema([("video_id", pa.string()), ("frame_index", pa.int64()),
                                                        ("path", pa.string()), ("size", pa.int64())]))


def extract_winners(winners: Sequence[Mapping[str, Any]], cfg: Mapping[str, Any], frames_dir: str
                    ) -> tuple[list[FileRef], dict[str, dict[str, Any]]]:
    """Write every winner as an image file; the files and their lineage, for the image path."""
    if not is_remote(frames_dir):
        os.makedirs(frames_dir, exist_ok=True)
    per_video: dict[str, dict[str, Any]] = {}
    for w in winners:
        v = per_video.setdefault(w["video_id"], {"video_id": w["video_id"], "video_uri": w["video_uri"],
                                                 "frame_indices": []})
        v["frame_indices"].append(w["frame_index"])
    if not per_video:
        return [], {}
    ds = ray.data.from_items(list(per_video.values()), override_num_blocks=len(per_video))
    ds = ds.map_batches(write_frames, batch_size=1, batch_format="pyarrow", num_cpus=cfg["video"]["num_cpus"],
                        fn_kwargs={"frames_dir": frames_dir, "quality": cfg["video"]["frame_quality"],
                                   "decoders": list(cfg["video"]["decoders"]),
                                   "storage": storage_settings(cfg.get("storage"))})
    written = {(r["video_id"], r["frame_index"]): r for r in ds.take_all()}  # small: paths and sizes only
    files: list[FileRef] = []
    lineage: dict[str, dict[str, Any]] = {}
    for w in winners:
        r = written.get((w["video_id"], w["frame_index"]))
        if r is None:
            continue
        files.append(FileRef(uri=r["path"], path=r["path"], size=r["size"], media_type="image"))
        lineage[r["path"]] = {"source_video_id": w["video_id"], "source_video_uri": w["video_uri"],
                              "frame_index": w["frame_index"], "frame_timestamp": w["timestamp"],
                              "scene_index": w["scene_index"], "stage1_score": w["stage1_score"],
                              "stage2_score": w["stage2_score"], "stage3_score": w["stage3_score"]}
    return files, lineage
