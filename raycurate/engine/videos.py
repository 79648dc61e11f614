"""The video part of the run's graph (:mod:`raycurate.engine.graph`), one stream: decode + sample (one task per
video or segment, one read of the file) -> Stage 1 -> Stage 2 (actor pools) -> Stage 3 (one actor: each video
is finished as soon as its last frame arrives, :mod:`raycurate.video.finisher`: frames and stage3 tables, the
winners written as image files once). Nothing waits for every video; the winners flow on as image rows (their
pixels, lineage and the scores the cascade gave them) into the image analysers' pools."""
from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import pyarrow as pa
import ray
from ray.data import ActorPoolStrategy

from ..faults import KILL_LIMIT, crash_message, fault_point
from ..people.targets import PersonTarget
from ..progress import Step
from ..heap import trim
from ..resources import ActorRequest, fuse_cpu_pools, small_machine_stage_pool
from ..rows import FRAME_ROW_SCHEMA, PIXEL_FIELDS, row_schema, table_of
from ..sources import FileRef, content_id
from ..stages import STAGES, carried_fields
from ..storage import is_remote
from ..storage import configure as use_storage
from ..storage import resolved as storage_settings
from ..schemas import frames_schema
from ..store.schema import FRAMES_TABLE, STAGE3_SCHEMA, STAGE3_TABLE, VIDEOS_SCHEMA, VIDEOS_TABLE
from ..store.table import open_or_create_table, stored_rows
from ..settings import Settings, VideoSettings
from ..video.segments import local_copy, plan_segments
from ..video.source import VideoSampler, empty_summary, end_row
from .actors import finisher_actor_class, stage_actor_class
from .bookkeeping import bookkeeping
from .cluster import add_pool, check_pools_fit, require_sized, start_ray
from .ledger import crash_ledger, worker_ledger
from .progress import Part, live_progress, report


def sample_videos(batch: pa.Table, *, video: VideoSettings, db_uri: str, run_id: str, ledger: str | None = None,
                  storage: Mapping[str, Any] | None = None, progress: str | None = None) -> Iterator[pa.Table]:
    """Each video (segment) of the batch -> batches of sampled frames; its summary row goes to ``videos``.

    A video (segment) that killed the decoding worker twice is not read again: its summary has the error.
    ``progress``: the counter the sampled frames and the segments read are reported to."""
    if storage is not None:
        use_storage(storage)
    led = worker_ledger(ledger)
    for item in batch.to_pylist():
        uri = item["uri"]
        summary = empty_summary(uri, item["segment"], item["start"], item["stop"])
        key = f"video:item:{uri}#{item['segment']}"
        if led is not None and led.begin(key) >= KILL_LIMIT:
            led.crashed("video", f"{uri}#{item['segment']}")
            summary["error"] = crash_message("decoding")
            _store_summary(summary, run_id, uri, db_uri)
            # what its killed tries sent is unknown: the video is finished with the rows that arrived
            yield _end_table(summary, uri, 0, item["segments"], item["video_id"])
            led.end(key)
            continue
        fault_point("video", [uri])
        sampler = None
        try:
            with local_copy(uri) as path:
                sampler = VideoSampler(path, uri, video, start=item["start"], stop=item["stop"],
                                       segment=item["segment"], video_id=item["video_id"])
                summary = sampler.summary
                for rows in sampler:
                    report(progress, "frames", len(rows))
                    yield table_of(rows, FRAME_ROW_SCHEMA)
        except OSError as exc:
            summary["error"] = f"cannot read video: {exc}"
        except Exception as exc:  # a bad file is a row with an error, never a failed run
            summary["error"] = f"video failed while sampling: {type(exc).__name__}: {exc}"[:500]
        _store_summary(summary, run_id, uri, db_uri)
        # the segment is closed (even one that failed): the Stage 3 step knows how many rows to wait for
        yield _end_table(summary, uri, sampler.rows_emitted if sampler is not None else 0, item["segments"],
                         item["video_id"])
        report(progress, "segments", 1)
        if led is not None:
            led.end(key)
        trim()   # the decoder's frame buffers: give them back before the next video (the worker outlives it)


def _end_table(summary: Mapping[str, Any], uri: str, rows_sent: int, segments: int, video_id: str | None
               ) -> pa.Table:
    row = end_row({**summary, "video_id": summary["video_id"] or video_id}, uri, rows_sent, segments)
    return pa.Table.from_pylist([row], schema=FRAME_ROW_SCHEMA)


def _store_summary(summary: Mapping[str, Any], run_id: str, uri: str, db_uri: str) -> None:
    row = {**summary, "run_id": run_id}
    row["video_id"] = row["video_id"] or content_id(uri.encode())
    open_or_create_table(db_uri, VIDEOS_TABLE, VIDEOS_SCHEMA).add(pa.Table.from_pylist([row], schema=VIDEOS_SCHEMA))


def video_steps(segments: int) -> list[Step]:
    """The video path's counted steps: segments read (of ``segments``), frames sampled, each cascade stage's
    frames scored and passed (reported by its actors as ``stage1_scored`` ...), Stage 3's winners."""
    steps = [Step("segments", "segments read", segments), Step("frames", "frames sampled")]
    for name in STAGES:
        steps += [Step(f"{name}_scored", f"{name} scored"), Step(f"{name}_passed", f"{name} passed")]
    return steps + [Step("winners", "winners")]


