"""How a search query uses the vector index of the column it searches.

The index is read from the store (:func:`raycurate.store.indexes.vector_index`). An index whose metric the
caller can turn into cosine distance serves the query: at least ``search.nprobes`` IVF partitions probed
(more when a narrow prefilter leaves too few candidates) and ``search.refine_factor`` x k candidates
re-ranked on the full vectors, so the distances returned are exact. Any other index (e.g. hamming) is
bypassed and the search is exact, as it is on a column without an index.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..settings import SearchSettings
from ..store.indexes import VectorIndex, vector_index

HNSW_EF = 128   # least HNSW candidates explored; k x refine_factor when larger
# Index metric -> factor that turns its distance into cosine distance on L2-normalised vectors
# (squared L2 = 2 - 2 cos; dot distance = 1 - dot). Every stored vector column is L2-normalised.
METRIC_TO_COSINE = {"cosine": 1.0, "l2": 0.5, "dot": 1.0}
COSINE_ONLY = {"cosine": 1.0}   # vectors that are not unit length (dlib's faces): only a cosine index serves


def ann_query(query: Any, index: VectorIndex, k: int, settings: SearchSettings) -> tuple[Any, str]:
    """``query`` served by ``index`` (its metric, ``settings.nprobes`` partitions at least,
    ``settings.refine_factor`` x k re-ranked), and the method's name ``ann:<index> (<kind>, <metric>)``."""
    query = (query.distance_type(index.metric).minimum_nprobes(settings.nprobes).maximum_nprobes(0)
             .refine_factor(settings.refine_factor))
    if "HNSW" in index.kind:
        query = query.ef(max(HNSW_EF, k * settings.refine_factor))
    return query, f"ann:{index.name} ({index.kind}, {index.metric})"


def plan(query: Any, table: Any, column: str, k: int, settings: SearchSettings,
         metrics: Mapping[str, float] = METRIC_TO_COSINE) -> tuple[Any, str, float]:
    """(``query`` on ``column`` of ``table`` served by the column's vector index when its metric is one of
    ``metrics``, else exact cosine with any index bypassed; the method's name; the factor that turns the
    query's distances into cosine distances)."""
    index = vector_index(table, column)
    if index is not None and index.metric in metrics:
        query, method = ann_query(query, index, k, settings)
        return query, method, metrics[index.metric]
    query = query.distance_type("cosine")
    if index is not None:   # e.g. a hamming index: its distances are not cosine
        query = query.bypass_vector_index()
    return query, "exact", 1.0


__all__ = ["COSINE_ONLY", "HNSW_EF", "METRIC_TO_COSINE", "ann_query", "plan"]
