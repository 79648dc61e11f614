"""Face identities by centroids, not by links: pure numpy, incremental, cautious, and it does not chain.

A face is compared with every identity's centroid (the unit mean of its faces' unit vectors); d1 and d2 are
its cosine distances to the nearest and the second-nearest one. It

- **joins** the nearest identity when ``d1 <= threshold`` and ``d2 - d1 >= margin`` (clearly closer to that
  identity than to any other);
- **seeds** a new identity when ``d1 > seed`` (``seed`` >= threshold; by default ``threshold + margin``): it is
  far from every identity, so the new one cannot be confused with an existing one;
- else stays **unknown** (label :data:`UNKNOWN`): it is near an identity but not clearly one person. An unknown
  face is never merged into an identity and seeds none; a later call may take it again.

Faces are taken in ``order`` (sharpest first, say) so that good faces seed identities; then the new faces
are reassigned to the final centroids ``passes`` times, and finally every face that breaks the invariant
below against the returned centroids is made unknown, until none does. A face is compared with a mean,
never with a single neighbour, so a run of faces stepping from person A to person B cannot link A to B the
way single linkage does: A's centroid lags behind the chain, which breaks off into identities of its own.

Invariant (of each call, on the centroids it returns): every assigned new face is within ``threshold`` of
its identity's centroid and at least ``margin`` closer to it than to any other identity's centroid. The
faces of earlier calls are not taken again: they were checked against the centroids of their own call.

Work is vectorised: faces are taken in chunks, each chunk compared with every centroid in one matrix
product; only the faces that join no identity are walked one by one, against the identities seeded in that
chunk (a small matrix). Existing identities keep their indices and are never merged.
"""
from __future__ import annotations

import numpy as np

