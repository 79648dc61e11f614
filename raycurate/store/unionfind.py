"""Union-find (disjoint sets): the connected components of a set of pairs.

One implementation serves dedup's groups of content ids (:class:`UnionFind`, keyed by any hashable)
and export's identity clusters (:class:`DisjointSets`, rows 0..n-1). Pairs are joined a whole array
at a time (numpy), so millions of pairs cost no Python loop per pair.
"""
from __future__ import annotations

from typing import Hashable, Iterable, Sequence

import numpy as np


class DisjointSets:
    """Disjoint sets of the integers ``0..n-1``; a root is the smallest index reached when joining."""

    def __init__(self, n: int = 0) -> None:
        self.parent = np.arange(n)

    def __len__(self) -> int:
        return len(self.parent)

    def grow(self, n: int) -> None:
        """Add singletons up to ``n`` elements."""
        if n > len(self.parent):
            self.parent = np.concatenate([self.parent, np.arange(len(self.parent), n)])

    def find(self, i: np.ndarray) -> np.ndarray:
        """The root of each element of ``i`` (an index array)."""
        parent = self.parent
        while True:
            p = parent[i]
            if np.array_equal(p, i):
                return i
            parent[i] = parent[p]    # path halving
            i = parent[i]

    def union(self, ii: np.ndarray, jj: np.ndarray) -> None:
        """Join ``ii[k]`` with ``jj[k]`` for every k."""
        ii, jj = np.asarray(ii, dtype=np.int64), np.asarray(jj, dtype=np.int64)
        while len(ii):
            ri, rj = self.find(ii), self.find(jj)
            differ = ri != rj
            if not differ.any():
                break
            ri, rj = ri[differ], rj[differ]
            self.parent[np.maximum(ri, rj)] = np.minimum(ri, rj)
            ii, jj = ii[differ], jj[differ]

    def roots(self) -> np.ndarray:
        """The root of every element, in order."""
        return self.find(np.arange(len(self.parent)))


class UnionFind:
    """Disjoint sets of hashable keys; a key is known once a pair holding it was joined."""

    def __init__(self) -> None:
        self.index: dict[Hashable, int] = {}
        self.keys: list[Hashable] = []
        self.sets = DisjointSets()

    def __contains__(self, key: Hashable) -> bool:
        return key in self.index

    def _indices(self, keys: Iterable[Hashable]) -> np.ndarray:
        index, known = self.index, self.keys
        out = []
        for key in keys:
            i = index.get(key)
            if i is None:
                i = index[key] = len(known)
                known.append(key)
            out.append(i)
        self.sets.grow(len(known))
        return np.asarray(out, dtype=np.int64)

    def union(self, a: Sequence[Hashable], b: Sequence[Hashable]) -> None:
        """Join ``a[k]`` with ``b[k]`` for every k."""
        self.sets.union(self._indices(a), self._indices(b))

    def find(self, key: Hashable) -> Hashable:
        """The key that stands for ``key``'s set."""
        return self.keys[int(self.sets.find(np.asarray([self.index[key]]))[0])]

    def components(self) -> dict[Hashable, set[Hashable]]:
        """Each set's root key -> the set's keys."""
        out: dict[Hashable, set[Hashable]] = {}
        for key, root in zip(self.keys, self.sets.roots().tolist()):
            out.setdefault(self.keys[root], set()).add(key)
        return out
