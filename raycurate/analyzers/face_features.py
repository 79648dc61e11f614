"""Per-face features of the faces the face analyser found: identity embedding, head pose,
and with InsightFace 106 landmarks, age and gender.

It reads the face analyser's columns (``uses``): boxes and 5 landmarks (fractions) and
each crop's sharpness, so it runs on the image path after the face pool and in video
Stage 2 on Stage 1's detections. ``embedder: auto`` takes the InsightFace pack's ArcFace
when the pack is verified, else dlib (every install has it). A face too small or too
blurred to embed gets a null vector and a reason, never an error row.

Head pose comes from InsightFace's 3D landmarks where that model ran
(``face_pose_source = insightface-1k3d68``), else it is estimated from the 5 landmarks
(``5-point estimate``, :mod:`raycurate.analyzers.head_pose`).
"""
from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from . import insightface_pack
from .base import Analyzer
from .face_detector import Face
from .face_embedders import DLIB_ID, VECTOR_COLUMNS, VECTOR_FIELDS, DlibEmbedder, FaceEmbedder, InsightFaceEmbedder
from .head_pose import estimate_pose

EMBEDDER_NAMES = ("auto", "insightface", "dlib")
DENSE_POINTS = 106
POSE_3D, POSE_5 = "insightface-1k3d68", "5-point estimate"


def choose_embedder(name: str, *, pack: str, models_dir: str | None) -> tuple[str, str]:
    """The embedder to run and why. ``auto``: the InsightFace pack's ArcFace when verified here, else dlib."""
    if name not in EMBEDDER_NAMES:
        raise ValueError(f"unknown face embedder {name!r}; known: {', '.join(EMBEDDER_NAMES)}")
    if name != "auto":
        return name, "asked for by name"
    ok, why = insightface_pack.available(pack, models_dir)
    return ("insightface", f"auto: InsightFace pack {pack} is verified") if ok else ("dlib", f"auto: {why}")


def weights_for(embedder: str, pack: str, models_dir: str | None) -> str | None:
    """The registry id of the weights ``embedder`` loads (None: a user's folder)."""
    chosen, _ = choose_embedder(embedder, pack=pack, models_dir=models_dir)
    if chosen == "dlib":
        return DLIB_ID
    return None if insightface_pack.is_folder(pack) else insightface_pack.registry_id(pack)


def _pixels(points: Sequence[float], w: int, h: int) -> tuple[float, ...]:
    return tuple(v * (w if i % 2 == 0 else h) for i, v in enumerate(points))


