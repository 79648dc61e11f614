"""Labelled real photos of people, seeded augmentations of them, and their REAL face vectors
(CenterFace + dlib), for the identity tests and ``scripts/eval_identities.py``.

Who is who is the ground truth the photos' own projects publish (../shared/data/README.md,
tests/data/images/face_recognition/expected.json). Left out: ``exif/hopper_bad_exif.jpg`` (its corrupt
EXIF block leaves scrambled pixels, no recognisable face) and the ``negatives/``.

Augmentations keep the face in the frame: a crop is chosen around the face box found on the original.
Each copy's parameters come from a generator seeded by the photo's name, the copy's index and ``seed``,
so a copy is the same on every machine and every run. A copy whose largest face gets no vector (no face
found, or too small / too blurred for ``face_features``) is kept in :attr:`Embedded.missing` with the
reason, never silently dropped.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from .conftest import IMAGES

FR = IMAGES / "face_recognition"
FACES = IMAGES / "faces"
EXIF = IMAGES / "exif"

# path -> person. obama_partial_face*.jpg are the left / right part of obama.jpg's face; 32bit.png is
# the obama2.jpg photo as an RGBA PNG; pillow_hopper.jpg and hopper_orientation_N.jpg (after EXIF
# transposition) are the same 128 px crop of matplotlib_grace_hopper.jpg's portrait.
LABELS: dict[Path, str] = {
    FR / "obama.jpg": "obama",
    FR / "obama2.jpg": "obama",
    FR / "obama3.jpg": "obama",
    FR / "obama_partial_face.jpg": "obama",
    FR / "obama_partial_face2.jpg": "obama",
    FR / "32bit.png": "obama",
    FR / "biden.jpg": "biden",
    FACES / "matplotlib_grace_hopper.jpg": "hopper",
    FACES / "pillow_hopper.jpg": "hopper",
    **{EXIF / f"hopper_orientation_{n}.jpg": "hopper" for n in range(2, 9)},
    FACES / "skimage_astronaut.png": "collins",
    FACES / "skimage_camera.png": "cameraman",
}
# The published verification photos (face_recognition's tests).
OBAMA_BIDEN = [FR / n for n in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")]
# One file per distinct photo: the labelled set without its byte-level near-copies (32bit.png, and all
# but one of the EXIF-rotated Hopper crops).
DISTINCT = [p for p in LABELS if p.name != "32bit.png" and not
            (p.parent == EXIF and p.name != "hopper_orientation_6.jpg")]

# What tests/test_identity_real.py measures (fixed before its first run, kept small for 2 cores): copies
# 0..7 of each distinct photo, seed 0 (the same images as the first 8 of the script's copies).
TEST_COPIES = 8

AUGMENTATIONS = ("crop", "flip", "blur", "jpeg", "light", "rotate", "downscale")


def load_rgb(path: Path) -> np.ndarray:
    from raycurate.decode import decode_image

    return decode_image(path.read_bytes()).rgb   # EXIF orientation applied, alpha dropped: as a run reads it


# --- augmentations: each takes (rgb, rng, face box in pixels or None) and returns the new RGB uint8 array
# and where the face box now is (so that a later crop or rotation of the same copy still finds the face)

def crop(img: np.ndarray, rng: np.random.Generator, box):
    """A random window that still holds the whole face box plus a margin of 5-30 % of its size."""
    h, w = img.shape[:2]
    x1, y1, x2, y2 = box if box is not None else (0.3 * w, 0.3 * h, 0.7 * w, 0.7 * h)
    bw, bh = x2 - x1, y2 - y1
    m = rng.uniform(0.05, 0.3)
    inner = (max(0, x1 - m * bw), max(0, y1 - m * bh), min(w, x2 + m * bw), min(h, y2 + m * bh))
    left, top = int(rng.uniform(0, inner[0])), int(rng.uniform(0, inner[1]))
    right, bottom = int(np.ceil(rng.uniform(inner[2], w))), int(np.ceil(rng.uniform(inner[3], h)))
    moved = None if box is None else [x1 - left, y1 - top, x2 - left, y2 - top]
    return np.ascontiguousarray(img[top:bottom, left:right]), moved


def flip(img: np.ndarray, rng: np.random.Generator, box):
    w = img.shape[1]
    return np.ascontiguousarray(img[:, ::-1]), None if box is None else [w - box[2], box[1], w - box[0], box[3]]


def blur(img: np.ndarray, rng: np.random.Generator, box):
    """Mild Gaussian blur: sigma 0.5-1.5 px on a 512 px image, proportionally less on smaller ones."""
    sigma = rng.uniform(0.5, 1.5) * min(1.0, max(img.shape[:2]) / 512)
    return cv2.GaussianBlur(img, (0, 0), max(sigma, 0.3)), box


def jpeg(img: np.ndarray, rng: np.random.Generator, box):
    """Re-encoded as JPEG at quality 30-70."""
    quality = int(rng.integers(30, 71))
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), box


def light(img: np.ndarray, rng: np.random.Generator, box):
    """Contrast x0.7-1.3 around mid-grey, brightness -30..+30."""
    alpha, beta = rng.uniform(0.7, 1.3), rng.uniform(-30, 30)
    return np.clip((img.astype(np.float32) - 128.0) * alpha + 128.0 + beta, 0, 255).astype(np.uint8), box


def rotate(img: np.ndarray, rng: np.random.Generator, box):
    """-10..+10 degrees about the face centre (the image centre without a box), borders replicated."""
    h, w = img.shape[:2]
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2) if box is not None else (w / 2, h / 2)
    m = cv2.getRotationMatrix2D(centre, rng.uniform(-10, 10), 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), box


def downscale(img: np.ndarray, rng: np.random.Generator, box):
    """To 40-80 % of the size (a face that ends under ``min_face_px`` gets no vector: that is counted)."""
    s = rng.uniform(0.4, 0.8)
    h, w = img.shape[:2]
    out = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return out, None if box is None else [v * s for v in box]


OPS: dict[str, Callable[..., tuple[np.ndarray, list[float] | None]]] = {
    "crop": crop, "flip": flip, "blur": blur, "jpeg": jpeg, "light": light, "rotate": rotate, "downscale": downscale}


def recipe(name: str, index: int, seed: int) -> tuple[np.random.Generator, list[str]]:
    """Copy ``index`` of a photo: the 7 single augmentations first, then seeded mixes of 2 or 3 of them
    (applied in the order of AUGMENTATIONS)."""
    rng = np.random.default_rng([zlib.crc32(name.encode()), index, seed])
    if index < len(AUGMENTATIONS):
        return rng, [AUGMENTATIONS[index]]
    chosen = set(rng.choice(AUGMENTATIONS, size=int(rng.integers(2, 4)), replace=False).tolist())
    return rng, [a for a in AUGMENTATIONS if a in chosen]


def augment(img: np.ndarray, name: str, index: int, *, seed: int = 0,
            box: Sequence[float] | None = None) -> tuple[np.ndarray, str]:
    """Copy ``index`` of ``img`` (``box``: its largest face in pixels, found on the original) and the
    names of the augmentations applied, joined by "+"."""
    rng, ops = recipe(name, index, seed)
    out, current = img, None if box is None else [float(v) for v in box]
    for op in ops:
        out, current = OPS[op](out, rng, current)
    return out, "+".join(ops)


# --- real face vectors

@dataclass
class Embedded:
    """Vectors of the largest face of each image that got one, with their labels; the rest in ``missing``."""
    names: list[str] = field(default_factory=list)       # "<file>#<copy>:<ops>" (originals: "<file>")
    people: list[str] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)   # (name, why no vector)

    @property
    def matrix(self) -> np.ndarray:
        return np.array(self.vectors, dtype=np.float64).reshape(len(self.vectors), -1)

    @property
    def truth(self) -> np.ndarray:
        return np.array(self.people)


class RealFaces:
    """CenterFace detection then dlib's 128-d vector, through raycurate's own analysers and defaults
    (min_face_px 40, min_face_sharpness 20), as a run computes them."""

    def __init__(self) -> None:
        from raycurate.analyzers import FaceAnalyzer, FaceFeaturesAnalyzer

        self.detect = FaceAnalyzer(detector="centerface", num_cpus=1)
        self.embed = FaceFeaturesAnalyzer(embedder="dlib", num_cpus=1)

    def largest_box(self, img: np.ndarray) -> list[float] | None:
        out = self.detect({"image": [img], "error": [None]})
        if not out["face_count"][0]:
            return None
        h, w = img.shape[:2]
        b = out["face_boxes"][0][0]
        return [b[0] * w, b[1] * h, b[2] * w, b[3] * h]

    def vectors(self, images: list[np.ndarray]) -> list[tuple[np.ndarray | None, str | None]]:
        """(vector of the largest face or None, why none) per image."""
        results = []
        for img in images:   # one at a time: CenterFace batches only same-size images
            faces = self.detect({"image": [img], "error": [None]})
            if faces.get("face_error", [None])[0]:
                results.append((None, f"face analyser error: {faces['face_error'][0]}"))
                continue
            if not faces["face_count"][0]:
                results.append((None, "no face detected"))
                continue
            out = self.embed(faces)
            if out["face_features_error"][0]:
                results.append((None, f"face_features error: {out['face_features_error'][0]}"))
                continue
            vec = out["face_embeddings"][0][0]
            results.append((None, out["face_embedding_reasons"][0][0]) if vec is None
                           else (np.array(vec, dtype=np.float64), None))
        return results


def embed_originals(faces: RealFaces, paths: Sequence[Path]) -> Embedded:
    res = Embedded()
    for path, (vec, why) in zip(paths, faces.vectors([load_rgb(p) for p in paths])):
        _add(res, path.name, LABELS[path], vec, why)
    return res


def embed_augmented(faces: RealFaces, paths: Sequence[Path], copies: int, *, seed: int = 0) -> Embedded:
    res = Embedded()
    for path in paths:
        img = load_rgb(path)
        box = faces.largest_box(img)
        augmented = [augment(img, path.name, i, seed=seed, box=box) for i in range(copies)]
        for (copy, ops), (i, (vec, why)) in zip(augmented, enumerate(faces.vectors([a for a, _ in augmented]))):
            _add(res, f"{path.name}#{i}:{ops}", LABELS[path], vec, why)
    return res


def subset(emb: Embedded, paths: Sequence[Path], copies: int) -> Embedded:
    """The part of an augmented set made from ``paths``' first ``copies`` copies (no new inference:
    a copy depends only on its photo, index and seed)."""
    names = {p.name for p in paths}

    def keep(name: str) -> bool:
        photo, rest = name.split("#", 1)
        return photo in names and int(rest.split(":", 1)[0]) < copies

    res = Embedded(missing=[(n, why) for n, why in emb.missing if keep(n)])
    for n, person, vec in zip(emb.names, emb.people, emb.vectors):
        if keep(n):
            _add(res, n, person, vec, None)
    return res


def _add(res: Embedded, name: str, person: str, vec: np.ndarray | None, why: str | None) -> None:
    if vec is None:
        res.missing.append((name, why or "no vector"))
    else:
        res.names.append(name)
        res.people.append(person)
        res.vectors.append(vec)


# --- measures

def cosine_distances(x: np.ndarray) -> np.ndarray:
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    return np.clip(1.0 - u @ u.T, 0.0, 2.0)


def pair_counts(same_pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Pairwise precision and recall of a predicted same-person matrix against the labels (pairs i < j;
    1.0 where there is nothing to measure)."""
    iu = np.triu_indices(len(truth), k=1)
    pred = same_pred[iu]
    real = (truth[:, None] == truth[None, :])[iu]
    tp = int((pred & real).sum())
    precision = tp / int(pred.sum()) if pred.sum() else 1.0
    recall = tp / int(real.sum()) if real.sum() else 1.0
    return precision, recall


