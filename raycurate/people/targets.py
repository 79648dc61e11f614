"""Target people (``--person NAME=ref1.jpg,ref2.jpg``): their reference faces, and who appears where.

A target is the unit mean of its reference photos' face embeddings, made with the same face detector
and embedder as the run (so it compares with the stored vectors). A reference photo must show one
face: no face, or several of similar size, is a :class:`ReferenceError` before any work starts. A
face shows a target when its cosine distance to the target's mean is at most the embedding family's
threshold (``people.threshold_<family>``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .faces import family_of

DOMINANT_AREA = 2.0   # with several faces in a reference photo, the largest is taken when this many times larger


class ReferenceError(ValueError):
    """A reference photo that cannot define a person; the message names the photo and the fix."""


@dataclass(frozen=True)
class PersonTarget:
    name: str
    family: str                 # arcface | dlib: the embedding family of the vectors it compares with
    model: str                  # the embedding model (face_embedding_model)
    centroid: np.ndarray        # unit mean of the references' embeddings
    references: tuple[str, ...]
    threshold: float            # cosine distance at or below which a face may be this person
    margin: float = 0.0         # ... when at least this much nearer it than any other known person

    def distance(self, vectors: np.ndarray) -> np.ndarray:
        """Cosine distance of each row of ``vectors`` to this person."""
        v = np.asarray(vectors, dtype=np.float32).reshape(-1, self.centroid.shape[0])
        norms = np.linalg.norm(v, axis=1)
        norms[norms == 0] = 1.0
        return 1.0 - (v @ self.centroid) / norms

    def manifest(self) -> dict[str, Any]:
        return {"references": list(self.references), "model": self.model, "family": self.family,
                "threshold": self.threshold, "margin": self.margin}


def parse_person(spec: str) -> tuple[str, list[str]]:
    """``NAME=ref1.jpg,ref2.jpg`` -> (name, [refs]); a bad spec is a ReferenceError saying the form."""
    name, sep, refs = spec.partition("=")
    name = name.strip()
    paths = [p.strip() for p in refs.split(",") if p.strip()]
    if not sep or not name or not paths:
        raise ReferenceError(f"--person expects NAME=ref1.jpg[,ref2.jpg...], got {spec!r}")
    if not all(c.isalnum() or c in " ._-" for c in name) or name[0] in ". ":
        raise ReferenceError(f"--person name {name!r}: letters, digits, space, . _ - only (it names folders)")
    return name, paths


def _reference_vector(path: str, name: str, face: Any, features: Any, max_side: int) -> tuple[np.ndarray, str]:
    from ..decode import DecodeError, decode_image
    from ..sources import read_bytes

    try:
        rgb = decode_image(read_bytes(path), max_side=max_side).rgb
    except (OSError, DecodeError) as exc:
        raise ReferenceError(f"reference photo {path} of {name} cannot be read: {exc}") from None
    batch = face({"image": [rgb], "error": [None]})
    if batch["face_error"][0]:
        raise ReferenceError(f"reference photo {path} of {name}: face detection failed: {batch['face_error'][0]}")
    boxes = batch["face_boxes"][0] or []
    if not boxes:
        raise ReferenceError(f"reference photo {path} of {name} shows no face the detector finds: use a photo "
                             "where the face is clear, lit and large (well over 40 px)")
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]   # largest first
    if len(boxes) > 1 and areas[0] < DOMINANT_AREA * areas[1]:
        raise ReferenceError(f"reference photo {path} of {name} shows {len(boxes)} faces of similar size: crop it "
                             "to the person")
    out = features(batch)
    vec = (out["face_embeddings"][0] or [None])[0]
    if vec is None:
        why = (out["face_embedding_reasons"][0] or ["no vector"])[0]
        raise ReferenceError(f"reference photo {path} of {name}: its face cannot be embedded ({why})")
    return np.asarray(vec, dtype=np.float32), out["face_embedding_model"][0]


def load_targets(persons: Mapping[str, Sequence[str]], settings: Any, log: Callable[[str], None] | None = None
                 ) -> list[PersonTarget]:
    """The targets of ``persons`` (name -> reference photos), embedded with the run's face detector and
    embedder (``settings``: the run's typed settings). Loads those two models once, on this machine."""
    if not persons:
        return []
    if not (settings.analyzers.face.enabled and settings.analyzers.face_features.enabled):
        raise ReferenceError("--person needs the face and face_features analysers (analyzers.*.enabled)")
    from ..analyzers import build_analyzer
    from .identities import margins_of, thresholds_of

    face = build_analyzer("face", settings.analyzers.face, settings.models)
    features = build_analyzer("face_features", settings.analyzers.face_features, settings.models)
    face.setup()
    features.setup()
    targets = []
    for name, refs in persons.items():
        vectors, models = zip(*(_reference_vector(p, name, face, features, settings.decode.max_side) for p in refs))
        mean = np.mean([v / (np.linalg.norm(v) or 1.0) for v in vectors], axis=0)
        family = family_of(models[0]) or "dlib"
        targets.append(PersonTarget(name=name, family=family, model=models[0],
                                    centroid=(mean / (np.linalg.norm(mean) or 1.0)).astype(np.float32),
                                    references=tuple(refs), threshold=thresholds_of(settings.people)[family],
                                    margin=margins_of(settings.people)[family]))
    if log is not None:
        log("[raycurate] target people: " + ", ".join(f"{t.name} ({len(t.references)} reference photos)"
                                                     for t in targets))
    return targets


def persons_in(embeddings: Sequence[Sequence[float] | None] | None, model: str | None,
               targets: Sequence[PersonTarget], *, main_only: bool = False,
               others: Mapping[str, np.ndarray] | None = None) -> list[str]:
    """The targets shown by the faces of one image (``face_embeddings``, largest face first): every face,
    or only the main one. ``others``: per target name, the unit centroids of the other known people it must
    be told from (stored identities not its own); the other targets always are."""
    if not embeddings or not targets:
        return []
    family = family_of(model)
    faces = [e for e in (embeddings[:1] if main_only else embeddings) if e is not None]
    mine = [t for t in targets if t.family == family]
    if not faces or not mine:
        return []
    x = np.asarray(faces, dtype=np.float32)
    dist = np.stack([t.distance(x) for t in mine])                  # (targets, faces)
    found = []
    for i, t in enumerate(mine):
        rival = np.delete(dist, i, axis=0).min(axis=0) if len(mine) > 1 else np.full(len(x), np.inf)
        extra = None if others is None else others.get(t.name)
        if extra is not None and len(extra):
            u = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
            rival = np.minimum(rival, (1.0 - u @ np.asarray(extra, dtype=np.float32).T).min(axis=1))
        if np.any((dist[i] <= t.threshold) & (rival - dist[i] >= t.margin)):
            found.append(t.name)
    return found
