"""One Ray Data graph per run: photos and videos stream through it together, and nothing waits for a path to end.

::

    photos  -> [decode tasks] ------------------------------------------------\\
                                                                             union -> analyser pools -> LanceDB
    videos  -> decode + sample -> Stage 1 -> Stage 2 -> Stage 3 (winners) ---/

- A video's winners join the analysers' pools as rows: their pixels (decoded in memory from the JPEG bytes their
  file was written from, which the cascade carried; the file is never read back), their lineage, and the columns
  of the analysers the cascade ran with the image path's settings (:func:`raycurate.stages.carried_analyzers`),
  which those pools keep instead of computing again. Their id is the hash of those bytes, as the file's would be.
- The analysers' pools start with the graph: a photo is analysed while the videos are still being decoded.
- Each file is written once: a winner's frame by Stage 3, every row by the sink at the end of the graph.
- Memory is bounded by Ray Data's backpressure (each operator's queue; the decode tasks read at the pace the
  pools take); no stage collects rows on the driver.
- The two parts' minimum pools must fit the cluster together: on a machine too small for both, every part
  asks the same share of its CPUs (:func:`~raycurate.engine.cluster.cpu_scale`), so they share the cores.
"""
from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..people.targets import PersonTarget
from ..rows import file_rows, row_schema
from ..settings import Settings
from ..sources import FileRef
from ..stages import carried_fields
from ..resources import ActorRequest
from .bookkeeping import bookkeeping
from .cluster import check_pools_fit, cpu_needed, cpu_scale, require_sized, start_ray
from .images import ImagePlan, add_analyzer_pools, decode_keywords, file_source, image_steps, write_rows
from .ledger import crash_ledger
from .progress import Part, live_progress
from .videos import video_branch, video_items, video_steps


@dataclass
class GraphResult:
    rows_written: int                        # images rows of this run (photos and winners)
    seconds: float
    video_frames: int                        # of them, video frames: winners and the files a killed run left
    winners_read_again: int                  # winners read by a seek (their pixels were not kept)
    actors: dict[str, ActorRequest] = field(default_factory=dict)         # image analysers' pools
    video_actors: dict[str, ActorRequest] = field(default_factory=dict)   # cascade stages' pools
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)        # image pools, for the manifest
    faults: dict[str, Any] = field(default_factory=dict)   # the crash ledgers' reports: images, video
    cpu_scale: float = 1.0


def run_graph(photos: Sequence[Mapping[str, Any]], videos: Sequence[FileRef], settings: Settings, *, db_uri: str,
              run_id: str, frames_dir: str | None = None, targets: Sequence[PersonTarget] = (),
              progress_files: Mapping[str, str | None] | None = None) -> GraphResult:
    """Analyse ``photos`` (items: ``uri``, ``size``, ``id``, lineage columns for a winner's file left by a killed
    run) and ``videos`` (the cascade, their winners written to ``frames_dir``) in one graph, every row appended
    to the ``images`` table. ``targets``: ``--person`` references (Stage 3 picks their frames);
    ``progress_files``: where the UI reads each part's live progress (``videos``, ``images``). ``settings`` are
    taken as they are: sized once where the run started (an ``auto`` left is refused)."""
    require_sized(settings)
    start = time.perf_counter()
    if not photos and not videos:
        return GraphResult(rows_written=0, seconds=0.0, video_frames=0, winners_read_again=0)
    cpus, gpus = start_ray(settings.ray)
    files = progress_files or {}
    plan = ImagePlan.of(settings, cpus)
    rows = row_schema(carried_fields(settings, bool(targets)) if videos else [])
    photo_rows = file_rows(photos, rows)
    items = video_items(videos, settings.video) if videos else []
    if videos and frames_dir is None:
        raise ValueError("run_graph: videos need a frames_dir for their winners' files")
    parts = []
    if items:
        parts.append(Part("videos", video_steps(len(items)), files.get("videos")))
    total = None if items else len(photos)   # a video's winners are known as it ends
    parts.append(Part("images", image_steps(plan.groups, total), files.get("images")))
    faults: dict[str, Any] = {}
    with ExitStack() as stack:
        book = stack.enter_context(bookkeeping(run_id, "run"))
        image_ledger, faults["images"] = stack.enter_context(crash_ledger(book, "images"))
        video_ledger = None
        if items:
            video_ledger, faults["video"] = stack.enter_context(crash_ledger(book, "videos"))
        counter, counts = stack.enter_context(live_progress(book, parts))

        def build(scale: float) -> tuple[Any, dict[str, ActorRequest], dict[str, dict[str, Any]],
                                         dict[str, ActorRequest], list[float]]:
            needed: list[float] = []
            parts_ds = []
            video_requests: dict[str, ActorRequest] = {}
            if photo_rows.num_rows:
                parts_ds.append(file_source(photo_rows, plan, settings, image_ledger, counter, scale))
            if items:
                ds_v, video_requests, task = video_branch(
                    items, settings, db_uri=db_uri, run_id=run_id, frames_dir=frames_dir, rows=rows,
                    targets=targets, ledger=video_ledger, progress=counter, cpus=cpus, gpus=gpus, scale=scale)
                check_pools_fit(task, video_requests, cpus, "the video path's decode task and cascade stages")
                needed.append(cpu_needed(task, video_requests))
                parts_ds.append(ds_v)
            ds = parts_ds[0] if len(parts_ds) == 1 else parts_ds[0].union(parts_ds[1])
            ds, requests, pools = add_analyzer_pools(
                ds, settings, plan.groups, image_ledger, cpus, gpus, progress=counter, scale=scale,
                decode=decode_keywords(settings) if plan.in_pool else None)
            distinct = {"+".join(p["pool"]): requests[p["pool"][0]] for p in pools.values()}
            task = plan.task_cpus(settings) * scale
            check_pools_fit(task, distinct, cpus, "the image path's decode and write tasks and analysers")
            needed.append(cpu_needed(task, distinct))
            return ds, requests, pools, video_requests, needed

        ds, requests, pools, video_requests, needed = build(1.0)
        scale = cpu_scale(needed, cpus)
        if scale < 1.0:   # the lazy graph is built again, every part asking its share: nothing ran yet
            ds, requests, pools, video_requests, _ = build(scale)
        written, frames = write_rows(ds, settings, plan, db_uri=db_uri, run_id=run_id, progress=counter,
                                     scale=scale)
    return GraphResult(rows_written=written, seconds=time.perf_counter() - start, video_frames=frames,
                       winners_read_again=int(counts.get("winners_read_again", 0)),
                       actors=requests, video_actors=video_requests, pools=pools, faults=faults, cpu_scale=scale)


def photo_items(files: Sequence[FileRef], lineage: Mapping[str, Mapping[str, Any]] | None = None
                ) -> list[dict[str, Any]]:
    """:func:`run_graph`'s photo items for ``files``; ``lineage`` maps a winner's file to its lineage columns."""
    lineage = lineage or {}
    return [{"uri": f.uri, "size": f.size, "id": f.content_id, **lineage.get(f.uri, {})} for f in files]
