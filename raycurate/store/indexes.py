"""What indexes a LanceDB table holds: each index's name, kind and columns, and a vector index's metric.

The one place raycurate asks LanceDB about a table's indexes (``list_indices``, ``index_stats``): dedup and
maintenance (:mod:`raycurate.store.ann`, :mod:`raycurate.store.dedup`), the health check and search read
them here. Kinds are written as LanceDB's index statistics write them: ``IVF_FLAT``, ``IVF_PQ``,
``IVF_HNSW_SQ``, ``BTREE``, ``BITMAP`` ...; metrics in lower case: ``cosine``, ``l2``, ``dot``, ``hamming``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

VECTOR_KINDS = ("IVF", "HNSW")   # a kind naming one of these is a vector (ANN) index


@dataclass(frozen=True)
class IndexInfo:
    """One index of a table."""

    name: str
    kind: str                   # IVF_FLAT, IVF_PQ, IVF_HNSW_SQ, BTREE, BITMAP, LABEL_LIST, FTS ...
    columns: tuple[str, ...]

    @property
    def is_vector(self) -> bool:
        return any(v in self.kind for v in VECTOR_KINDS)


@dataclass(frozen=True)
class VectorIndex:
    """A vector index on one column, with the metric its distances are in."""

    name: str
    kind: str
    column: str
    metric: str                 # cosine, l2, dot, hamming; "" when LanceDB does not say


def kind_name(index_type: Any) -> str:
    """LanceDB's index type as the index statistics write it: ``IvfHnswSq`` -> ``IVF_HNSW_SQ``,
    ``BTree`` -> ``BTREE``."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", str(index_type)).upper()


def indexes(table: Any) -> list[IndexInfo]:
    """Every index of ``table`` (LanceDB decodes the table's index section to list them)."""
    return [IndexInfo(str(i.name), kind_name(i.index_type), tuple(i.columns)) for i in table.list_indices()]


def indexed_columns(table: Any) -> set[str]:
    """The columns some index of ``table`` covers."""
    return {c for index in indexes(table) for c in index.columns}


def has_index(table: Any, column: str) -> bool:
    """Whether an index (of any kind) is built on ``column`` alone."""
    return any(index.columns == (column,) for index in indexes(table))


def has_vector_index(table: Any, column: str) -> bool:
    """Whether a vector (IVF / HNSW) index is built on ``column``."""
    return any(index.is_vector and index.columns == (column,) for index in indexes(table))


def vector_index(table: Any, column: str) -> VectorIndex | None:
    """The vector index on ``column`` with its metric (read from its statistics), or None."""
    for index in indexes(table):
        if index.is_vector and index.columns == (column,):
            metric = getattr(table.index_stats(index.name), "distance_type", None)
            return VectorIndex(index.name, index.kind, column, str(metric or "").lower())
    return None


def index_kind(table: Any, column: str, default: str) -> str:
    """The kind of ``column``'s vector index (IVF_FLAT, IVF_PQ or IVF_HNSW_SQ), ``default`` when it has none."""
    return next((index.kind for index in indexes(table) if index.is_vector and index.columns == (column,)), default)


__all__ = ["IndexInfo", "VECTOR_KINDS", "VectorIndex", "has_index", "has_vector_index", "index_kind",
           "indexed_columns", "indexes", "kind_name", "vector_index"]
