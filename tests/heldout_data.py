"""The held-apart identity set (tests/data/images/lfw_heldout: 10 LFW people x 10 photos, README there) run
through raycurate's own CenterFace + dlib analysers and its identity clustering, for
``scripts/eval_heldout_identities.py`` and tests/test_identity_heldout.py.

The set is never used to choose a threshold or a margin: the defaults are those committed before it was
first scored (scripts/tune_identities.py). Each photo's labelled face is the detected face whose box centre
is nearest the image centre (LFW centres every photo on the labelled person); a photo where no face is
found, or where that face gets no vector, is counted, never dropped silently.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .conftest import IMAGES
from .identity_data import Embedded, RealFaces, load_rgb

HELDOUT = IMAGES / "lfw_heldout"


def photos() -> list[tuple[Path, str]]:
    """(path, person) of every held-apart photo, in name order."""
    return [(p, p.parent.name) for p in sorted(HELDOUT.glob("*/*.jpg"))]


@dataclass
class Centred(Embedded):
    sharpness: list[float] = field(default_factory=list)    # the face's sharpness (a run orders by it)
    photos: int = 0
    faces_found: int = 0                                     # photos where CenterFace found any face
    missing_people: list[str] = field(default_factory=list)  # the person of each photo in ``missing``


def embed(faces: RealFaces, items: Sequence[tuple[Path, str]]) -> Centred:
    res = Centred(photos=len(items))
    for path, person in items:
        img = load_rgb(path)
        det = faces.detect({"image": [img], "error": [None]})
        if det.get("face_error", [None])[0] or not det["face_count"][0]:
            res.missing.append((path.name, det.get("face_error", [None])[0] or "no face detected"))
            res.missing_people.append(person)
            continue
        res.faces_found += 1
        k = int(np.argmin([((b[0] + b[2]) / 2 - 0.5) ** 2 + ((b[1] + b[3]) / 2 - 0.5) ** 2
                           for b in det["face_boxes"][0]]))
        out = faces.embed(det)
        vec = None if out["face_features_error"][0] else out["face_embeddings"][0][k]
        if vec is None:
            res.missing.append((path.name, out["face_features_error"][0] or out["face_embedding_reasons"][0][k]))
            res.missing_people.append(person)
            continue
        res.names.append(path.name)
        res.people.append(person)
        res.vectors.append(np.asarray(vec, dtype=np.float64))
        res.sharpness.append(float(det["face_sharpness"][0][k] or 0.0))
    return res


def evaluate(emb: Centred, threshold: float, margin: float, order: np.ndarray | None = None) -> dict[str, Any]:
    """Cluster the faces (sharpest first unless ``order``) and score the identities against the labels.

    precision: pairs of assigned faces in one identity that are one person / pairs of assigned faces in one
    identity. recall_all: ... / pairs of labelled photos of one person, over every photo (an unknown face, and
    a photo with no vector, misses all its pairs); recall_faces: the same over the embedded faces;
    recall_assigned: over the assigned faces only."""
    from raycurate.people.cluster import UNKNOWN, cluster_embeddings, pair_precision_recall, pair_scores

    x, truth = emb.matrix, emb.truth
    order = np.argsort(-np.asarray(emb.sharpness), kind="stable") if order is None else order
    labels = cluster_embeddings(x, threshold, margin=margin, order=order)
    scores = pair_scores(labels, truth)
    all_truth = np.array(list(truth) + emb.missing_people)
    all_labels = np.concatenate([labels, np.full(len(emb.missing_people), UNKNOWN)])
    _, recall_all = pair_precision_recall(all_labels, all_truth)
    ids = sorted(set(labels[labels != UNKNOWN].tolist()))
    merged = {i: sorted(set(truth[labels == i].tolist())) for i in ids}
    split = {p: sorted(set(labels[(truth == p) & (labels != UNKNOWN)].tolist())) for p in sorted(set(truth.tolist()))}
    return {"photos": emb.photos, "faces_found": emb.faces_found, "embedded": len(emb.vectors),
            "unknown": int((labels == UNKNOWN).sum()), "identities": len(ids), "labels": labels,
            "precision": scores["precision"], "recall_all": recall_all, "recall_faces": scores["recall_all"],
            "recall_assigned": scores["recall_assigned"],
            "merged": {i: ps for i, ps in merged.items() if len(ps) > 1},
            "split": {p: ls for p, ls in split.items() if len(ls) > 1},
            "unknown_per_person": {p: int(((truth == p) & (labels == UNKNOWN)).sum()) for p in sorted(set(truth))}}
