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
key descending, nulls last; ``pixels`` is width x height), then by id; its
smallest-uri row is the keeper. Every other row of the group gets
``duplicate_of`` = the keeper's id, ``duplicate_distance`` (cosine distance to
the keeper in the column that matched, 0 for the same bytes) and
``duplicate_column``; every member gets ``duplicate_group``. The marks are written
with one ``merge_insert`` on (id, uri, run_id).

Above ``index_min_rows`` rows a vector column without an ANN index gets one
(IVF_PQ, cosine) before the queries, which then use ``nprobes`` and a
``refine_factor`` (exact re-ranking of the candidates) so recall stays high; rows
added after the index are searched exactly by LanceDB until ``optimize`` folds
them in (:func:`maintain`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa

KEY = ("id", "uri", "run_id")
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


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        root = parent.setdefault(x, x)
        while root != parent[root]:
            root = parent[root]
        while x != root:                       # path compression
            parent[x], x = root, parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def has_vector_index(table: Any, column: str) -> bool:
    return any(column in idx.columns and any(t in str(idx.index_type).upper() for t in ("IVF", "HNSW"))
               for idx in table.list_indices())


def ensure_vector_index(table: Any, column: str, *, min_rows: int, index_type: str = "IVF_PQ") -> str:
    """Build an ANN index on ``column`` when the table has at least ``min_rows`` rows and none yet."""
    if has_vector_index(table, column):
        return "present"
    n = table.count_rows(f"{column} IS NOT NULL")
    if n < min_rows:
        return "none (exact search)"
    dim = table.schema.field(column).type.list_size
    partitions = max(1, int(math.sqrt(n)))
    sub_vectors = next(s for s in (dim // 8, dim // 4, dim // 2, dim, 1) if s and dim % s == 0)
    table.create_index(metric="cosine", vector_column_name=column, index_type=index_type,
                       num_partitions=partitions, num_sub_vectors=sub_vectors)
    return f"built {index_type} ({partitions} partitions, {sub_vectors} sub-vectors)"


def near_pairs(table: Any, column: str, ids: Sequence[str], vectors: np.ndarray, *, threshold: float, k: int,
               indexed: bool, nprobes: int, refine_factor: int, batch: int = 256) -> list[tuple[str, str, float]]:
    """(query id, hit id, cosine distance) for every hit within ``threshold`` among each vector's ``k``
    nearest rows of the whole table (itself excluded)."""
    out: list[tuple[str, str, float]] = []
    for start in range(0, len(ids), batch):
        chunk = vectors[start:start + batch]
        q = (table.search(chunk, vector_column_name=column).distance_type("cosine")
             .where("error IS NULL", prefilter=True).select(["id"]).limit(k + 1))
        if indexed:
            q = q.nprobes(nprobes).refine_factor(refine_factor)
        hits = q.to_arrow()
        qi = (hits.column("query_index").to_numpy() if "query_index" in hits.column_names
              else np.zeros(hits.num_rows, dtype=np.int64))
        for i, hit, dist in zip(qi, hits.column("id").to_pylist(), hits.column("_distance").to_numpy()):
            me = ids[start + int(i)]
            if hit != me and dist <= threshold:
                out.append((me, hit, float(max(0.0, dist))))
    return out


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
                k: int = 16, index_min_rows: int = 100_000, index_type: str = "IVF_PQ", nprobes: int = 32,
                refine_factor: int = 10, progress: Any = None) -> DedupResult:
    """Group and mark duplicates of the rows of ``run_id`` (all rows when None) against the whole table."""
    start = time.perf_counter()
    result = DedupResult()
    names = _columns_of(table)
    scope = "error IS NULL" + (f" AND run_id = {_sql_str(run_id)}" if run_id else "")
    keep_cols = [c for c in keep_by if c in names and c != "pixels"]
    base_cols = list(dict.fromkeys([*KEY, "width", "height", "duplicate_group", *keep_cols]))

    # every decoded row's key, keep-by values and earlier group: small columns, streamed
    rows: list[dict[str, Any]] = []
    for batch in table.search().where("error IS NULL").select(base_cols).limit(None).to_batches(65536):
        rows.extend(batch.to_pylist())
    by_id: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_id.setdefault(r["id"], []).append(r)

    uf = UnionFind()
    for r in rows:
        if r["duplicate_group"]:
            uf.union(r["id"], r["duplicate_group"])     # groups written by earlier dedups
    scope_ids = set(table.search().where(scope).select(["id"]).limit(None).to_arrow().column("id").to_pylist())
    result.rows_in_scope = sum(len(by_id.get(i, [])) for i in scope_ids)
    result.exact_groups = sum(1 for i in scope_ids if len(by_id.get(i, [])) > 1)

    edges: dict[tuple[str, str], tuple[float, str]] = {}
    for column, threshold in columns.items():
        if threshold is None or column not in names:
            continue
        data = table.search().where(f"{scope} AND {column} IS NOT NULL").select(["id", column]) \
            .limit(None).to_arrow()
        ids, first = [], {}
        for i, cid in enumerate(data.column("id").to_pylist()):
            first.setdefault(cid, i)
        ids = list(first)
        if not ids:
            result.pairs[column] = 0
            continue
        flat = data.column(column).combine_chunks()
        dim = flat.type.list_size
        vectors = flat.values.to_numpy(zero_copy_only=False).reshape(-1, dim)[list(first.values())]
        state = ensure_vector_index(table, column, min_rows=index_min_rows, index_type=index_type)
        result.indexed[column] = state
        pairs = near_pairs(table, column, ids, vectors.astype(np.float32), threshold=threshold, k=k,
                           indexed=state.startswith(("built", "present")), nprobes=nprobes,
                           refine_factor=refine_factor)
        result.pairs[column] = len({tuple(sorted(p[:2])) for p in pairs})
        for a, b, dist in pairs:
            uf.union(a, b)
            key = (a, b) if a < b else (b, a)
            if key not in edges or dist < edges[key][0]:
                edges[key] = (dist, column)
        if progress is not None:
            progress(f"dedup {column}: {len(ids)} vectors, {result.pairs[column]} pairs within {threshold}")

    # groups touched by the scope: its ids' components, plus exact copies
    members: dict[str, set[str]] = {}
    for cid in by_id:
        members.setdefault(uf.find(cid), set()).add(cid)
    touched = {uf.find(i) for i in scope_ids if i in by_id}
    marks: list[dict[str, Any]] = []
    for root in touched:
        group = members[root]
        if len(group) == 1 and len(by_id[next(iter(group))]) == 1:
            continue
        result.groups += 1
        best = min(group, key=lambda cid: _sort_key(by_id[cid][0], keep_by))
        keeper = min(by_id[best], key=lambda r: (r["uri"], r["run_id"]))
        for cid in group:
            if cid == best:
                dist, col = 0.0, "id"
            else:
                dist, col = _distance_to(table, cid, best, edges)
            for r in by_id[cid]:
                is_keeper = r is keeper
                marks.append({"id": r["id"], "uri": r["uri"], "run_id": r["run_id"], "duplicate_group": best,
                              "duplicate_of": None if is_keeper else best,
                              "duplicate_distance": None if is_keeper else dist,
                              "duplicate_column": None if is_keeper else col})
                result.marked += 0 if is_keeper else 1
    if marks:
        schema = pa.schema([table.schema.field(n) for n in (*KEY, "duplicate_group", "duplicate_of",
                                                              "duplicate_distance", "duplicate_column")])
        # key columns are non-nullable in the table; the source may declare them the same way
        table.merge_insert(list(KEY)).when_matched_update_all().execute(pa.Table.from_pylist(marks, schema=schema))
    result.seconds = time.perf_counter() - start
    return result


def _distance_to(table: Any, cid: str, best: str, edges: Mapping[tuple[str, str], tuple[float, str]]
                 ) -> tuple[float, str]:
    """Cosine distance from ``cid`` to the keeper ``best``: the direct edge when there is one, else computed
    from the stored vectors of the column of ``cid``'s closest edge (members can be linked transitively)."""
    key = (cid, best) if cid < best else (best, cid)
    if key in edges:
        return edges[key]
    mine = [(d, c) for (a, b), (d, c) in edges.items() if cid in (a, b)]
    column = min(mine)[1] if mine else "content_vector"
    rows = table.search().where(f"id IN ({_sql_str(cid)}, {_sql_str(best)}) AND {column} IS NOT NULL") \
        .select(["id", column]).limit(None).to_list()
    vec = {r["id"]: np.asarray(r[column], dtype=np.float64) for r in rows}
    if cid not in vec or best not in vec:
        return (min(mine)[0] if mine else float("nan")), column
    a, b = vec[cid], vec[best]
    return float(1.0 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b) or 1.0)), column


def maintain(table: Any, *, vector_columns: Iterable[str], index_min_rows: int, index_type: str = "IVF_PQ"
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
