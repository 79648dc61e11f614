"""``group_by_identity``: the kept images clustered into people by the main face's embedding."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..store.unionfind import DisjointSets
from .records import iter_rows


def cluster_identities(vectors: np.ndarray, threshold: float) -> np.ndarray:
    """Connected components of the rows of ``vectors`` joined when their cosine distance <= ``threshold``.

    Labels are 0..k-1, the largest group first (ties: the group holding the earliest row).
    Single linkage: two faces are one person when a chain of close faces joins them. Exact,
    O(n^2) dot products computed in blocks (memory ~64 MB a block).
    """
    n = len(vectors)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    x = np.asarray(vectors, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sets = DisjointSets(n)
    block = max(1, (1 << 24) // n)
    for start in range(0, n, block):
        stop = min(n, start + block)
        sim = x[start:stop] @ x[start:].T
        ii, jj = np.nonzero(sim >= 1.0 - threshold)
        ii, jj = ii + start, jj + start
        keep = ii < jj
        sets.union(ii[keep], jj[keep])
    roots = sets.roots()
    uniq, first, counts = np.unique(roots, return_index=True, return_counts=True)
    order = sorted(range(len(uniq)), key=lambda g: (-counts[g], first[g]))
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[order] = np.arange(len(uniq))
    return rank[np.searchsorted(uniq, roots)]


def identities(table: Any, where: str, threshold: float | None) -> dict[str, str]:
    """Content id -> ``person_<n>`` (1: the largest group) or ``unknown`` for rows matching ``where``, by
    the main face's embedding: ArcFace where the table holds any, else dlib (vectors of two models are never
    compared). ``threshold`` None: the model's own (:data:`~raycurate.analyzers.face_embedders.SAME_PERSON`)."""
    from ..analyzers.face_embedders import SAME_PERSON, VECTOR_COLUMNS as FACE_VECTORS

    names = table.schema.names
    family = next((fam for fam, (col, _) in FACE_VECTORS.items() if col in names
                   and table.count_rows(f"({where}) AND {col} IS NOT NULL") > 0), None)
    column = FACE_VECTORS[family][0] if family else None
    vectors: dict[str, np.ndarray | None] = {}
    for row in iter_rows(table, where, ["id", column] if column else ["id"], batch_size=4096):
        v = row.get(column) if column else None
        if vectors.get(row["id"]) is None:
            vectors[row["id"]] = np.asarray(v, dtype=np.float32) if v is not None else None
    known = sorted(i for i, v in vectors.items() if v is not None)
    out = {i: "unknown" for i, v in vectors.items() if v is None}
    if known:
        limit = threshold if threshold is not None else SAME_PERSON[family]
        labels = cluster_identities(np.stack([vectors[i] for i in known]), limit)
        out.update({i: f"person_{label + 1}" for i, label in zip(known, labels)})
    return out
