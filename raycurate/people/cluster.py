"""Face identities by centroids, not by links: pure numpy, incremental, and it does not chain.

A face joins the nearest identity whose centroid (the unit mean of its faces' unit vectors) lies
within ``threshold`` (cosine distance), else it seeds a new identity. Faces are taken in ``order``
(sharpest first, say) so that good faces seed identities; then the new faces are reassigned to the
final centroids once or twice. A face is compared with a mean, never with a single neighbour, so a
run of faces stepping from person A to person B cannot link A to B the way single linkage does:
A's centroid lags behind the chain, which breaks off into identities of its own.

Work is vectorised: faces are taken in chunks, each chunk compared with every centroid in one
matrix product; only the faces no centroid takes are walked one by one, against the identities
seeded in that chunk (a small matrix). Existing identities keep their indices and are never merged.
"""
from __future__ import annotations

import numpy as np

CHUNK = 1024          # faces compared with the centroids per matrix product
PASSES = 2            # reassignment passes of the new faces to the final centroids


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def _nearest(x: np.ndarray, c: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``x``: the index of the nearest row of ``c`` (unit vectors) and the cosine distance to it."""
    labels = np.full(len(x), -1, dtype=np.int64)
    dist = np.full(len(x), np.inf, dtype=np.float32)
    if len(c) == 0:
        return labels, dist
    for s in range(0, len(x), chunk):
        sim = x[s:s + chunk] @ c.T
        best = sim.argmax(axis=1)
        labels[s:s + chunk] = best
        dist[s:s + chunk] = 1.0 - sim[np.arange(len(best)), best]
    return labels, dist


class _Sums:
    """Sums of unit vectors per identity (an existing identity: its centroid times its count), growing."""

    def __init__(self, centroids: np.ndarray, counts: np.ndarray, capacity: int) -> None:
        m, d = centroids.shape
        self.m = m
        self.sum = np.zeros((max(m + capacity, 1), d), dtype=np.float64)
        self.sum[:m] = centroids * counts[:, None]

    def centroids(self) -> np.ndarray:
        return _unit(self.sum[:self.m])

    def add(self, labels: np.ndarray, x: np.ndarray) -> None:
        if len(labels):
            self.sum[:self.m] = _group_sum(self.sum[:self.m], labels, x)[:self.m]

    def seed(self, v: np.ndarray) -> int:
        self.sum[self.m] = v
        self.m += 1
        return self.m - 1


def _seed_pass(x: np.ndarray, order: np.ndarray, sums: _Sums, threshold: float, chunk: int) -> np.ndarray:
    """Labels of ``x`` taken in ``order``: the nearest centroid within ``threshold``, else a new identity."""
    labels = np.full(len(x), -1, dtype=np.int64)
    for s in range(0, len(order), chunk):
        idx = order[s:s + chunk]
        best, dist = _nearest(x[idx], sums.centroids())
        ok = dist <= threshold
        labels[idx[ok]] = best[ok]
        sums.add(best[ok], x[idx[ok]])
        first = sums.m
        fresh = np.zeros((int((~ok).sum()), x.shape[1]), dtype=np.float32)   # unit centroids seeded here
        for i in idx[~ok]:
            k = sums.m - first
            if k:
                sim = fresh[:k] @ x[i]
                j = int(sim.argmax())
                if 1.0 - sim[j] <= threshold:
                    labels[i] = first + j
                    sums.sum[first + j] += x[i]
                    fresh[j] = sums.sum[first + j] / (np.linalg.norm(sums.sum[first + j]) or 1.0)
                    continue
            labels[i] = sums.seed(x[i])
            fresh[k] = x[i]
    return labels


def assign_identities(vectors: np.ndarray, centroids: np.ndarray, counts: np.ndarray, threshold: float, *,
                      order: np.ndarray | None = None, chunk: int = CHUNK, passes: int = PASSES
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """New faces ``vectors`` (n, d) grouped into the identities ``centroids`` (m, d; unit) of ``counts`` faces.

    Returns the label of every new vector (an index into the grown centroid list: 0..m-1 are the existing
    identities, never renumbered; m.. the new ones, in the order they were seeded), its cosine distance to
    its identity's final centroid, the new centroids (unit means) and the new counts. ``order`` (indices
    into ``vectors``) is the order faces are taken in; the best first.
    """
    v = np.asarray(vectors, dtype=np.float32)
    c0 = np.asarray(centroids, dtype=np.float32)
    d = v.shape[1] if v.ndim == 2 else (c0.shape[1] if c0.ndim == 2 else 0)
    x = _unit(v.reshape(-1, d))
    c0 = _unit(c0.reshape(-1, d))
    m0, n = len(c0), len(x)
    n0 = np.asarray(counts, dtype=np.int64).reshape(m0)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32), c0, n0.copy()
    order = np.arange(n) if order is None else np.asarray(order, dtype=np.int64)
    if len(order) != n or len(np.unique(order)) != n or order.min() < 0 or order.max() >= n:
        raise ValueError("order must be a permutation of the vectors' indices")
    sums = _Sums(c0, np.maximum(n0, 1), n)
    labels = _seed_pass(x, order, sums, threshold, chunk)
    cents = sums.centroids()
    for _ in range(passes):
        best, dist = _nearest(x, cents)
        labels = _compact(np.where(dist <= threshold, best, labels), m0)
        cents = _unit(_group_sum(sums.sum[:m0], labels, x))
    dist = 1.0 - np.einsum("ij,ij->i", x, cents[labels])
    added = np.bincount(labels, minlength=len(cents))
    new_counts = np.concatenate([n0, np.zeros(len(cents) - m0, np.int64)]) + added
    return labels, np.maximum(dist, 0.0).astype(np.float32), cents.astype(np.float32), new_counts


def _group_sum(base: np.ndarray, labels: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``base`` (the existing identities' sums) grown to every label, plus the sum of ``x`` per label."""
    total = np.zeros((max(len(base), int(labels.max()) + 1), x.shape[1]), dtype=np.float64)
    total[:len(base)] = base
    o = np.argsort(labels, kind="stable")
    ls = labels[o]
    starts = np.flatnonzero(np.r_[True, ls[1:] != ls[:-1]])
    total[ls[starts]] += np.add.reduceat(x[o].astype(np.float64), starts, axis=0)
    return total


