"""Near-duplicate pairs of a whole vector column by blockwise search inside partitions (numpy, no index).

The column is read once (:func:`read_vectors`: Arrow batches into one float32 matrix, rows scaled to unit
length, so cosine distance is ``1 - a.b``). :func:`block_pairs` then

1. fits a PCA (``pca_dims``) on a sample, used only to partition (a projection never lengthens a distance);
2. runs a few k-means iterations on the sample's projections: one centroid per ~``partition_rows`` rows;
3. assigns every row to its nearest centroid (in the projection) and lists its *probes*: its next-nearest
   partitions, in order, while their bisector with its own lies within ``cut`` of it (``max_probes`` at
   most). Two rows within cosine distance ``t`` are ``|a - b| <= r = sqrt(2 t)`` apart, and if a boundary
   separates them, each lies within ``r`` of that bisector. Probing every partition within ``r`` would be
   exact but, in 512 dimensions, means probing most of them; so ``cut`` is ``probe_sigmas`` standard
   deviations of one direction's share of such an offset (``r / sqrt(dim)``, the offset taken as random):
   a pair is missed only when a boundary that neither of its rows probes separates them (the bench:
   recall 1.0 at 100k and 1M planted pairs);
4. per partition, multiplies its members by its members and probers in float32 at full dimension (BLAS, in
   row chunks over the upper triangle) and keeps every pair with ``a.b >= 1 - t``: every distance is exact.
   With ``per_row``, a row keeps its ``per_row`` nearest hits of a chunk (a clump of thousands of identical
   frames would otherwise yield millions of pairs; those kept still join the clump).

Cost: ~``2 d n (sum of partition sizes squared / 2n + probes per row x partition size)`` flops for the search
(BLAS on both cores), plus the projection and assignment in ``pca_dims`` dimensions. With ``scope`` (a mask)
only pairs with at least one row in scope are computed, and partitions without one are skipped.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

import numpy as np

CHUNK = 256          # member rows multiplied at a time (upper triangle in steps of this)
ASSIGN_ROWS = 2048   # rows projected and assigned at a time


@dataclass
class BlockPairs:
    """Pairs ``(i[k], j[k])`` (row indices, ``i < j``) at cosine distance ``dist[k]``; how they were found."""

    i: np.ndarray
    j: np.ndarray
    dist: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        s = self.stats
        return (f"block ({s['partitions']} partitions of <= {s['largest']} rows, {s['probes_per_row']:.2f} "
                f"probes/row, {s['capped']} rows capped at {s['max_probes']})")


def unit_rows(x: np.ndarray) -> None:
    """Scale the rows of ``x`` to unit length in place (zero rows stay zero)."""
    norm = np.sqrt(np.einsum("ij,ij->i", x, x))
    norm[norm == 0] = 1.0
    x /= norm[:, None]


def read_vectors(table: Any, column: str, where: str, keys: list[str]) -> tuple[Any, np.ndarray]:
    """The ``keys`` columns (an Arrow table) and ``column``'s vectors (float32, unit rows, one matrix) of the
    rows ``where`` selects that have a vector, streamed batch by batch: no full Arrow copy is held."""
    import pyarrow as pa

    where = f"({where}) AND {column} IS NOT NULL"
    n = table.count_rows()            # an upper bound, from the metadata: pages never written cost no memory
    dim = table.schema.field(column).type.list_size
    x = np.empty((n, dim), dtype=np.float32)
    parts = []
    at = 0
    reader = table.search().where(where).select([*keys, column]).limit(None).to_batches()
    for batch in reader:
        m = batch.num_rows
        if at + m > n:                     # rows added since the count: left for the next dedup
            m = n - at
            batch = batch.slice(0, m)
        values = batch.column(column).flatten().to_numpy(zero_copy_only=False)
        x[at:at + m] = values.reshape(m, dim)
        unit_rows(x[at:at + m])
        parts.append(batch.select(keys))
        at += m
        if at == n:
            break
    keys_table = pa.Table.from_batches(parts, schema=pa.schema([table.schema.field(k) for k in keys])) \
        if parts else pa.table({k: pa.array([], table.schema.field(k).type) for k in keys})
    return keys_table, x[:at]


def compact_rows(x: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``x[keep]`` for ascending ``keep``, written over ``x`` in place (no second full copy)."""
    for s in range(0, len(keep), 65536):
        x[s:s + 65536][: len(keep[s:s + 65536])] = x[keep[s:s + 65536]]
    return x[: len(keep)]


