#!/usr/bin/env python
"""Identities on people the thresholds never saw: the held-apart set (tests/data/images/lfw_heldout: 10 LFW
people x 10 photos) through raycurate's own CenterFace + dlib analysers and its identity clustering
(raycurate.people.cluster.cluster_embeddings), with the committed defaults people.threshold_dlib and
people.margin_dlib (chosen on the tuning data only: scripts/tune_identities.py), sharpest face first as a
run orders them.

Prints: photos, faces found, faces embedded, faces unknown (in no identity), identities, pair precision
(pairs of assigned faces), pair recall over every labelled photo (an unknown face or a photo without a vector
misses all its pairs), over the embedded faces, and over the assigned faces only; which people were merged
into one identity, which were split over several, and each person's unknown faces. ``--orders N`` adds N
seeded random face orders (the spread an order makes). Target: precision >= 0.98 at recall >= 0.9 (recall
over every labelled photo).

``--threshold`` / ``--margin`` override the defaults: for a sweep AFTER the fact only (what value the set
would have needed); such numbers are measured on the held-apart set and must never become defaults.

Usage: python scripts/eval_heldout_identities.py [--orders 4] [--threshold T] [--margin M]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raycurate.people.identities import margins_of, thresholds_of  # noqa: E402
from tests import heldout_data as heldout  # noqa: E402
from tests import identity_data as data  # noqa: E402

TARGET_PRECISION, TARGET_RECALL = 0.98, 0.9


def show(r: dict, title: str) -> None:
    print(f"\n=== {title}")
    print(f"photos {r['photos']}, faces found {r['faces_found']}, embedded {r['embedded']}, unknown {r['unknown']}, "
          f"identities {r['identities']}")
    print(f"pair precision {r['precision']:.4f}; recall over every photo {r['recall_all']:.4f}, over embedded faces "
          f"{r['recall_faces']:.4f}, over assigned faces {r['recall_assigned']:.4f}")
    met = r["precision"] >= TARGET_PRECISION and r["recall_all"] >= TARGET_RECALL
    print(f"target (precision >= {TARGET_PRECISION}, recall over every photo >= {TARGET_RECALL}): "
          f"{'MET' if met else 'MISSED'}")
    print("merged: " + ("; ".join(f"identity {i}: {', '.join(ps)}" for i, ps in r["merged"].items()) or "none"))
    print("split: " + ("; ".join(f"{p} over {len(ls)} identities" for p, ls in r["split"].items()) or "none"))
    print("unknown per person: " + ", ".join(f"{p} {n}" for p, n in r["unknown_per_person"].items() if n))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=0, help="also N seeded random face orders (default 0)")
    ap.add_argument("--threshold", type=float, help="AFTER THE FACT only: override people.threshold_dlib")
    ap.add_argument("--margin", type=float, help="AFTER THE FACT only: override people.margin_dlib")
    args = ap.parse_args(argv)
    t = thresholds_of()["dlib"] if args.threshold is None else args.threshold
    m = margins_of()["dlib"] if args.margin is None else args.margin
    after = args.threshold is not None or args.margin is not None
    which = "OVERRIDDEN: measured after the fact, not the defaults" if after else "the committed defaults"
    print(f"threshold {t}, margin {m} ({which})")
    start = time.perf_counter()
    emb = heldout.embed(data.RealFaces(), heldout.photos())
    for name, why in emb.missing:
        print(f"    no vector: {name}: {why}")
    show(heldout.evaluate(emb, t, m), "sharpest face first (as a run)")
    for s in range(1, args.orders + 1):
        show(heldout.evaluate(emb, t, m, order=np.random.default_rng(s).permutation(len(emb.vectors))),
             f"random order, seed {s}")
    print(f"\n({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
