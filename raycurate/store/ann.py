"""LanceDB's vector indexes for dedup: building them, asking them for near pairs, and keeping them up.

Above ``index_min_rows`` rows a vector column without an ANN index gets one (cosine) before the queries. The
default is IVF_FLAT: it keeps the full vectors, so every distance is exact and only ``nprobes`` (partitions
searched) bounds recall; a near duplicate almost always falls in its original's partition. IVF_PQ and
IVF_HNSW_SQ compress the vectors and add a ``refine_factor`` (exact re-ranking of k x refine candidates).
Measured on 100k x 512-d (docs/guides/dedup-filters.md): IVF_FLAT builds in ~9 s and answers ~3,200
queries/s; IVF_PQ (64 sub-vectors) ~82 s and ~670 queries/s with refine 4. Rows added after the index are
searched exactly by LanceDB until ``optimize`` folds them in (:func:`maintain`).
"""
from __future__ import annotations

import math
import os
import time
from typing import Any, Iterable, Sequence

import numpy as np
import pyarrow as pa

from .indexes import has_vector_index, indexed_columns
from .table import content_ids

SCALAR_INDEXES = {"id": "BTREE", "run_id": "BITMAP", "media_type": "BITMAP", "face_count": "BTREE",
                  "nsfw_score": "BTREE", "quality_sharpness": "BTREE", "duplicate_of": "BTREE"}


INDEX_TYPES = ("IVF_FLAT", "IVF_PQ", "IVF_HNSW_SQ")


def ensure_vector_index(table: Any, column: str, *, min_rows: int, index_type: str = "IVF_FLAT") -> str:
    """Build an ANN index (cosine) on ``column`` when the table has at least ``min_rows`` rows and none yet."""
    from lancedb.index import IvfFlat, IvfHnswSq, IvfPq

    if has_vector_index(table, column):
        return "present"
    n = table.count_rows(f"{column} IS NOT NULL")
    if n < min_rows:
        return "none (exact search)"
    dim = table.schema.field(column).type.list_size
    partitions = max(1, int(math.sqrt(n)))
    if index_type == "IVF_PQ":
        sub = next(s for s in (dim // 8, dim // 4, dim // 2, dim, 1) if s and dim % s == 0)
        config, what = IvfPq(distance_type="cosine", num_partitions=partitions, num_sub_vectors=sub), \
            f"{sub} sub-vectors"
    elif index_type == "IVF_HNSW_SQ":
        config, what = IvfHnswSq(distance_type="cosine", num_partitions=partitions), "HNSW per partition"
    else:
        config, what = IvfFlat(distance_type="cosine", num_partitions=partitions), "exact vectors"
    table.create_index(column, config=config)
    return f"built {index_type} ({partitions} partitions, {what})"


def near_pairs(table: Any, column: str, ids: Sequence[str], vectors: np.ndarray, *, threshold: float, k: int,
               index: str | None, nprobes: int, refine_factor: int, batch: int = 512, threads: int | None = None,
               progress: Any = None, content: Sequence[str] = ("id",)) -> tuple[list[str], list[str], np.ndarray]:
    """(query ids, hit ids, cosine distances) of every hit within ``threshold`` among each vector's ``k``
    nearest rows of the whole table (itself excluded). ``index``: the ANN index type, None for exact.
    ``content``: the columns that make a hit's content id (:func:`~raycurate.store.table.content_ids`).

    Batches of queries run on ``threads`` threads (LanceDB releases the GIL). No prefilter: rows that
    failed to decode have null vectors, which vector search never returns."""
    from concurrent.futures import ThreadPoolExecutor

    def one(start: int) -> tuple[list[str], list[str], list[float]]:
        chunk = vectors[start:start + batch]
        q = (table.search(chunk, vector_column_name=column).distance_type("cosine")
             .select([*content, "_distance"]).limit(k + 1))
        if index is not None:
            q = q.nprobes(nprobes)
            if index != "IVF_FLAT":      # compressed vectors: re-rank candidates on the full ones
                q = q.refine_factor(refine_factor)
        hits = q.to_arrow()
        dist = hits.column("_distance").to_numpy()
        near = np.flatnonzero(dist <= threshold)
        qs: list[str] = []
        hs: list[str] = []
        ds: list[float] = []
        if not len(near):
            return qs, hs, ds
        qi = (hits.column("query_index").to_numpy()[near] if "query_index" in hits.column_names
              else np.zeros(len(near), dtype=np.int64))
        for i, hit, d in zip(qi, content_ids(hits.take(pa.array(near)), content).to_pylist(), dist[near]):
            me = ids[start + int(i)]
            if hit != me:
                qs.append(me)
                hs.append(hit)
                ds.append(float(d))
        return qs, hs, ds

    qs: list[str] = []
    hs: list[str] = []
    ds: list[float] = []
    starts = range(0, len(ids), batch)
    step = max(1, len(starts) // 10)          # long scans report every ~10%
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1) as pool:
        for i, (a, b, c) in enumerate(pool.map(one, starts), 1):
            qs += a
            hs += b
            ds += c
            if progress is not None and len(starts) >= 20 and i % step == 0 and i < len(starts):
                done = min(len(ids), i * batch)
                progress(f"[raycurate] dedup {column}: {done:,}/{len(ids):,} rows queried "
                         f"({done / (time.perf_counter() - t0):,.0f}/s), {len(qs):,} hits so far")
    return qs, hs, np.maximum(np.asarray(ds, dtype=np.float64), 0.0)


def maintain(table: Any, *, vector_columns: Iterable[str], index_min_rows: int, index_type: str = "IVF_FLAT"
             ) -> dict[str, Any]:
    """After a run: scalar indexes on the columns filters use, vector indexes once the table is large
    enough, and ``optimize`` (compacts small fragments, folds new rows into the indexes)."""
    done: dict[str, Any] = {"scalar": [], "vector": {}}
    table.checkout_latest()   # other handles wrote after this one was opened (dedup's marks): plan on the latest
    present = indexed_columns(table)
    names = set(table.schema.names)
    for column, kind in SCALAR_INDEXES.items():
        if column in names and column not in present:
            from lancedb.index import Bitmap, BTree

            table.create_index(column, config=BTree() if kind == "BTREE" else Bitmap())
            done["scalar"].append(column)
    for column in vector_columns:
        if column in names:
            done["vector"][column] = ensure_vector_index(table, column, min_rows=index_min_rows,
                                                         index_type=index_type)
    t = time.perf_counter()
    table.optimize()
    done["optimize_s"] = round(time.perf_counter() - t, 3)
    return done
