#!/usr/bin/env python
"""Choose dlib's identity threshold and margin (raycurate/people/cluster.py) on the TUNING data only.

Tuning data (never the held-apart LFW set in tests/data/images/lfw_heldout, never deepface's test photos):
  - tests/identity_data.py's labelled photos (tests/data: obama, biden, hopper, collins, cameraman);
  - face_recognition's example photos (MIT), read from a git mirror of github.com/ageitgey/face_recognition
    (--fr-repo, default /work/.mirror/ageitgey+face_recognition/repo): the one-person photos of
    examples/knn_examples/train/<person>/ and test/, and examples/*.jpg|png, labelled by folder or file name;
  - facenet-pytorch's data/test_images/<person>/1.jpg (MIT; --fn-repo, default
    /work/.mirror/timesler+facenet-pytorch/repo).
Byte-identical files are taken once. Every photo and 10 seeded augmented copies of it (identity_data.augment,
seed 0) go through raycurate's own CenterFace + dlib analysers; the largest face of each is kept.

THE RULE (written before the sweep was run):
  1. For every grid point t in 0.040..0.140 and m in 0.000..0.080 (steps 0.0025), the faces are clustered
     with cluster_embeddings(x, t, margin=m) (seed distance t + m) in 5 orders: as listed, and 4 seeded
     random permutations (seeds 1..4).
  2. Scores are pair precision (pairs of assigned faces) and pair recall over every labelled face (an
     unknown face's pairs are missed), with each person's faces weighted 1 / (that person's faces): every
     person counts the same, as in a balanced set (the tuning set is not: obama has 99 faces, most people 11).
     Per grid point: the worst score over the 5 orders.
  3. A grid point is feasible when worst precision >= 0.99 and worst recall >= 0.98.
  4. The chosen (t, m) is the feasible point farthest from any infeasible one (Chebyshev distance, cosine
     units; m < 0 counts as infeasible, points beyond the grid's other edges are not counted: the grid is
     wide enough that the feasible region does not reach them, which the script checks). Ties: the smaller t,
     then the larger m.

Result (the committed defaults people.threshold_dlib / people.margin_dlib): 35 tuning photos of 13 people,
368 faces embedded (17 copies' faces under min_face_px). The feasible region is a narrow diagonal band,
t + m in 0.0775..0.08, t 0.06..0.075: above it angelina_jolie and kate_siegel (centroids 0.077 apart) merge,
or one of them cannot seed and stays unknown; below t 0.06 alex_lacamoire's three photos split. Every feasible
point is 0.0025 from an infeasible one, so the tie-break decides: threshold 0.06, margin 0.0175 (worst weighted
precision 1.0, recall 0.9984, at most 1 face of 368 unknown). The band is this narrow because most tuning people
have a single photo (their 11 faces are copies of it): the choice is cautious on t, not proven robust.

Usage: python scripts/tune_identities.py [--cache vectors.npz] [--fr-repo DIR] [--fn-repo DIR]
"""
from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raycurate.people.cluster import UNKNOWN, cluster_embeddings  # noqa: E402
from tests import identity_data as data  # noqa: E402

FR_REPO = "/work/.mirror/ageitgey+face_recognition/repo"
FN_REPO = "/work/.mirror/timesler+facenet-pytorch/repo"
FR_PHOTOS = {   # one-person photos of face_recognition's examples (path in the repo -> person)
    "examples/knn_examples/train/alex_lacamoire/img1.jpg": "alex_lacamoire",
    "examples/knn_examples/train/biden/biden.jpg": "biden",
    "examples/knn_examples/train/biden/biden2.jpg": "biden",
    "examples/knn_examples/train/kit_harington/john1.jpeg": "kit_harington",
    "examples/knn_examples/train/kit_harington/john2.jpeg": "kit_harington",
    "examples/knn_examples/train/obama/obama.jpg": "obama",
    "examples/knn_examples/train/obama/obama2.jpg": "obama",
    "examples/knn_examples/train/rose_leslie/img1.jpg": "rose_leslie",
    "examples/knn_examples/train/rose_leslie/img2.jpg": "rose_leslie",
    "examples/knn_examples/test/alex_lacamoire1.jpg": "alex_lacamoire",
    "examples/knn_examples/test/johnsnow_test1.jpg": "kit_harington",
    "examples/knn_examples/test/obama1.jpg": "obama",
    "examples/alex-lacamoire.png": "alex_lacamoire",
    "examples/lin-manuel-miranda.png": "lin_manuel_miranda",
    "examples/obama-720p.jpg": "obama",   # the 240p/480p/1080p files are the same photo, resized
    "examples/obama_small.jpg": "obama",
}
FN_PEOPLE = ("angelina_jolie", "kate_siegel", "paul_rudd", "shea_whigham")   # bradley_cooper: not in the mirror
COPIES = 10
T_GRID = np.round(np.arange(0.040, 0.14001, 0.0025), 4)
M_GRID = np.round(np.arange(0.000, 0.08001, 0.0025), 4)
ORDERS = 5
MIN_PRECISION, MIN_RECALL = 0.99, 0.98


def _git_show(repo: str, path: str) -> bytes:
    return subprocess.run(["git", "-C", repo, "show", f"HEAD:{path}"], capture_output=True, check=True).stdout