CHUNK = 1024          # faces compared with the centroids per matrix product
PASSES = 2            # reassignment passes of the new faces to the final centroids
UNKNOWN = -1          # the label of a face that joins no identity (no clear nearest one)
EPS = 1e-6            # float32 slack in the invariant's comparisons


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def _nearest2(x: np.ndarray, c: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``x``: the index of the nearest row of ``c`` (unit vectors), the cosine distance to it and to
    the second-nearest row (inf where there is none)."""
    n = len(x)
    best = np.full(n, UNKNOWN, dtype=np.int64)
    d1 = np.full(n, np.inf, dtype=np.float32)
    d2 = np.full(n, np.inf, dtype=np.float32)
    if len(c) == 0:
        return best, d1, d2
    for s in range(0, n, chunk):
        sim = x[s:s + chunk] @ c.T
        rows = np.arange(len(sim))
        b = sim.argmax(axis=1)
        best[s:s + chunk], d1[s:s + chunk] = b, 1.0 - sim[rows, b]
        if len(c) > 1:
            sim[rows, b] = -np.inf
            d2[s:s + chunk] = 1.0 - sim.max(axis=1)
    return best, d1, d2


class _Rule:
    """Who joins, who seeds (see the module's docstring)."""

    def __init__(self, threshold: float, margin: float, seed: float | None) -> None:
        if margin < 0:
            raise ValueError("margin must be >= 0")
        self.threshold, self.margin = float(threshold), float(margin)
        self.seed = self.threshold + self.margin if seed is None else float(seed)
        if self.seed < self.threshold:
            raise ValueError("seed must be >= threshold")

    def joins(self, d1: np.ndarray, d2: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):   # inf - inf: no identity at all, d1 <= threshold is False anyway
            return (d1 <= self.threshold) & (d2 - d1 >= self.margin)

    def seeds(self, d1: np.ndarray) -> np.ndarray:
        return d1 > self.seed


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


def _top2(pairs: list[tuple[float, int]]) -> tuple[int, float, float]:
    pairs.sort()
    return pairs[0][1], pairs[0][0], (pairs[1][0] if len(pairs) > 1 else np.inf)


def _seed_pass(x: np.ndarray, order: np.ndarray, sums: _Sums, rule: _Rule, chunk: int) -> np.ndarray:
    """Labels of ``x`` taken in ``order``: the identity it clearly joins, a new identity it seeds, or UNKNOWN."""
    labels = np.full(len(x), UNKNOWN, dtype=np.int64)
    for s in range(0, len(order), chunk):
        idx = order[s:s + chunk]
        best, d1, d2 = _nearest2(x[idx], sums.centroids())
        ok = rule.joins(d1, d2)
        labels[idx[ok]] = best[ok]
        sums.add(best[ok], x[idx[ok]])
        first = sums.m
        fresh = np.zeros((int((~ok).sum()), x.shape[1]), dtype=np.float32)   # unit centroids seeded here
        for i, b, a1, a2 in zip(idx[~ok], best[~ok], d1[~ok], d2[~ok]):
            k = sums.m - first
            near = [(float(a1), int(b)), (float(a2), UNKNOWN)]
            if k:
                dist = 1.0 - fresh[:k] @ x[i]
                for j in np.argsort(dist)[:2]:
                    near.append((float(dist[j]), first + int(j)))
            lab, e1, e2 = _top2(near)
            if e1 <= rule.threshold and e2 - e1 >= rule.margin:
                labels[i] = lab
                sums.sum[lab] += x[i]
                if lab >= first:
                    j = lab - first
                    fresh[j] = sums.sum[lab] / (np.linalg.norm(sums.sum[lab]) or 1.0)
            elif e1 > rule.seed:
                labels[i] = sums.seed(x[i])
                fresh[k] = x[i]
    return labels


def _settle(x: np.ndarray, labels: np.ndarray, base: np.ndarray, rule: _Rule
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every assigned face that breaks the invariant against the centroids made unknown, until none does;
    the labels, each face's distance to its identity's centroid (nan: unknown) and the centroids."""
    m0 = len(base)
    while True:
        cents = _unit(_group_sum(base, labels, x))
        on = np.flatnonzero(labels >= 0)
        best, d1, d2 = _nearest2(x[on], cents)
        own = 1.0 - np.einsum("ij,ij->i", x[on], cents[labels[on]])
        other = np.where(best == labels[on], d2, d1)
        bad = (own > rule.threshold + EPS) | (other - own < rule.margin - EPS)
        if not bad.any():
            dist = np.full(len(x), np.nan, dtype=np.float32)
            dist[on] = np.maximum(own, 0.0)
            return labels, dist, cents
        labels = labels.copy()
        labels[on[bad]] = UNKNOWN
        labels = _compact(labels, m0)


def assign_identities(vectors: np.ndarray, centroids: np.ndarray, counts: np.ndarray, threshold: float, *,
                      margin: float = 0.0, seed: float | None = None, order: np.ndarray | None = None,
                      chunk: int = CHUNK, passes: int = PASSES
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """New faces ``vectors`` (n, d) grouped into the identities ``centroids`` (m, d; unit) of ``counts`` faces.

    Returns the label of every new vector (an index into the grown centroid list: 0..m-1 are the existing
    identities, never renumbered; m.. the new ones, in the order they were seeded; :data:`UNKNOWN` for a face
    that joins none), its cosine distance to its identity's final centroid (nan: unknown), the new centroids
    (unit means) and the new counts. ``margin`` and ``seed``: see the module's docstring (``margin=0``,
    ``seed=threshold``: every face joins its nearest identity within the threshold or seeds one). ``order``
    (indices into ``vectors``) is the order faces are taken in; the best first.
    """
    rule = _Rule(threshold, margin, seed)
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
    base = sums.sum[:m0].copy()
    labels = _compact(_seed_pass(x, order, sums, rule, chunk), m0)
    cents = _unit(_group_sum(base, labels, x))
    for _ in range(passes):
        best, d1, d2 = _nearest2(x, cents)
        labels = _compact(np.where(rule.joins(d1, d2), best, UNKNOWN), m0)
        cents = _unit(_group_sum(base, labels, x))
    labels, dist, cents = _settle(x, labels, base, rule)
    added = np.bincount(labels[labels >= 0], minlength=len(cents))
    new_counts = np.concatenate([n0, np.zeros(len(cents) - m0, np.int64)]) + added
    return labels, dist, cents.astype(np.float32), new_counts


def _group_sum(base: np.ndarray, labels: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``base`` (the existing identities' sums) grown to every label, plus the sum of ``x`` per label
    (UNKNOWN labels left out)."""
    on = labels >= 0
    labels, x = labels[on], x[on]
    total = np.zeros((max(len(base), int(labels.max(initial=-1)) + 1), x.shape[1]), dtype=np.float64)
    total[:len(base)] = base
    if len(labels):
        o = np.argsort(labels, kind="stable")
        ls = labels[o]
        starts = np.flatnonzero(np.r_[True, ls[1:] != ls[:-1]])
        total[ls[starts]] += np.add.reduceat(x[o].astype(np.float64), starts, axis=0)
    return total


def _compact(labels: np.ndarray, m0: int) -> np.ndarray:
    """New identities left without faces dropped; the others renumbered from ``m0`` in order of index;
    UNKNOWN kept."""
    new = np.unique(labels[labels >= m0])
    remap = np.arange(max(int(labels.max(initial=m0 - 1)), m0 - 1) + 2, dtype=np.int64)   # last: UNKNOWN
    remap[-1] = UNKNOWN
    remap[new] = m0 + np.arange(len(new))
    return remap[labels]


def cluster_embeddings(vectors: np.ndarray, threshold: float, *, margin: float = 0.0, seed: float | None = None,
                       order: np.ndarray | None = None) -> np.ndarray:
    """Labels 0..k-1 (UNKNOWN: no clear identity) of ``vectors`` grouped from scratch (:func:`assign_identities`
    with no identities)."""
    v = np.asarray(vectors, dtype=np.float32)
    d = v.shape[1] if v.ndim == 2 else 0
    return assign_identities(v, np.zeros((0, d), np.float32), np.zeros(0, np.int64), threshold, margin=margin,
                             seed=seed, order=order)[0]


def pair_precision_recall(labels: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Precision and recall over all pairs of faces put in one cluster (exact, from the contingency counts):
    precision = pairs sharing a cluster and a truth label / pairs sharing a cluster; recall = ... / pairs
    sharing a truth label. An UNKNOWN face shares a cluster with no face: it adds no predicted pair, and
    its true pairs count as missed. 1.0 where there is no pair to count."""
    labels, truth = np.asarray(labels), np.asarray(truth)
    labels = np.where(labels == UNKNOWN, -1 - np.arange(len(labels)), labels)   # each unknown face alone

    def pairs(counts: np.ndarray) -> float:
        c = counts.astype(np.float64)
        return float((c * (c - 1) / 2).sum())

    if len(labels) == 0:
        return 1.0, 1.0
    _, joint = np.unique(np.stack([np.unique(labels, return_inverse=True)[1],
                                   np.unique(truth, return_inverse=True)[1]]), axis=1, return_counts=True)
    both = pairs(joint)
    predicted = pairs(np.unique(labels, return_counts=True)[1])
    true = pairs(np.unique(truth, return_counts=True)[1])
    return (both / predicted if predicted else 1.0), (both / true if true else 1.0)


def pair_scores(labels: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Pair precision (pairs of assigned faces), recall over every labelled face (an unknown face's pairs are
    missed) and over the assigned faces only, and the share of faces left unknown."""
    labels, truth = np.asarray(labels), np.asarray(truth)
    on = labels != UNKNOWN
    precision, recall_all = pair_precision_recall(labels, truth)
    return {"precision": precision, "recall_all": recall_all,
            "recall_assigned": pair_precision_recall(labels[on], truth[on])[1],
            "unknown": float(np.mean(~on)) if len(labels) else 0.0}