class _Projection:
    """PCA of a sample, used only to partition; rows come out with a trailing 1 (homogeneous coordinates), so
    one matmul with :meth:`centroid_matrix` gives squared distances to every centroid (less ``|y|^2``)."""

    def __init__(self, sample: np.ndarray, dims: int) -> None:
        mean = sample.mean(axis=0, dtype=np.float64)
        centred = sample - mean.astype(np.float32)
        _, vecs = np.linalg.eigh((centred.T @ centred).astype(np.float64))
        self.axes = np.ascontiguousarray(vecs[:, ::-1][:, :dims], dtype=np.float32)
        self.shift = (mean @ self.axes).astype(np.float32)

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        y = np.empty((len(rows), self.axes.shape[1] + 1), dtype=np.float32)
        np.matmul(rows, self.axes, out=y[:, :-1])
        y[:, :-1] -= self.shift
        y[:, -1] = 1.0
        return y

    @staticmethod
    def centroid_matrix(c: np.ndarray) -> np.ndarray:
        """``[-2 c^T; |c|^2]`` for centroids ``c`` (their trailing 1 dropped)."""
        c = c[:, :-1]
        return np.ascontiguousarray(np.vstack([-2.0 * c.T, np.einsum("ij,ij->i", c, c)[None, :]]), np.float32)