def video_items(videos: Sequence[FileRef], video: VideoSettings) -> list[dict[str, Any]]:
    """One item per video or segment of a long one (:func:`~raycurate.video.segments.plan_segments`), each
    knowing how many segments its video has."""
    items = plan_segments(videos, video)
    per_video = Counter(item["uri"] for item in items)
    for item in items:
        item["segments"] = per_video[item["uri"]]
    return items


def video_branch(items: Sequence[Mapping[str, Any]], settings: Settings, *, db_uri: str, run_id: str,
                 frames_dir: str, rows: pa.Schema, targets: Sequence[PersonTarget], ledger: str | None,
                 progress: str | None, cpus: float, gpus: float, scale: float = 1.0
                 ) -> tuple[ray.data.Dataset, dict[str, ActorRequest], float]:
    """The video part of the run's graph: decode + sample (one task per video or segment) -> Stage 1 -> Stage 2
    (actor pools) -> Stage 3 (one actor: each video finished as soon as its last frame arrives, its winners
    handed on as image rows of schema ``rows``). Its stage pools' requests, and the CPUs its decode task asks
    (``scale``: the share of their CPUs its tasks and actors ask: :func:`~raycurate.engine.cluster.cpu_scale`)."""
    video = settings.video
    if not is_remote(frames_dir):
        os.makedirs(frames_dir, exist_ok=True)
    ds = ray.data.from_items(list(items), override_num_blocks=max(1, len(items)))
    storage = storage_settings(settings.storage)   # the driver's bucket settings, for the workers
    ds = ds.map_batches(sample_videos, batch_size=1, batch_format="pyarrow", num_cpus=video.num_cpus * scale,
                        fn_kwargs={"video": video, "db_uri": db_uri, "run_id": run_id, "ledger": ledger,
                                   "storage": storage, "progress": progress})
    requests: dict[str, ActorRequest] = {}
    small = fuse_cpu_pools(settings.ray.fuse_cpu_analyzers, cpus)
    for name, stage_cls in STAGES.items():
        plan = stage_cls.plan(settings, people=bool(targets))   # an actor receives its stage's plan only
        stage = plan.build()  # validates on the driver; no model loaded
        pool = small_machine_stage_pool(plan.section, small)
        ds, requests[name] = add_pool(ds, stage_actor_class(plan, ledger, progress), stage.resources, pool,
                                      settings.ray.gpu_memory_gb, cpus, gpus, scale=scale)
    finisher = finisher_actor_class(storage, progress, db_uri=db_uri, run_id=run_id,
                                    stage3=settings.cascade.stage3, video=video, frames_dir=frames_dir,
                                    rows=rows, decode=settings.decode, targets=tuple(targets))
    # one Stage 3 actor: every frame of a video meets there (its work per frame is a few arithmetic steps)
    ds = ds.map_batches(finisher, batch_size=None, batch_format="pyarrow", num_cpus=0,
                        compute=ActorPoolStrategy(size=1))
    open_or_create_table(db_uri, VIDEOS_TABLE, VIDEOS_SCHEMA)
    open_or_create_table(db_uri, STAGE3_TABLE, STAGE3_SCHEMA)
    open_or_create_table(db_uri, FRAMES_TABLE, frames_schema())
    return ds, requests, video.num_cpus * scale


@dataclass
class VideoPipelineResult:
    frames_written: int
    winners: list[dict[str, Any]]             # one image row per winning frame (pixels dropped): uri, lineage
    seconds: float
    actors: dict[str, ActorRequest] = field(default_factory=dict)
    faults: dict[str, Any] = field(default_factory=dict)   # the crash ledger's report


def run_video_pipeline(videos: Sequence[FileRef], settings: Settings, *, db_uri: str, run_id: str,
                       frames_dir: str, targets: Sequence[PersonTarget] = (),
                       progress_file: str | None = None) -> VideoPipelineResult:
    """The video part alone (:func:`video_branch`, for benchmarks and tests; a run goes on into the image
    analysis in the same graph: :func:`~raycurate.engine.graph.run_graph`): every video sampled, Stages 1-2,
    each video finished and its winners written to ``frames_dir``; the winners' rows, without pixels.
    ``settings`` are taken as they are: sized once where the run started (an ``auto`` left is refused)."""
    require_sized(settings)
    start = time.perf_counter()
    cpus, gpus = start_ray(settings.ray)
    items = video_items(videos, settings.video)
    rows = row_schema(carried_fields(settings, bool(targets)))
    with bookkeeping(run_id, "videos") as book, crash_ledger(book, "videos") as (ledger, faults), \
            live_progress(book, [Part("videos", video_steps(len(items)), progress_file)]) as (counter, _):
        ds, requests, task = video_branch(items, settings, db_uri=db_uri, run_id=run_id, frames_dir=frames_dir,
                                          rows=rows, targets=targets, ledger=ledger, progress=counter, cpus=cpus,
                                          gpus=gpus)
        check_pools_fit(task, requests, cpus, "the video path's decode task and cascade stages")
        winners = ds.drop_columns([f.name for f in PIXEL_FIELDS]).take_all()
    written = stored_rows(open_or_create_table(db_uri, FRAMES_TABLE, frames_schema()), run_id)
    return VideoPipelineResult(frames_written=written, winners=winners, seconds=time.perf_counter() - start,
                               actors=requests, faults=faults)
