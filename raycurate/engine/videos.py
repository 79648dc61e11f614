"""The video path on Ray: sample -> Stage 1 -> Stage 2 (actor pools) -> frames table; Stage 3 per video on
the stored scores (:mod:`raycurate.video.stage3`); the winners are written as image files
(:mod:`raycurate.video.frames`) and join the image path."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import pyarrow as pa
import ray

from ..config import typed
from ..faults import KILL_LIMIT, crash_message, maybe_kill
from ..people.targets import PersonTarget
from ..resources import ActorRequest
from ..rows import FRAME_ROW_SCHEMA
from ..sources import FileRef, content_id
from ..stages import STAGES
from ..storage import is_remote
from ..storage import configure as use_storage
from ..storage import resolved as storage_settings
from ..store.schema import FRAMES_TABLE, VIDEOS_SCHEMA, VIDEOS_TABLE, frames_schema
from ..store.table import open_or_create_table
from ..settings import VideoSettings
from ..video.frames import frames_by_video, winner_files, write_frames
from ..video.segments import local_copy, plan_segments
from ..video.source import VideoSampler, empty_summary
from ..video.stage3 import select_stage3
from .actors import stage_actor_class
from .cluster import add_pool, check_pools_fit, sized_config, start_ray
from .ledger import crash_ledger, worker_ledger
from .sink import LanceSink, StoredRowsProgress


def sample_videos(batch: pa.Table, *, video: VideoSettings, db_uri: str, run_id: str, ledger: str | None = None,
                  storage: Mapping[str, Any] | None = None) -> Iterator[pa.Table]:
    """Each video (segment) of the batch -> batches of sampled frames; its summary row goes to ``videos``.

    A video (segment) that killed the decoding worker twice is not read again: its summary has the error."""
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
            led.end(key)
            continue
        maybe_kill("video", [uri])
        try:
            with local_copy(uri) as path:
                sampler = VideoSampler(path, uri, video, start=item["start"], stop=item["stop"],
                                       segment=item["segment"], video_id=item["video_id"])
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


@dataclass
class VideoPipelineResult:
    frames_written: int
    selected: list[dict[str, Any]]            # one dict per winning frame: video, index, lineage
    seconds: float
    actors: dict[str, ActorRequest] = field(default_factory=dict)
    faults: dict[str, Any] = field(default_factory=dict)   # the crash ledger's report


def run_video_pipeline(videos: Sequence[FileRef], cfg: Mapping[str, Any], *, db_uri: str,
                       run_id: str, targets: Sequence[PersonTarget] = ()) -> VideoPipelineResult:
    """Sample every video, run Stages 1-2 on Ray, store every frame's scores, then Stage 3 per video (with
    ``targets``: frames whose main face is one of them, spread across head-pose bins)."""
    start = time.perf_counter()
    cpus, gpus = start_ray(cfg)
    cfg = sized_config(cfg)[0]   # a run has sized its pools already (run.py); a direct call sizes them here
    settings = typed(cfg)
    video = settings.video

    items = plan_segments(videos, video)
    with crash_ledger(run_id, "videos") as (ledger, faults):
        ds = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
        ds = ds.map_batches(sample_videos, batch_size=1, batch_format="pyarrow", num_cpus=video.num_cpus,
                            fn_kwargs={"video": video, "db_uri": db_uri, "run_id": run_id, "ledger": ledger,
                                       "storage": storage_settings(cfg.get("storage"))})
        requests: dict[str, ActorRequest] = {}
        for name, stage_cls in STAGES.items():
            plan = stage_cls.plan(settings)   # an actor receives its stage's plan, not the whole config
            stage = plan.build()  # validates on the driver; no model loaded
            ds, requests[name] = add_pool(ds, stage_actor_class(plan, ledger), stage.resources, plan.section,
                                          settings.ray.gpu_memory_gb, cpus, gpus)
        check_pools_fit(video.num_cpus, requests, cpus, "the video path's decode task and cascade stages")

        schema = frames_schema()
        open_or_create_table(db_uri, VIDEOS_TABLE, VIDEOS_SCHEMA)
        table = open_or_create_table(db_uri, FRAMES_TABLE, schema)
        with StoredRowsProgress(table, total=None, label="video frames scored"):
            ds.write_datasink(LanceSink(db_uri, schema, run_id, rows_per_write=settings.decode.rows_per_write,
                                        table_name=FRAMES_TABLE))
    written = table.count_rows(f"run_id = '{run_id}'")
    selected = select_stage3(db_uri, run_id, settings.cascade.stage3, video, targets)
    return VideoPipelineResult(frames_written=written, selected=selected, seconds=time.perf_counter() - start,
                               actors=requests, faults=faults)


def extract_winners(winners: Sequence[Mapping[str, Any]], cfg: Mapping[str, Any], frames_dir: str
                    ) -> tuple[list[FileRef], dict[str, dict[str, Any]]]:
    """Write every winner as an image file (Ray tasks, one video each); the files and their lineage, for the
    image path."""
    if not is_remote(frames_dir):
        os.makedirs(frames_dir, exist_ok=True)
    items = frames_by_video(winners)
    if not items:
        return [], {}
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    ds = ds.map_batches(write_frames, batch_size=1, batch_format="pyarrow", num_cpus=cfg["video"]["num_cpus"],
                        fn_kwargs={"frames_dir": frames_dir, "quality": cfg["video"]["frame_quality"],
                                   "decoders": list(cfg["video"]["decoders"]),
                                   "storage": storage_settings(cfg.get("storage"))})
    written = {(r["video_id"], r["frame_index"]): r for r in ds.take_all()}  # small: paths and sizes only
    return winner_files(winners, written)
