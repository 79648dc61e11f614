"""The image part of the run's graph (:mod:`raycurate.engine.graph`): files -> read + decode (Ray tasks) ->
one actor pool per analyser (``map_batches`` with ``ActorPoolStrategy``), or on a small machine one per group
of consecutive CPU analysers (``ray.fuse_cpu_analyzers``, :func:`raycurate.resources.fuse_plan`; the first
decodes its files itself) -> streamed write to LanceDB (each write task appends its rows; nothing is collected
on the driver). Videos' winners join the pools as rows already decoded."""
from __future__ import annotations

from functools import partial
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import pyarrow as pa
import ray

from ..analyzers import active_analyzers, build_analyzer
from ..heap import trim
from ..analyzers.base import Resources
from ..resources import ActorRequest, fuse_cpu_pools, fuse_plan, fused_pool
from ..rows import read_and_decode
from ..progress import Step
from ..settings import Settings
from ..sources import FileRef
from ..storage import resolved as storage_settings
from ..schemas import images_schema
from ..store.schema import TABLE_NAME
from ..store.table import open_or_create_table, stored_rows
from .actors import actor_class, fused_actor_class
from .cluster import add_pool
from .ledger import worker_ledger
from .progress import report
from .sink import LanceSink


@dataclass
class PipelineResult:
    rows_written: int
    seconds: float
    actors: dict[str, ActorRequest] = field(default_factory=dict)   # by analyser (a fused pool's: shared)
    faults: dict[str, Any] = field(default_factory=dict)   # the crash ledger's report
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)   # by analyser: its pool, for the manifest


def decode_batch(batch: Any, progress: str | None = None, **kwargs: Any) -> Any:
    """:func:`~raycurate.rows.read_and_decode` in a Ray task, the heap it freed given back to the system;
    its rows reported as decoded to the ``progress`` counter."""
    out = read_and_decode(batch, **kwargs)
    report(progress, "decoded", out.num_rows)
    trim()
    return out


def image_steps(groups: list[list[str]], total: int) -> list[Step]:
    """The image path's counted steps, each of ``total`` images: decoded, each analyser in pipeline order
    (reported under its name), stored."""
    return ([Step("decoded", "decoded", total)] + [Step(name, name, total) for group in groups for name in group]
            + [Step("stored", "stored", total)])


def pool_plan(settings: Settings, cpus: float) -> tuple[list[list[str]], bool]:
    """The analysers' pools in pipeline order, and whether they are fused (``ray.fuse_cpu_analyzers``)."""
    names = active_analyzers(settings.analyzers, settings.models)[0]
    if not fuse_cpu_pools(settings.ray.fuse_cpu_analyzers, cpus):
        return [[name] for name in names], False
    on_cpu = [(n, getattr(settings.analyzers, n).num_cpus, getattr(settings.analyzers, n).device == "cpu")
              for n in names]
    # split: as many pools as CPUs, one actor each; copies: one pool per run of CPU analysers (add_analyzer_pools
    # gives it an actor per CPU)
    pools = max(1, int(cpus)) if settings.ray.fused_layout == "split" else 1
    return fuse_plan(on_cpu, pools), True


