"""The image path on Ray: list -> read + decode (Ray tasks) -> one actor pool per analyser (``map_batches``
with ``ActorPoolStrategy``), or on a small machine one per group of consecutive CPU analysers
(``ray.fuse_cpu_analyzers``, :func:`raycurate.resources.fuse_plan`) -> streamed write to LanceDB (each write
task appends its rows; nothing is collected on the driver)."""
from __future__ import annotations

import time
from functools import partial
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

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
from ..store.schema import LINEAGE_FIELDS, TABLE_NAME
from ..store.table import open_or_create_table, stored_rows
from .actors import actor_class, fused_actor_class
from .cluster import add_pool, check_pools_fit, require_sized, start_ray
from .ledger import crash_ledger, worker_ledger
from .progress import live_progress, report
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
    return fuse_plan(on_cpu, max(1, int(cpus))), True


def add_analyzer_pools(ds: ray.data.Dataset, settings: Settings, groups: list[list[str]], ledger: str | None,
                       cpus: float, gpus: float, decode: dict[str, Any] | None = None, progress: str | None = None,
                       ) -> tuple[ray.data.Dataset, dict[str, ActorRequest], dict[str, dict[str, Any]]]:
    """``ds`` followed by the analysers' actor pools (``groups``: :func:`pool_plan`; a group of several shares
    one); ``decode`` (:func:`~raycurate.rows.read_and_decode`'s keywords): the first pool, on the CPU,
    decodes its batches itself; ``progress``: the counter their batches are reported to. Each analyser's pool
    request, and what the manifest records of it."""
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
            udf = fused_actor_class(group, sections, settings.models, ledger, last=last, decode=first_decode,
                                    progress=progress)
            res = pool.resources
        # a fused pool's actor is alone in it: one batch queued at a time, so fewer blocks and their pixels
        # wait in the object store (mapped by the actors that wrote or read them)
        ds, req = add_pool(ds, udf, res, pool, settings.ray.gpu_memory_gb, cpus, gpus,
                           tasks_in_flight=None if own else 1)
        for name in group:
            requests[name] = req
            pools[name] = {"num_cpus": req.num_cpus, "num_gpus": req.num_gpus, "min_actors": req.min_actors,
                           "max_actors": req.max_actors, "batch_size": res.batch_size, "pool": group}
    return ds, requests, pools


def run_pipeline(files: Sequence[FileRef], settings: Settings, *, db_uri: str, run_id: str,
                 lineage: Mapping[str, Mapping[str, Any]] | None = None,
                 progress_file: str | None = None) -> PipelineResult:
    """Decode and analyse ``files`` (images) on Ray and append the rows to LanceDB, with ``settings`` as they
    are: sized once where the run started (:func:`~raycurate.engine.sized_settings`; an ``auto`` left is
    refused).

    ``lineage`` maps the uri of a video frame file to its lineage columns. Live progress (decoded, each
    analyser, stored) on the console and, with ``progress_file``, as JSON there.
    """
    require_sized(settings)
    start = time.perf_counter()
    cpus, gpus = start_ray(settings.ray)
    dec = settings.decode

    lineage = lineage or {}
    empty = {f.name: None for f in LINEAGE_FIELDS}
    items = [{"uri": f.uri, "size": f.size, "id": f.content_id, **empty, **lineage.get(f.uri, {})} for f in files]
    groups, fused = pool_plan(settings, cpus)
    # fused, the first pool decodes its batches itself (one process less, and the pixels never pass through
    # Ray's object store on their way to it); else decode tasks feed the pools
    in_pool = fused and bool(groups) and getattr(settings.analyzers, groups[0][0]).device == "cpu"
    # One block per decode batch: small blocks keep every pool fed and let the busiest one scale out.
    block = dec.batch_size
    if in_pool:   # a block is one batch of the first pool (its smallest member's): less in flight at a time
        block = min([block] + [getattr(settings.analyzers, name).batch_size for name in groups[0]])
    n_blocks = max(1, (len(items) + block - 1) // block)
    with crash_ledger(run_id, "images") as (ledger, faults), \
            live_progress(run_id, "images", "images", image_steps(groups, len(items)), progress_file) as counter:
        ds = ray.data.from_items(items, override_num_blocks=n_blocks)
        decode = {"max_side": dec.max_side, "max_pixels": dec.max_pixels,
                  "storage": storage_settings(settings.storage)}
        if not in_pool:
            # A decode task whose worker dies is run again (Ray Data's default max_retries=-1; the crash ledger
            # bounds it).
            ds = ds.map_batches(decode_batch, batch_size=dec.batch_size, batch_format="pyarrow",
                                fn_kwargs={**decode, "ledger": partial(worker_ledger, ledger), "progress": counter},
                                num_cpus=dec.num_cpus)
        ds, requests, pools = add_analyzer_pools(ds, settings, groups, ledger, cpus, gpus,
                                                 decode=decode if in_pool else None, progress=counter)
        distinct = {"+".join(p["pool"]): requests[p["pool"][0]] for p in pools.values()}
        # decode and write tasks ask decode.num_cpus each (Ray Data's 1 CPU for a write may not fit beside
        # the pools); fused, the first pool decodes and the driver writes
        tasks = dec.num_cpus * ((0 if in_pool else 1) + (0 if fused else 1))
        check_pools_fit(tasks, distinct, cpus, "the image path's decode and write tasks and analysers")

        schema = images_schema()
        table = open_or_create_table(db_uri, TABLE_NAME, schema)
        sink = LanceSink(db_uri, schema, run_id, rows_per_write=dec.rows_per_write, progress=counter)
        if fused:   # a small machine: the driver appends the rows as they stream in, no write worker
            for batch in ds.iter_batches(batch_size=dec.rows_per_write, batch_format="pyarrow"):
                sink.write([batch], None)
        else:   # each write task appends its rows (a write task asks as few CPUs as a decode task)
            ds.write_datasink(sink, ray_remote_args={"num_cpus": dec.num_cpus})
    written = stored_rows(table, run_id)
    return PipelineResult(rows_written=written, seconds=time.perf_counter() - start, actors=requests, faults=faults,
                          pools=pools)