def pair_rule(x: np.ndarray, truth: np.ndarray, threshold: float) -> tuple[float, float]:
    """Two faces are one person when their cosine distance is <= threshold."""
    return pair_counts(cosine_distances(x) <= threshold, truth)


def label_scores(labels: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    labels = np.asarray(labels)
    return pair_counts(labels[:, None] == labels[None, :], truth)


def distance_stats(x: np.ndarray, truth: np.ndarray) -> dict[str, tuple[int, float, float, float]]:
    """Per kind of pair ("same", "different"): (pairs, min, median, max) cosine distance."""
    d = cosine_distances(x)
    iu = np.triu_indices(len(truth), k=1)
    same = (truth[:, None] == truth[None, :])[iu]
    out = {}
    for kind, mask in (("same", same), ("different", ~same)):
        v = d[iu][mask]
        out[kind] = (len(v), float(v.min()), float(np.median(v)), float(v.max())) if len(v) else (0, *[np.nan] * 3)
    return out


def invariant_breaches(x: np.ndarray, labels: np.ndarray, threshold: float, margin: float
                       ) -> list[tuple[int, float, float]]:
    """The assigned faces that break raycurate.people.cluster's invariant, recomputed here in float64 from the
    labels alone: (index, distance to its identity's centroid, distance to the nearest other centroid) of every
    face farther than ``threshold`` from its centroid or less than ``margin`` nearer it than another."""
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    ids = sorted(set(labels[labels >= 0].tolist()))
    if not ids:
        return []
    cents = np.array([u[labels == i].sum(axis=0) for i in ids])
    cents /= np.linalg.norm(cents, axis=1, keepdims=True)
    d = 1.0 - u @ cents.T
    out = []
    for k in np.flatnonzero(labels >= 0):
        j = ids.index(int(labels[k]))
        other = np.delete(d[k], j).min() if len(ids) > 1 else np.inf
        if d[k, j] > threshold + 1e-5 or other - d[k, j] < margin - 1e-5:
            out.append((int(k), float(d[k, j]), float(other)))
    return out
