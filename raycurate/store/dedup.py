"""Near-duplicate removal inside LanceDB: rows are grouped and marked, never deleted.

Nodes are content ids (rows with the same ``id`` hold the same bytes, so they are
exact duplicates of each other). Edges come from vector search: each row in
scope (a run's new rows, or the whole table) asks LanceDB for its ``k`` nearest
neighbours in every configured vector column, over the *whole* table (earlier
runs included), and every hit within that column's cosine distance threshold is
an edge. Groups an earlier dedup wrote (``duplicate_group``) join as edges too,
so a new row that matches one old member joins its whole group. Groups are the
connected components (union-find, so grouping is transitive).

In each group touched by the scope the best member is kept, by ``keep_by`` (each
key descending, nulls last; ``pixels`` is width x height), then by id; among its
copies the row an earlier dedup kept stays the keeper, else the smallest uri. Every other row of the group gets
``duplicate_of`` = the keeper's id, ``duplicate_distance`` (cosine distance to
the keeper in the column that matched, 0 for the same bytes) and
``duplicate_column``; every member gets ``duplicate_group``. The marks are written
with one ``merge_insert`` on (id, uri, run_id).

Above ``index_min_rows`` rows a vector column without an ANN index gets one
(cosine) before the queries. The default is IVF_FLAT: it keeps the full vectors,
so every distance is exact and only ``nprobes`` (partitions searched) bounds
recall; a near duplicate almost always falls in its original's partition.
IVF_PQ and IVF_HNSW_SQ compress the vectors and add a ``refine_factor`` (exact
re-ranking of k x refine candidates). Measured on 100k x 512-d (README): IVF_FLAT
builds in ~9 s and answers ~3,200 queries/s; IVF_PQ (64 sub-vectors) ~82 s and
~670 queries/s with refine 4. Rows added after the index are searched exactly by
LanceDB until ``optimize`` folds them in (:func:`maintain`).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa

from .table import ROW_KEY, sql_str, write_columns
from .unionfind import UnionFind

KEY = ROW_KEY
SCALAR_INDEXES = {"id": "BTREE", "run_id": "BITMAP", "media_type": "BITMAP", "face_count": "BTREE",
                  "nsfw_score": "BTREE", "quality_sharpness": "BTREE", "duplicate_of": "BTREE"}


@dataclass
class DedupResult:
    rows_in_scope: int = 0
    exact_groups: int = 0
    pairs: dict[str, int] = field(default_factory=dict)      # near pairs found per vector column
    groups: int = 0                                          # groups touched (2+ content ids or copies)
    marked: int = 0                                          # rows now marked duplicate_of
    indexed: dict[str, str] = field(default_factory=dict)    # column -> index built / present / none
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def has_vector_index(table: Any, column: str) -> bool:
    return any(column in idx.columns and any(t in str(idx.index_type).upper() for t in ("IVF", "HNSW"))
               for idx in table.list_indices())


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
               progress: Any = None) -> tuple[list[str], list[str], np.ndarray]:
    """(query ids, hit ids, cosine distances) of every hit within ``threshold`` among each vector's ``k``
    nearest rows of the whole table (itself excluded). ``index``: the ANN index type, None for exact.

    Batches of queries run on ``threads`` threads (LanceDB releases the GIL). No prefilter: rows that
    failed to decode have null vectors, which vector search never returns."""
    from concurrent.futures import ThreadPoolExecutor

    def one(start: int) -> tuple[list[str], list[str], list[float]]:
        chunk = vectors[start:start + batch]
        q = (table.search(chunk, vector_column_name=column).distance_type("cosine")
             .select(["id", "_distance"]).limit(k + 1))
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
        for i, hit, d in zip(qi, hits.column("id").take(pa.array(near)).to_pylist(), dist[near]):
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


def _sort_key(row: Mapping[str, Any], keep_by: Sequence[str]) -> tuple:
    key: list[Any] = []
    for name in keep_by:
        if name == "pixels":
            value = (row.get("width") or 0) * (row.get("height") or 0) or None
        else:
            value = row.get(name)
        key += [value is None, -(value or 0.0)]          # nulls last, then larger first
    return (*key, row["id"])


def _columns_of(table: Any) -> set[str]:
    return set(table.schema.names)


def dedup_table(table: Any, *, run_id: str | None, columns: Mapping[str, float | None], keep_by: Sequence[str],
                k: int = 16, index_min_rows: int = 100_000, index_type: str = "IVF_FLAT", nprobes: int = 8,
                refine_factor: int = 10, progress: Any = None) -> DedupResult:
    """Group and mark duplicates of the rows of ``run_id`` (all rows when None) against the whole table."""
    import pyarrow.compute as pc

    start = time.perf_counter()
    result = DedupResult()
    names = _columns_of(table)
    scope = "error IS NULL" + (f" AND run_id = {sql_str(run_id)}" if run_id else "")
    keep_cols = [c for c in keep_by if c in names and c != "pixels"]
    base_cols = list(dict.fromkeys([*KEY, "width", "height", "duplicate_group", "duplicate_of", *keep_cols]))

    # every decoded row's key, keep-by values and earlier group, as Arrow columns
    base = table.search().where("error IS NULL").select(base_cols).limit(None).to_arrow()
    uf = UnionFind()
    earlier = base.filter(pc.is_valid(base.column("duplicate_group")))
    uf.union(earlier.column("id").to_pylist(), earlier.column("duplicate_group").to_pylist())  # earlier dedups
    in_scope = base if run_id is None else base.filter(pc.equal(base.column("run_id"), run_id))
    scope_ids = set(in_scope.column("id").to_pylist())
    result.rows_in_scope = in_scope.num_rows
    counts = base.group_by("id").aggregate([("uri", "count")])
    copied = set(counts.filter(pc.greater(counts.column("uri_count"), 1)).column("id").to_pylist())
    result.exact_groups = len(copied & scope_ids)

    search = _Search(table, scope, k, index_min_rows, index_type, nprobes, refine_factor, progress)
    edges = _Edges()
    for column, threshold in columns.items():
        if threshold is not None and column in names:
            _column_pairs(search, column, threshold, uf, edges, result)

    touched = _touched_groups(uf, scope_ids, copied)
    needed = set().union(*touched.values()) if touched else set()
    rows_of: dict[str, list[dict[str, Any]]] = {}
    if needed:
        for r in base.filter(pc.is_in(base.column("id"), value_set=pa.array(sorted(needed)))).to_pylist():
            rows_of.setdefault(r["id"], []).append(r)
    del base
    _write_marks(table, _marks(table, touched, rows_of, keep_by, edges, result))
    result.seconds = time.perf_counter() - start
    return result


@dataclass(frozen=True)
class _Search:
    """How dedup asks LanceDB for near neighbours (the rows in ``scope`` query the whole table)."""

    table: Any
    scope: str
    k: int
    index_min_rows: int
    index_type: str
    nprobes: int
    refine_factor: int
    progress: Any


@dataclass
class _Edges:
    """The near pairs found: each pair's smallest distance and its column, and each id's nearest edge."""

    pairs: dict[tuple[str, str], tuple[float, str]] = field(default_factory=dict)
    closest: dict[str, tuple[float, str]] = field(default_factory=dict)

    def add(self, a: str, b: str, dist: float, column: str) -> None:
        key = (a, b) if a < b else (b, a)
        if key not in self.pairs or dist < self.pairs[key][0]:
            self.pairs[key] = (float(dist), column)
            for node in key:
                if node not in self.closest or self.pairs[key] < self.closest[node]:
                    self.closest[node] = self.pairs[key]


def _scope_vectors(s: _Search, column: str) -> tuple[list[str], np.ndarray]:
    """The content ids in scope with a vector in ``column`` and their vectors (one per id: its first row)."""
    data = s.table.search().where(f"{s.scope} AND {column} IS NOT NULL").select(["id", column]) \
        .limit(None).to_arrow()
    first: dict[str, int] = {}
    for i, cid in enumerate(data.column("id").to_pylist()):
        first.setdefault(cid, i)
    ids = list(first)
    if not ids:
        return ids, np.zeros((0, 0), dtype=np.float32)
    flat = data.column(column).combine_chunks()
    dim = flat.type.list_size
    vectors = flat.values.to_numpy(zero_copy_only=False).reshape(-1, dim)
    if len(first) != data.num_rows:
        vectors = vectors[list(first.values())]
    return ids, vectors


def _column_pairs(s: _Search, column: str, threshold: float, uf: UnionFind, edges: _Edges,
                  result: DedupResult) -> None:
    """Find the near pairs in one vector column: join them in ``uf`` and record them in ``edges``."""
    ids, vectors = _scope_vectors(s, column)
    if not ids:
        result.pairs[column] = 0
        return
    table = s.table
    state = ensure_vector_index(table, column, min_rows=s.index_min_rows, index_type=s.index_type)
    result.indexed[column] = state
    kind = None
    if state != "none (exact search)":
        kind = next((str(i.index_type).upper().replace("IVFHNSWSQ", "IVF_HNSW_SQ")
                     .replace("IVFPQ", "IVF_PQ").replace("IVFFLAT", "IVF_FLAT")
                     for i in table.list_indices() if column in i.columns), s.index_type)
    qs, hs, ds = near_pairs(table, column, ids, vectors.astype(np.float32, copy=False), threshold=threshold,
                            k=s.k, index=kind, nprobes=s.nprobes, refine_factor=s.refine_factor,
                            progress=s.progress)
    before = len(edges.pairs)
    uf.union(qs, hs)
    for a, b, dist in zip(qs, hs, ds):
        edges.add(a, b, dist, column)
    result.pairs[column] = len({(a, b) if a < b else (b, a) for a, b in zip(qs, hs)})
    if s.progress is not None:
        s.progress(f"[raycurate] dedup {column}: {len(ids)} vectors, {result.pairs[column]} pairs within "
                   f"{threshold} ({len(edges.pairs) - before} new), index: {state}")


def _touched_groups(uf: UnionFind, scope_ids: Iterable[str], copied: set[str]) -> dict[str, set[str]]:
    """The groups the scope touches: components of its ids with 2+ ids, and ids with several rows."""
    members = uf.components()
    root_of = {cid: root for root, group in members.items() for cid in group}
    touched: dict[str, set[str]] = {}
    for cid in scope_ids:
        root = root_of.get(cid, cid)
        group = members.get(root, {cid})
        if len(group) > 1 or cid in copied:
            touched[root] = group
    return touched


def _marks(table: Any, touched: Mapping[str, set[str]], rows_of: Mapping[str, list[dict[str, Any]]],
           keep_by: Sequence[str], edges: _Edges, result: DedupResult) -> list[dict[str, Any]]:
    """The dedup columns of every row of the touched groups: one keeper per group, the rest its duplicates."""
    marks: list[dict[str, Any]] = []
    for group in touched.values():
        group = {cid for cid in group if cid in rows_of}
        if not group:
            continue
        result.groups += 1
        best = min(group, key=lambda cid: _sort_key(rows_of[cid][0], keep_by))
        # among copies of the best bytes, the row kept before stays kept (stable across runs), else the
        # smallest uri
        keeper = min(rows_of[best], key=lambda r: (not (r["duplicate_group"] and r["duplicate_of"] is None),
                                                   r["uri"], r["run_id"]))
        for cid in group:
            dist, col = (0.0, "id") if cid == best else _distance_to(table, cid, best, edges.pairs,
                                                                      edges.closest)
            for r in rows_of[cid]:
                is_keeper = r is keeper
                marks.append({"id": r["id"], "uri": r["uri"], "run_id": r["run_id"], "duplicate_group": best,
                              "duplicate_of": None if is_keeper else best,
                              "duplicate_distance": None if is_keeper else dist,
                              "duplicate_column": None if is_keeper else col})
                result.marked += 0 if is_keeper else 1
    return marks


def _write_marks(table: Any, marks: list[dict[str, Any]]) -> None:
    """Write the marks with one ``merge_insert`` on (id, uri, run_id)."""
    write_columns(table, marks, ("duplicate_group", "duplicate_of", "duplicate_distance", "duplicate_column"), KEY)


def _distance_to(table: Any, cid: str, best: str, edges: Mapping[tuple[str, str], tuple[float, str]],
                 closest: Mapping[str, tuple[float, str]]) -> tuple[float, str]:
    """Cosine distance from ``cid`` to the keeper ``best``: the direct edge when there is one, else computed
    from the stored vectors of the column of ``cid``'s closest edge (members can be linked transitively)."""
    key = (cid, best) if cid < best else (best, cid)
    if key in edges:
        return edges[key]
    mine = closest.get(cid)
    column = mine[1] if mine else "content_vector"
    rows = table.search().where(f"id IN ({sql_str(cid)}, {sql_str(best)}) AND {column} IS NOT NULL") \
        .select(["id", column]).limit(None).to_list()
    vec = {r["id"]: np.asarray(r[column], dtype=np.float64) for r in rows}
    if cid not in vec or best not in vec:
        return (mine[0] if mine else float("nan")), column
    a, b = vec[cid], vec[best]
    return float(1.0 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b) or 1.0)), column


def maintain(table: Any, *, vector_columns: Iterable[str], index_min_rows: int, index_type: str = "IVF_FLAT"
             ) -> dict[str, Any]:
    """After a run: scalar indexes on the columns filters use, vector indexes once the table is large
    enough, and ``optimize`` (compacts small fragments, folds new rows into the indexes)."""
    done: dict[str, Any] = {"scalar": [], "vector": {}}
    present = {c for idx in table.list_indices() for c in idx.columns}
    names = _columns_of(table)
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
