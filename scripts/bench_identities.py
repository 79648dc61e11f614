#!/usr/bin/env python
"""Speed and quality of the identity clustering (raycurate/people/cluster.py) on synthetic faces.

k people are Gaussian clusters on the unit sphere in 128-d, like dlib vectors: people's centres share a
common direction so that two different people sit ~0.2 apart in cosine distance (dlib: Euclidean ~0.9 on
vectors of norm ~1.39), and each person's faces scatter so that two faces of one person are ~0.06 apart
(the script prints the share under the threshold). Per size: ``cluster_embeddings`` from scratch (faces
in random order), then an incremental second batch of 10% more faces (half of known people, half of new
ones) through ``assign_identities`` against the first batch's centroids. Pair precision and recall are
exact (from the contingency counts, every pair), printed for both.

    python scripts/bench_identities.py [--sizes 10000 100000] [--faces-per-person 100] [--seed 0]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from raycurate.people.cluster import UNKNOWN, assign_identities, cluster_embeddings, pair_precision_recall
from raycurate.people.identities import margins_of, thresholds_of

D = 128
SPREAD = 0.53     # people's centres around the common direction: cosine distance ~0.22 between people
NOISE = 0.0217    # per dimension: two faces of one person ~0.06 apart


def people(k: int, rng: np.random.Generator) -> np.ndarray:
    common = rng.normal(size=D)
    common /= np.linalg.norm(common)
    c = common + SPREAD * rng.normal(size=(k, D)) / np.sqrt(D)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def faces(centres: np.ndarray, truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    scale = NOISE * rng.uniform(0.7, 1.3, size=len(centres))[truth, None]   # some people vary more
    return (1.39 * (centres[truth] + scale * rng.normal(size=(len(truth), D)))).astype(np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return 1.0 - np.sum(a * b, axis=1)


def bench(n: int, per: int, threshold: float, margin: float, rng: np.random.Generator) -> None:
    k = max(2, n // per)
    centres = people(k + k // 10, rng)
    truth = rng.integers(0, k, n)
    x = faces(centres, truth, rng)
    i, j = rng.integers(0, n, (2, 200_000))
    same, diff = truth[i] == truth[j], truth[i] != truth[j]
    d = cosine(x[i], x[j])
    print(f"\n{n} faces, {k} people, threshold {threshold}, margin {margin}:"
          f" same-person distance median {np.median(d[same & (i != j)]):.3f}"
          f" ({np.mean(d[same & (i != j)] <= threshold):.1%} <= threshold), different people median "
          f"{np.median(d[diff]):.3f} (min {d[diff].min():.3f})")
    t = time.perf_counter()
    labels = cluster_embeddings(x, threshold, margin=margin)
    s = time.perf_counter() - t
    p, r = pair_precision_recall(labels, truth)
    print(f"  cluster_embeddings: {s:.2f} s, {labels.max() + 1} identities, {(labels == UNKNOWN).sum()} faces "
          f"unknown, pair precision {p:.4f} recall {r:.4f} (an unknown face's pairs missed)")

    m = n // 10
    truth2 = np.concatenate([rng.integers(0, k, m - m // 2), rng.integers(k, k + k // 10, m // 2)])
    x2 = faces(centres, truth2, rng)
    x_unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    on = labels != UNKNOWN
    cents = np.zeros((labels.max() + 1, D))
    np.add.at(cents, labels[on], x_unit[on])
    counts = np.bincount(labels[on], minlength=len(cents))
    cents /= np.linalg.norm(cents, axis=1, keepdims=True)
    order = np.argsort(-rng.uniform(size=m))   # stands for sharpness
    t = time.perf_counter()
    labels2, _, c2, _ = assign_identities(x2, cents, counts, threshold, margin=margin, order=order)
    s2 = time.perf_counter() - t
    p2, r2 = pair_precision_recall(np.concatenate([labels, labels2]), np.concatenate([truth, truth2]))
    print(f"  incremental batch of {m} faces ({m // 2} of {k // 10} new people): {s2:.2f} s, "
          f"{len(c2) - len(cents)} new identities, {(labels2 == UNKNOWN).sum()} unknown; all {n + m} faces: "
          f"pair precision {p2:.4f} recall {r2:.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--faces-per-person", type=int, default=100)
    ap.add_argument("--threshold", type=float, default=thresholds_of()["dlib"])
    ap.add_argument("--margin", type=float, default=margins_of()["dlib"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    for n in args.sizes:
        bench(n, args.faces_per_person, args.threshold, args.margin, rng)


if __name__ == "__main__":
    main()
