"""Face detection behind one interface.

:class:`FaceDetector` is what the face analyser needs from a detector: boxes
and a confidence per face, plus landmarks, pose, age, gender and an identity
embedding where the detector has them. :class:`HaarFaceDetector` fills it with
the OpenCV cascades that ship inside the opencv wheel (frontal, plus profile in
both directions); :class:`~raycurate.analyzers.insightface_detector.InsightFaceDetector`
with InsightFace. ``detector: auto`` takes InsightFace when its weights are
present and verified, the cascades otherwise (``strict_models`` refuses that fallback).
"""
from __future__ import annotations

import abc
import inspect
import math
import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import cv2
import numpy as np
import pyarrow as pa

from ..decode import resize_max_side
from .base import Analyzer


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels of the analysed image
    score: float                            # detector confidence (detector-specific scale)
    view: str                               # frontal | profile_left | profile_right
    kps: tuple[float, ...] | None = None    # 5 points x, y (eyes, nose, mouth corners), pixels
    embedding: np.ndarray | None = None     # identity embedding (ArcFace, 512, L2-normalised)
    pose: tuple[float, float, float] | None = None   # pitch, yaw, roll in degrees
    age: int | None = None
    gender: str | None = None
    landmarks: tuple[float, ...] | None = None   # dense 2D landmarks x, y (106 points), pixels


class FaceDetector(abc.ABC):
    """Detect faces in RGB images."""

    model_id: str

    @abc.abstractmethod
    def load(self) -> None: ...

    @abc.abstractmethod
    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]: ...

    def version(self) -> str:
        return ""


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N x 4) with every box in ``b`` (M x 4), x1y1x2y2."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def suppress_overlaps(faces: list[Face], iou: float) -> list[Face]:
    """Greedy non-maximum suppression; a box mostly inside a kept box also goes."""
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: f.score, reverse=True):
        if kept:
            boxes = np.array([k.box for k in kept], dtype=np.float64)
            mine = np.array([face.box], dtype=np.float64)
            overlap = box_iou(mine, boxes)[0]
            x1 = np.maximum(mine[0, 0], boxes[:, 0]); y1 = np.maximum(mine[0, 1], boxes[:, 1])
            x2 = np.minimum(mine[0, 2], boxes[:, 2]); y2 = np.minimum(mine[0, 3], boxes[:, 3])
            inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
            area = (mine[0, 2] - mine[0, 0]) * (mine[0, 3] - mine[0, 1])
            if (overlap > iou).any() or (inter / max(area, 1e-9) > 0.6).any():
                continue
        kept.append(face)
    return kept


class HaarFaceDetector(FaceDetector):
    """OpenCV Haar cascades, run on a copy scaled to ``detection_side``.

    The score is the cascade's level weight (``detectMultiScale3``): roughly how
    far past the last stage threshold the window got; not a probability.
    """

    model_id = "opencv-haar-face"   # registry id

    def __init__(self, *, detection_side: int = 640, scale_factor: float = 1.1, min_neighbors: int = 5,
                 min_face_fraction: float = 0.05, use_profile: bool = True, nms_iou: float = 0.3) -> None:
        self.detection_side = detection_side
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_face_fraction = min_face_fraction
        self.use_profile = use_profile
        self.nms_iou = nms_iou
        self._frontal: cv2.CascadeClassifier | None = None
        self._profile: cv2.CascadeClassifier | None = None

    @staticmethod
    def _cascade(name: str) -> cv2.CascadeClassifier:
        from ..models import models_dir, require

        # the cascades inside the opencv wheel, checked against their known sha256
        path = str(require("opencv-haar-face", models_dir()) / "data" / name)
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise FileNotFoundError(
                f"OpenCV cascade {name} not readable at {path}: install opencv-contrib-python-headless "
                "(scripts/setup.sh does; OpenCV 5 wheels ship no cascades)")
        return cascade

    def load(self) -> None:
        self._frontal = self._cascade("haarcascade_frontalface_default.xml")
        if self.use_profile:
            self._profile = self._cascade("haarcascade_profileface.xml")

    def version(self) -> str:
        return f"cv2-{cv2.__version__}" + ("+profile" if self.use_profile else "")

    def _run(self, cascade: cv2.CascadeClassifier, grey: np.ndarray, min_side: int) -> list[tuple]:
        rects, _levels, weights = cascade.detectMultiScale3(
            grey, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(min_side, min_side), outputRejectLevels=True)
        return [(tuple(map(float, r)), float(w)) for r, w in zip(rects, np.ravel(weights))]

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        assert self._frontal is not None, "call load() first"
        return [self._detect_one(img) for img in images]

    def _detect_one(self, rgb: np.ndarray) -> list[Face]:
        h, w = rgb.shape[:2]
        scale = min(1.0, self.detection_side / float(max(h, w)))
        grey = resize_max_side(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), self.detection_side)
        grey = cv2.equalizeHist(grey)
        gw = grey.shape[1]
        min_side = max(12, int(self.min_face_fraction * min(grey.shape)))
        faces: list[Face] = []
        for (x, y, bw, bh), weight in self._run(self._frontal, grey, min_side):
            faces.append(Face((x, y, x + bw, y + bh), weight, "frontal"))
        if self._profile is not None:
            for (x, y, bw, bh), weight in self._run(self._profile, grey, min_side):
                faces.append(Face((x, y, x + bw, y + bh), weight, "profile_left"))
            for (x, y, bw, bh), weight in self._run(self._profile, cv2.flip(grey, 1), min_side):
                faces.append(Face((gw - x - bw, y, gw - x, y + bh), weight, "profile_right"))
        faces = suppress_overlaps(faces, self.nms_iou)
        inv = 1.0 / scale
        return [Face(tuple(v * inv for v in f.box), f.score, f.view) for f in faces]