class FaceFeaturesAnalyzer(Analyzer):
    name = "face_features"
    model_id = "face-embedder"
    supports_gpu = True
    uses = ("face_boxes", "face_kps", "face_scores", "face_sharpness")

    def __init__(self, *, embedder: str = "auto", pack: str = "buffalo_l", min_face_px: int = 40,
                 min_face_sharpness: float = 20.0, batch_size: int = 8, num_cpus: float = 0.35, device: str = "cpu",
                 models_dir: str | None = None) -> None:
        chosen, self.choice = choose_embedder(embedder, pack=pack, models_dir=models_dir)
        self.fallback_reason = self.choice if embedder == "auto" and chosen == "dlib" else None
        if chosen == "dlib" and device != "cpu":
            if embedder != "auto":
                raise ValueError("the dlib face embedder runs on the CPU only (dlib-bin has no CUDA); set device: cpu")
            warnings.warn(f"face_features: dlib on the CPU ({self.choice})", RuntimeWarning, stacklevel=2)
            device = "cpu"
        super().__init__(batch_size=batch_size, num_cpus=num_cpus, device=device)
        self.embedder: FaceEmbedder = (DlibEmbedder(models_dir=models_dir) if chosen == "dlib"
                                       else InsightFaceEmbedder(pack=pack, device=device, models_dir=models_dir))
        self.model_id = self.embedder.required_models()[0] if self.embedder.required_models() else f"insightface:{pack}"
        self.min_face_px = min_face_px
        self.min_face_sharpness = min_face_sharpness

    @classmethod
    def output_fields(cls) -> list[pa.Field]:
        return [
            pa.field("face_pose", pa.list_(pa.list_(pa.float32(), 3))),   # per face: pitch, yaw, roll (degrees)
            pa.field("face_pose_source", pa.string()),                    # insightface-1k3d68 | 5-point estimate
            pa.field("face_landmarks", pa.list_(pa.list_(pa.float32(), 2 * DENSE_POINTS))),  # InsightFace 2d106
            pa.field("face_age", pa.list_(pa.int32())),
            pa.field("face_gender", pa.list_(pa.string())),
            pa.field("face_embeddings", pa.list_(pa.list_(pa.float32()))),  # every face (null: not embedded)
            pa.field("face_embedding_reasons", pa.list_(pa.string())),      # why a face has no vector
            pa.field("face_embedding_model", pa.string()),                  # the model behind every vector
            *VECTOR_FIELDS,                                                 # the main face's vector
        ]

    @classmethod
    def gpu_memory(cls) -> dict[str, float]:
        return {"gpu_model_mb": 900.0, "gpu_item_mb": 30.0}   # ArcFace R50 + landmark + attribute nets

    def load(self) -> None:
        self.embedder.load()

    def model_version(self) -> str:
        return self.embedder.version()

    def required_models(self) -> list[str]:
        return self.embedder.required_models()

    def _reason(self, face: Face, sharpness: float | None) -> str | None:
        side = min(face.box[2] - face.box[0], face.box[3] - face.box[1])
        if side < self.min_face_px:
            return f"face too small: {side:.0f} px < min_face_px {self.min_face_px}"
        if sharpness is not None and sharpness < self.min_face_sharpness:
            return f"face too blurred: sharpness {sharpness:.1f} < min_face_sharpness {self.min_face_sharpness:g}"
        if self.embedder.needs_kps and face.kps is None:
            return "no 5-point landmarks to align on (the detector gives none)"
        return None

    def analyze(self, images: Sequence[np.ndarray], context: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
        return [self._row(img, context["face_boxes"][i] or [], context["face_kps"][i],
                          context["face_scores"][i] or [], context["face_sharpness"][i] or [])
                for i, img in enumerate(images)]

    def _row(self, img: np.ndarray, boxes: list, kps: list | None, scores: list, sharpness: list) -> dict[str, Any]:
        h, w = img.shape[:2]
        faces = [Face(box=_pixels(b, w, h), score=float(s),
                      kps=None if not kps or kps[k] is None else _pixels(kps[k], w, h))
                 for k, (b, s) in enumerate(zip(boxes, scores))]
        reasons = [self._reason(f, sharpness[k] if k < len(sharpness) else None) for k, f in enumerate(faces)]
        todo = [k for k, r in enumerate(reasons) if r is None]
        found = dict(zip(todo, self.embedder.features(img, [faces[k] for k in todo])))
        embeddings = [found[k].embedding if k in found else None for k in range(len(faces))]
        for k in todo:
            if embeddings[k] is None:
                reasons[k] = "the embedder returned no vector"
        use_3d = self.embedder.gives_pose
        rich = isinstance(self.embedder, InsightFaceEmbedder)   # the pack's landmark and attribute models
        poses = [(found[k].pose if k in found else None) if use_3d else
                 (estimate_pose(f.kps, (w, h)) if f.kps is not None else None) for k, f in enumerate(faces)]
        main_col, _ = VECTOR_COLUMNS[self.embedder.family]
        row: dict[str, Any] = {
            "face_pose": [None if p is None else list(p) for p in poses] if faces else [],
            "face_pose_source": (POSE_3D if use_3d else POSE_5) if any(p is not None for p in poses) else None,
            "face_landmarks": [[v / (w if i % 2 == 0 else h) for i, v in enumerate(found[k].landmarks)]
                               if k in found and found[k].landmarks is not None else None
                               for k in range(len(faces))] if rich else None,
            "face_age": [found[k].age if k in found else None for k in range(len(faces))] if rich else None,
            "face_gender": [found[k].gender if k in found else None for k in range(len(faces))] if rich else None,
            "face_embeddings": [None if e is None else e.tolist() for e in embeddings],
            "face_embedding_reasons": reasons,
            "face_embedding_model": self.embedder.model_name() if faces else None,
        }
        for col, _ in VECTOR_COLUMNS.values():
            row[col] = None
        if embeddings and embeddings[0] is not None:
            row[main_col] = embeddings[0]
        return row