def _kmeans(y: np.ndarray, k: int, iters: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` centroids of the projected rows ``y`` by Lloyd's iterations (empty ones re-seeded at random)."""
    c = y[rng.choice(len(y), size=k, replace=False)].copy()
    own = np.empty(len(y), dtype=np.int64)
    for _ in range(iters):
        cm = _Projection.centroid_matrix(c)
        for s in range(0, len(y), ASSIGN_ROWS):          # in chunks: a small product, reused memory
            own[s:s + ASSIGN_ROWS] = (y[s:s + ASSIGN_ROWS] @ cm).argmin(axis=1)
        order = np.argsort(own, kind="stable")
        counts = np.bincount(own, minlength=k)
        full = counts > 0
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[full]
        c[full] = np.add.reduceat(y[order], starts, axis=0) / counts[full, None]
        c[~full] = y[rng.choice(len(y), size=int((~full).sum()), replace=False)]
    return c


def _assign(x: np.ndarray, project: _Projection, c: np.ndarray, cut: float, max_probes: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Each row's partition (nearest centroid), and its probes as (row, partition) arrays: its next-nearest
    partitions, in order, while their bisector with its own lies within ``cut`` of it, ``max_probes`` at most;
    and how many rows had more."""
    cm = _Projection.centroid_matrix(c)
    cc = c[:, :-1]
    gap = 2.0 * np.sqrt(np.maximum(cm[-1][:, None] + cm[-1][None, :] - 2.0 * (cc @ cc.T), 1e-24))  # 2|ci - cj|
    own = np.empty(len(x), dtype=np.int64)
    rows, parts = [], []
    capped = 0
    for s in range(0, len(x), ASSIGN_ROWS):
        e = project(x[s:s + ASSIGN_ROWS]) @ cm          # squared distances less |y|^2
        at = np.arange(len(e))
        mine = e.argmin(axis=1)
        own[s:s + len(e)] = mine
        e1 = e[at, mine]
        e[at, mine] = np.inf
        idx = at                                            # rows still probing (positions in the chunk)
        for probe in range(max_probes + 1):
            at = np.arange(len(idx))
            nxt = e.argmin(axis=1)
            ok = (e[at, nxt] - e1) <= cut * gap[mine, nxt]      # that bisector lies within cut
            if probe == max_probes or not ok.any():
                capped += int(np.count_nonzero(ok)) if probe == max_probes else 0
                break
            idx, e, e1, mine, nxt = idx[ok], e[ok], e1[ok], mine[ok], nxt[ok]
            rows.append(idx + s)
            parts.append(nxt)
            e[np.arange(len(idx)), nxt] = np.inf
    none = np.zeros(0, dtype=np.int64)
    return own, np.concatenate([none, *rows]), np.concatenate([none, *parts]), capped


@lru_cache(maxsize=4)
def _lower(m: int) -> tuple[np.ndarray, np.ndarray]:
    return np.tril_indices(m)


def _hits(sims: np.ndarray, sim: float, per_row: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of the entries ``>= sim``; with ``per_row``, each row's largest ``per_row`` at most."""
    a, b = np.nonzero(sims >= sim)
    if per_row is not None and len(a) > per_row and np.bincount(a).max() > per_row:
        order = np.lexsort((-sims[a, b], a))
        a, b = a[order], b[order]
        rank = np.arange(len(a)) - np.searchsorted(a, a)
        a, b = a[rank < per_row], b[rank < per_row]
    return a, b


def _search(x: np.ndarray, members: np.ndarray, probers: np.ndarray, scope: np.ndarray | None, sim: float,
            per_row: int | None, out: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> int:
    """Pairs of one partition (members x members, members x probers) with ``a.b >= sim``; the flops spent."""
    if scope is not None:
        ms, mn = members[scope[members]], members[~scope[members]]
        qs = probers[scope[probers]]
        members = np.concatenate([ms, mn])
    else:
        ms, mn, qs = members, members[:0], probers[:0]
    rows = np.concatenate([members, probers])
    xr = np.take(x, rows, axis=0)
    flops = 0
    for s in range(0, len(ms), CHUNK):          # scope members against every later row
        e = min(len(ms), s + CHUNK)
        sims = xr[s:e] @ xr[s:].T
        flops += sims.size
        sims[:, :e - s][_lower(e - s)] = -2.0               # itself, and the pairs of an earlier row
        if sims.max() >= sim:                               # most blocks hold no pair: one pass says so
            a, b = _hits(sims, sim, per_row)
            out.append((rows[s + a], rows[s + b], sims[a, b]))
    if len(mn) and len(qs):                     # members out of scope against probers in scope
        sims = np.take(x, mn, axis=0) @ np.take(x, qs, axis=0).T
        flops += sims.size
        if sims.max() >= sim:
            a, b = _hits(sims, sim, per_row)
            out.append((mn[a], qs[b], sims[a, b]))
    return flops * x.shape[1] * 2


def block_pairs(x: np.ndarray, threshold: float, *, scope: np.ndarray | None = None, partition_rows: int = 500,
                pca_dims: int = 64, sample_rows: int = 50_000, iters: int = 6, probe_sigmas: float = 3.0,
                max_probes: int = 8, per_row: int | None = None, seed: int = 0,
                progress: Callable[[str], None] | None = None) -> BlockPairs:
    """Every pair of rows of ``x`` (unit rows, float32) within cosine distance ``threshold`` (each pair once,
    ``i < j``), with at least one row in ``scope`` (a boolean mask; None: all rows); ``per_row``: at most
    that many per row and block."""
    t0 = time.perf_counter()
    n, dim = x.shape
    stats: dict[str, Any] = {"rows": n, "max_probes": max_probes, "capped": 0}
    sim = np.float32(1.0 - threshold)
    k = max(1, round(n / partition_rows))
    if k < 4 or dim <= 2:
        own, prow, ppart, k = np.zeros(n, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, np.int64), 1
    else:
        rng = np.random.default_rng(seed)
        sample = x[np.sort(rng.choice(n, size=min(n, max(sample_rows, 25 * k)), replace=False))]
        project = _Projection(sample, min(pca_dims, dim))
        centroids = _kmeans(project(sample), k, iters, rng)
        del sample
        stats["fit_s"] = round(time.perf_counter() - t0, 3)
        # a pair's offset (length <= r) has ~r / sqrt(dim) along any one direction: probe within probe_sigmas
        cut = probe_sigmas * math.sqrt(2.0 * max(threshold, 0.0)) / math.sqrt(dim)
        own, prow, ppart, stats["capped"] = _assign(x, project, centroids, cut, max_probes)
    stats["assign_s"] = round(time.perf_counter() - t0, 3)
    order = np.argsort(own, kind="stable")
    bounds = np.searchsorted(own[order], np.arange(k + 1))
    porder = np.argsort(ppart, kind="stable")
    prow, pbounds = prow[porder], np.searchsorted(ppart[porder], np.arange(k + 1))
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    flops = 0
    step = max(1, k // 10)
    for p in range(k):
        members, probers = order[bounds[p]:bounds[p + 1]], prow[pbounds[p]:pbounds[p + 1]]
        if scope is None or scope[members].any() or scope[probers].any():
            flops += _search(x, members, probers, scope, sim, per_row, out)
        if progress is not None and k >= 20 and (p + 1) % step == 0 and p + 1 < k:
            progress(f"{p + 1:,}/{k:,} partitions searched, {sum(len(o[0]) for o in out):,} pairs so far")
    i, j, dist = _unique_pairs(out, n)
    sizes = np.diff(bounds)
    stats.update(partitions=k, largest=int(sizes.max()), probes_per_row=round(len(prow) / max(1, n), 3),
                 gflops=round(flops / 1e9, 1), pairs=len(i), seconds=round(time.perf_counter() - t0, 3))
    return BlockPairs(i, j, dist, stats)


def _unique_pairs(out: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs found, each once (a pair across two partitions can be found from both), ``i < j``."""
    if not out:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    a = np.concatenate([o[0] for o in out])
    b = np.concatenate([o[1] for o in out])
    sims = np.concatenate([o[2] for o in out])
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    _, first = np.unique(lo * n + hi, return_index=True)
    return lo[first], hi[first], np.maximum(1.0 - sims[first].astype(np.float64), 0.0)