DETECTOR_NAMES = ("opencv_haar", "insightface", "auto")
EMBEDDING_DIM = 512
DENSE_POINTS = 106   # InsightFace 2d106det


def detector_class(name: str) -> type[FaceDetector]:
    if name == "opencv_haar":
        return HaarFaceDetector
    if name == "insightface":
        from .insightface_detector import InsightFaceDetector

        return InsightFaceDetector
    raise ValueError(f"unknown face detector {name!r}; known: {', '.join(DETECTOR_NAMES)}")


def resolve_detector(name: str, *, models_dir: str | None, strict_models: bool) -> tuple[str, str | None]:
    """The detector to use and, when ``auto`` fell back, why."""
    if name != "auto":
        return name, None
    from .. import models

    spec = models.REGISTRY["insightface-buffalo_l"]
    state = models.status(spec, models.models_dir(models_dir))
    if state == "ok":
        return "insightface", None
    if strict_models:
        models.require(spec.id, models.models_dir(models_dir))  # raises the error that says how to fix it
    return "opencv_haar", f"insightface-buffalo_l is {state} in {models.models_dir(models_dir)}"


def _fractions(points: Sequence[float] | None, w: int, h: int) -> list[float] | None:
    """x, y, x, y ... in pixels -> fractions of the width and height."""
    return None if points is None else [v / (w if i % 2 == 0 else h) for i, v in enumerate(points)]


class FaceAnalyzer(Analyzer):
    """Faces per image: count, boxes (x1, y1, x2, y2 in original pixels), scores, views, largest face,
    and, with InsightFace, 5-point and 106-point landmarks, head pose, age, gender and the largest face's
    embedding."""

    name = "face"
    model_id = "face-detector"
    supports_gpu = True

    def __init__(self, *, detector: str = "opencv_haar", batch_size: int = 8, num_cpus: float = 1.0,
                 device: str = "cpu", models_dir: str | None = None, strict_models: bool = False,
                 **detector_args: Any) -> None:
        chosen, self.fallback_reason = resolve_detector(detector, models_dir=models_dir,
                                                        strict_models=strict_models)
        cls = detector_class(chosen)
        if device != "cpu" and cls is HaarFaceDetector:
            if detector != "auto":
                raise ValueError("the OpenCV face detector runs on the CPU only; set device: cpu")
            warnings.warn(f"face: falling back to the OpenCV detector on the CPU ({self.fallback_reason})",
                          RuntimeWarning, stacklevel=2)
            device = "cpu"
        super().__init__(batch_size=batch_size, num_cpus=num_cpus, device=device)
        accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
        args = {k: v for k, v in {**detector_args, "device": device, "models_dir": models_dir}.items()
                if k in accepted}
        self.detector: FaceDetector = cls(**args)
        self.model_id = self.detector.model_id

    @classmethod
    def output_fields(cls) -> list[pa.Field]:
        return [
            pa.field("face_count", pa.int32()),
            pa.field("face_boxes", pa.list_(pa.list_(pa.float32(), 4))),  # fractions of width/height
            pa.field("face_scores", pa.list_(pa.float32())),
            pa.field("face_views", pa.list_(pa.string())),
            pa.field("face_largest_area", pa.float32()),  # largest face box / image area
            pa.field("face_kps", pa.list_(pa.list_(pa.float32(), 10))),   # 5 points, fractions (InsightFace)
            pa.field("face_landmarks", pa.list_(pa.list_(pa.float32(), 2 * DENSE_POINTS))),  # 106 points, fractions
            pa.field("face_pose", pa.list_(pa.list_(pa.float32(), 3))),   # pitch, yaw, roll degrees
            pa.field("face_age", pa.list_(pa.int32())),
            pa.field("face_gender", pa.list_(pa.string())),
            pa.field("face_embedding", pa.list_(pa.float32(), EMBEDDING_DIM)),  # largest face, ArcFace
        ]

    @classmethod
    def gpu_memory(cls) -> dict[str, float]:
        # InsightFace buffalo_l on onnxruntime-gpu: ~0.3 GB of weights plus the CUDA context and
        # arena; activations of one 640x640 detection plus its crops. (The OpenCV detector is CPU-only.)
        return {"gpu_model_mb": 900.0, "gpu_item_mb": 60.0}

    def load(self) -> None:
        cv2.setNumThreads(max(1, int(math.ceil(self.resources.num_cpus))))
        self.detector.load()

    def model_version(self) -> str:
        return self.detector.version()

    def required_models(self) -> list[str]:
        return [self.detector.model_id]

    def analyze(self, images: Sequence[np.ndarray], context: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
        out = []
        for img, faces in zip(images, self.detector.detect(images)):
            h, w = img.shape[:2]
            faces = sorted(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), reverse=True)
            boxes = [[f.box[0] / w, f.box[1] / h, f.box[2] / w, f.box[3] / h] for f in faces]
            areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
            rich = bool(faces) and faces[0].kps is not None
            out.append({
                "face_count": len(faces),
                "face_boxes": boxes,
                "face_scores": [f.score for f in faces],
                "face_views": [f.view for f in faces],
                "face_largest_area": max(areas) if areas else 0.0,
                "face_kps": [_fractions(f.kps, w, h) for f in faces] if rich else None,
                "face_landmarks": [_fractions(f.landmarks, w, h) for f in faces]
                if rich and faces[0].landmarks is not None else None,
                "face_pose": [None if f.pose is None else list(f.pose) for f in faces] if rich else None,
                "face_age": [f.age for f in faces] if rich else None,
                "face_gender": [f.gender for f in faces] if rich else None,
                "face_embedding": faces[0].embedding if faces and faces[0].embedding is not None else None,
            })
        return out
