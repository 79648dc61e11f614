"""The image path on Ray: list -> read + decode (Ray tasks) -> one actor pool per analyser (``map_batches``
with ``ActorPoolStrategy``) -> streamed write to LanceDB (each write task appends its rows; nothing is
collected on the driver)."""
from __future__ import annotations

import time
from functools import partial
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import ray

from ..analyzers import active_analyzers, build_analyzer
from ..config import typed
from ..resources import ActorRequest
from ..rows import read_and_decode
from ..sources import FileRef
from ..storage import resolved as storage_settings
from ..store.schema import LINEAGE_FIELDS, TABLE_NAME, images_schema
from ..store.table import open_or_create_table
from .actors import actor_class
from .cluster import add_pool, check_pools_fit, sized_config, start_ray
from .ledger import crash_ledger, worker_ledger
from .sink import LanceSink, StoredRowsProgress


@dataclass
class PipelineResult:
    rows_written: int
    seconds: float
    actors: dict[str, ActorRequest] = field(default_factory=dict)
    faults: dict[str, Any] = field(default_factory=dict)   # the crash ledger's report


def run_pipeline(files: Sequence[FileRef], cfg: Mapping[str, Any], *, db_uri: str, run_id: str,
                 lineage: Mapping[str, Mapping[str, Any]] | None = None) -> PipelineResult:
    """Decode and analyse ``files`` (images) on Ray and append the rows to LanceDB.

    ``lineage`` maps the uri of a video frame file to its lineage columns.
    """
    start = time.perf_counter()
    cpus, gpus = start_ray(cfg)
    cfg = sized_config(cfg)[0]   # a run has sized its pools already (run.py); a direct call sizes them here
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
                                       "ledger": partial(worker_ledger, ledger),
                                       "storage": storage_settings(cfg.get("storage"))},
                            num_cpus=dec["num_cpus"])

        requests: dict[str, ActorRequest] = {}
        settings = typed(cfg)
        for name in active_analyzers(settings.analyzers, settings.models)[0]:
            section = getattr(settings.analyzers, name)   # an actor receives its own typed section
            analyzer = build_analyzer(name, section, settings.models)  # validates on the driver; no model loaded
            ds, requests[name] = add_pool(ds, actor_class(name, section, settings.models, ledger),
                                          analyzer.resources, section, settings.ray.gpu_memory_gb, cpus, gpus)
        check_pools_fit(dec["num_cpus"], requests, cpus, "the image path's decode task and analysers")

        schema = images_schema()
        table = open_or_create_table(db_uri, TABLE_NAME, schema)
        sink = LanceSink(db_uri, schema, run_id, rows_per_write=dec["rows_per_write"])
        with StoredRowsProgress(table, total=len(items)):
            ds.write_datasink(sink)
    written = table.count_rows(f"run_id = '{run_id}'")
    return PipelineResult(rows_written=written, seconds=time.perf_counter() - start, actors=requests, faults=faults)