def tuning_photos(fr_repo: str, fn_repo: str) -> list[tuple[str, str, bytes]]:
    """(name, person, bytes) of every tuning photo, byte-identical files once."""
    items = [(f"tests:{p.name}", person, p.read_bytes()) for p, person in data.LABELS.items()]
    items += [(f"face_recognition:{p}", person, _git_show(fr_repo, p)) for p, person in FR_PHOTOS.items()]
    items += [(f"facenet-pytorch:{p}", p, _git_show(fn_repo, f"data/test_images/{p}/1.jpg")) for p in FN_PEOPLE]
    seen: set[str] = set()
    out = []
    for name, person, raw in items:
        h = hashlib.sha1(raw).hexdigest()
        if h not in seen:
            seen.add(h)
            out.append((name, person, raw))
    return out


def embed(photos: list[tuple[str, str, bytes]]) -> data.Embedded:
    from raycurate.decode import decode_image

    faces, res = data.RealFaces(), data.Embedded()
    for name, person, raw in photos:
        img = decode_image(raw).rgb
        box = faces.largest_box(img)
        images = [img] + [data.augment(img, name, i, seed=0, box=box)[0] for i in range(COPIES)]
        for i, (vec, why) in enumerate(faces.vectors(images)):
            data._add(res, f"{name}#{i}", person, vec, why)
    return res


def weighted_pair_scores(labels: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Pair precision (assigned faces) and recall (every face) with face weights 1 / (its person's faces)."""
    _, t, per = np.unique(truth, return_inverse=True, return_counts=True)
    w = 1.0 / per[t]
    same_truth = t[:, None] == t[None, :]
    same_label = (labels[:, None] == labels[None, :]) & (labels[:, None] != UNKNOWN)
    pw = np.triu(w[:, None] * w[None, :], k=1)
    tp = float((pw * (same_truth & same_label)).sum())
    pred, real = float((pw * same_label).sum()), float((pw * same_truth).sum())
    return (tp / pred if pred else 1.0), (tp / real if real else 1.0)


def sweep(x: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Worst precision and recall over the orders, and the largest unknown share, per (t, m)."""
    orders = [np.arange(len(x))] + [np.random.default_rng(s).permutation(len(x)) for s in range(1, ORDERS)]
    P = np.ones((len(T_GRID), len(M_GRID)))
    R = np.ones_like(P)
    U = np.zeros_like(P)
    for a, t in enumerate(T_GRID):
        for b, m in enumerate(M_GRID):
            for order in orders:
                labels = cluster_embeddings(x, float(t), margin=float(m), order=order)
                p, r = weighted_pair_scores(labels, truth)
                P[a, b], R[a, b] = min(P[a, b], p), min(R[a, b], r)
                U[a, b] = max(U[a, b], float(np.mean(labels == UNKNOWN)))
    return P, R, U


def choose(feasible: np.ndarray) -> tuple[int, int, float]:
    """Rule step 4: the grid indices of the chosen point and its distance to the nearest infeasible point."""
    step = float(T_GRID[1] - T_GRID[0])
    bad = [(a, b) for a in range(feasible.shape[0]) for b in range(feasible.shape[1]) if not feasible[a, b]]
    bad += [(a, -1) for a in range(feasible.shape[0])]   # m < 0
    best = None
    for a, b in zip(*np.nonzero(feasible)):
        r = min(max(abs(a - i), abs(b - j)) for i, j in bad) * step
        key = (-r, T_GRID[a], -M_GRID[b])
        if best is None or key < best[0]:
            best = (key, int(a), int(b), r)
    if best is None:
        raise SystemExit("no feasible grid point")
    return best[1], best[2], best[3]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, help="npz of the tuning vectors: read when present, else written")
    ap.add_argument("--fr-repo", default=FR_REPO)
    ap.add_argument("--fn-repo", default=FN_REPO)
    args = ap.parse_args(argv)
    start = time.perf_counter()
    if args.cache and args.cache.exists():
        z = np.load(args.cache)
        names, truth, x = list(z["names"]), z["people"], z["vectors"]
        print(f"tuning vectors from {args.cache}")
    else:
        photos = tuning_photos(args.fr_repo, args.fn_repo)
        emb = embed(photos)
        print(f"{len(photos)} tuning photos, {COPIES} copies each: {len(emb.vectors)} faces embedded, "
              f"{len(emb.missing)} not ({sorted({w.split(':')[0] for _, w in emb.missing})})")
        names, truth, x = emb.names, emb.truth, emb.matrix
        if args.cache:
            np.savez(args.cache, names=np.array(names), people=truth, vectors=x)
    people, counts = np.unique(truth, return_counts=True)
    print(f"{len(people)} people: " + ", ".join(f"{p} {c}" for p, c in zip(people, counts)))
    P, R, U = sweep(x, truth)
    feasible = (P >= MIN_PRECISION) & (R >= MIN_RECALL)
    print(f"\nfeasible (worst of {ORDERS} orders: weighted precision >= {MIN_PRECISION}, recall >= {MIN_RECALL}): "
          "'#'; rows t, columns m = " + " ".join(f"{m:g}" for m in M_GRID[::4]) + " (every 4th labelled)")
    for a, t in enumerate(T_GRID):
        print(f"  t {t:.4f}  " + "".join("#" if f else "." for f in feasible[a]))
    edge = feasible[0].any() or feasible[-1].any() or feasible[:, -1].any()
    print(f"feasible region reaches the grid's t or upper m edge: {'YES: widen the grid' if edge else 'no'}")
    a, b, r = choose(feasible)
    print(f"\nchosen: threshold {T_GRID[a]:.4f}, margin {M_GRID[b]:.4f} (distance to the nearest infeasible point "
          f"{r:.4f}); there: worst precision {P[a, b]:.4f}, worst recall {R[a, b]:.4f}, "
          f"largest unknown share {U[a, b]:.4f}")
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