def add_analyzer_pools(ds: ray.data.Dataset, settings: Settings, groups: list[list[str]], ledger: str | None,
                       cpus: float, gpus: float, decode: dict[str, Any] | None = None, progress: str | None = None,
                       scale: float = 1.0,
                       ) -> tuple[ray.data.Dataset, dict[str, ActorRequest], dict[str, dict[str, Any]]]:
    """``ds`` followed by the analysers' actor pools (``groups``: :func:`pool_plan`; a group of several shares
    one); ``decode`` (:func:`~raycurate.rows.read_and_decode`'s keywords): the first pool, on the CPU,
    decodes its batches itself; ``progress``: the counter their batches are reported to; ``scale``: the share
    of their CPUs the actors ask (:func:`~raycurate.engine.cluster.cpu_scale`). Each analyser's pool request,
    and what the manifest records of it."""
    sections = {name: getattr(settings.analyzers, name) for group in groups for name in group}
    # built on the driver to validate them and read their resources; no model is loaded
    resources = {name: build_analyzer(name, sections[name], settings.models).resources for name in sections}
    dec = settings.decode
    requests: dict[str, ActorRequest] = {}
    pools: dict[str, dict[str, Any]] = {}
    for group in groups:
        last = group is groups[-1]   # its actors drop the pixels: only the sink follows
        first_decode = decode if group is groups[0] else None
        own = len(group) == 1 and first_decode is None   # a pool of its own (on a GPU, or not fused)
        if own:
            name = group[0]
            udf = actor_class(name, sections[name], settings.models, ledger, last=last, progress=progress)
            res, pool = resources[name], sections[name]
        else:
            extra = [Resources(batch_size=dec.batch_size, num_cpus=dec.num_cpus)] if first_decode else []
            pool = fused_pool(group, extra + [resources[n] for n in group],
                              [sections[n].min_actors for n in group], [sections[n].max_actors for n in group])
            if settings.ray.fused_layout == "copies":   # an actor per CPU, shared by the runs of CPU analysers
                runs = sum(1 for g in groups if len(g) > 1 or getattr(settings.analyzers, g[0]).device == "cpu")
                actors = max(1, int(cpus) // max(1, runs))
                # each actor a CPU's worth at most: together they fill the CPUs the pools are given
                share = min(pool.resources.num_cpus, max(1, int(cpus)) / (actors * max(1, runs)))
                actors = max(actors, pool.min_actors)   # a member's min_actors, where larger, still holds
                pool = replace(pool, min_actors=actors, max_actors=actors,
                               resources=replace(pool.resources, num_cpus=share))
            udf = fused_actor_class(group, sections, settings.models, ledger, last=last, decode=first_decode,
                                    progress=progress)
            res = pool.resources
        # a fused pool's actor is alone in it: one batch queued at a time, so fewer blocks and their pixels
        # wait in the object store (mapped by the actors that wrote or read them). Not two, even for the first
        # pool, whose batches are only file references: it made 1,000 photos 10% faster (100 s -> 90 s), but a
        # batch's rows then reached the driver only once the actor's next batch was done too (a run stopped
        # half-way lost them; tests/test_interrupt.py)
        ds, req = add_pool(ds, udf, res, pool, settings.ray.gpu_memory_gb, cpus, gpus,
                           tasks_in_flight=None if own else 1, scale=scale)
        for name in group:
            requests[name] = req
            pools[name] = {"num_cpus": req.num_cpus, "num_gpus": req.num_gpus, "min_actors": req.min_actors,
                           "max_actors": req.max_actors, "batch_size": res.batch_size, "pool": group}
    return ds, requests, pools


@dataclass(frozen=True)
class ImagePlan:
    """How the image analysis is laid out on this cluster: the analysers' pools in order (:func:`pool_plan`),
    whether they are fused, whether the first pool decodes the files itself, and the rows per input block."""
    groups: list[list[str]]
    fused: bool
    in_pool: bool
    block: int

    @classmethod
    def of(cls, settings: Settings, cpus: float) -> "ImagePlan":
        groups, fused = pool_plan(settings, cpus)
        # fused, the first pool decodes its batches itself (one process less, and the pixels never pass through
        # Ray's object store on their way to it); else decode tasks feed the pools
        in_pool = fused and bool(groups) and getattr(settings.analyzers, groups[0][0]).device == "cpu"
        # One block per decode batch: small blocks keep every pool fed and let the busiest one scale out.
        block = settings.decode.batch_size
        if in_pool:   # a block is one batch of the first pool (its smallest member's): less in flight at a time
            block = min([block] + [getattr(settings.analyzers, name).batch_size for name in groups[0]])
        return cls(groups, fused, in_pool, block)

    def task_cpus(self, settings: Settings) -> float:
        """What its tasks ask: decode and write tasks ask ``decode.num_cpus`` each (Ray Data's 1 CPU for a write
        may not fit beside the pools); fused, the first pool decodes and the driver writes."""
        return settings.decode.num_cpus * ((0 if self.in_pool else 1) + (0 if self.fused else 1))


def decode_keywords(settings: Settings) -> dict[str, Any]:
    """:func:`~raycurate.rows.read_and_decode`'s keywords: the size limits and the driver's bucket settings."""
    return {"max_side": settings.decode.max_side, "max_pixels": settings.decode.max_pixels,
            "storage": storage_settings(settings.storage)}


def file_source(rows: pa.Table, plan: ImagePlan, settings: Settings, ledger: str | None, progress: str | None,
                scale: float = 1.0) -> ray.data.Dataset:
    """The files to analyse (:func:`~raycurate.rows.file_rows`) as a dataset, one block per ``plan.block`` rows,
    decoded by Ray tasks unless the first pool decodes them itself."""
    blocks = [rows.slice(i, plan.block) for i in range(0, rows.num_rows, plan.block)]
    ds = ray.data.from_arrow(blocks)
    if not plan.in_pool:
        # A decode task whose worker dies is run again (Ray Data's default max_retries=-1; the crash ledger
        # bounds it).
        ds = ds.map_batches(decode_batch, batch_size=settings.decode.batch_size, batch_format="pyarrow",
                            fn_kwargs={**decode_keywords(settings), "ledger": partial(worker_ledger, ledger),
                                       "progress": progress},
                            num_cpus=settings.decode.num_cpus * scale)
    return ds


def write_rows(ds: ray.data.Dataset, settings: Settings, plan: ImagePlan, *, db_uri: str, run_id: str,
               progress: str | None, scale: float = 1.0) -> tuple[int, int]:
    """The analysed rows appended to the ``images`` table as they stream in. The rows of ``run_id`` stored, and
    of them the video frames' (rows with lineage), both counted in the table: a batch retried after a worker
    died is never counted twice."""
    dec = settings.decode
    schema = images_schema()
    table = open_or_create_table(db_uri, TABLE_NAME, schema)
    sink = LanceSink(db_uri, schema, run_id, rows_per_write=dec.rows_per_write, progress=progress)
    if plan.fused:   # a small machine: the driver appends the rows as they stream in, no write worker
        for batch in ds.iter_batches(batch_size=dec.rows_per_write, batch_format="pyarrow"):
            sink.write([batch], None)
    else:   # each write task appends its rows (a write task asks as few CPUs as a decode task)
        ds.write_datasink(sink, ray_remote_args={"num_cpus": dec.num_cpus * scale})
    return stored_rows(table, run_id), stored_rows(table, run_id, "source_video_id IS NOT NULL")


def run_pipeline(files: Sequence[FileRef], settings: Settings, *, db_uri: str, run_id: str,
                 lineage: Mapping[str, Mapping[str, Any]] | None = None,
                 progress_file: str | None = None) -> PipelineResult:
    """Decode and analyse ``files`` (images) on Ray and append the rows to LanceDB: the run's graph
    (:func:`~raycurate.engine.graph.run_graph`) without videos. ``lineage`` maps the uri of a video frame file
    to its lineage columns."""
    from .graph import photo_items, run_graph

    res = run_graph(photo_items(files, lineage), [], settings, db_uri=db_uri, run_id=run_id,
                    progress_files={"images": progress_file} if progress_file else None)
    return PipelineResult(rows_written=res.rows_written, seconds=res.seconds, actors=res.actors,
                          faults=res.faults.get("images", {}), pools=res.pools)