def _compact(labels: np.ndarray, m0: int) -> np.ndarray:
    """New identities left without faces dropped; the others renumbered from ``m0`` in order of index."""
    new = np.unique(labels[labels >= m0])
    remap = np.arange(labels.max(initial=m0 - 1) + 1, dtype=np.int64)
    remap[new] = m0 + np.arange(len(new))
    return remap[labels]


def cluster_embeddings(vectors: np.ndarray, threshold: float, *, order: np.ndarray | None = None) -> np.ndarray:
    """Labels 0..k-1 of ``vectors`` grouped from scratch (:func:`assign_identities` with no identities)."""
    v = np.asarray(vectors, dtype=np.float32)
    d = v.shape[1] if v.ndim == 2 else 0
    return assign_identities(v, np.zeros((0, d), np.float32), np.zeros(0, np.int64), threshold, order=order)[0]


def pair_precision_recall(labels: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Precision and recall over all pairs of faces put in one cluster (exact, from the contingency counts):
    precision = pairs sharing a cluster and a truth label / pairs sharing a cluster; recall = ... / pairs
    sharing a truth label. 1.0 where there is no pair to count."""
    labels, truth = np.asarray(labels), np.asarray(truth)

    def pairs(counts: np.ndarray) -> float:
        c = counts.astype(np.float64)
        return float((c * (c - 1) / 2).sum())

    _, joint = np.unique(np.stack([np.unique(labels, return_inverse=True)[1],
                                   np.unique(truth, return_inverse=True)[1]]), axis=1, return_counts=True)
    both = pairs(joint)
    predicted = pairs(np.unique(labels, return_counts=True)[1])
    true = pairs(np.unique(truth, return_counts=True)[1])
    return (both / predicted if predicted else 1.0), (both / true if true else 1.0)
