"""OpenCV Haar cascades (frontal, plus profile in both directions) as a face detector.

Only used when asked for by name (``analyzers.face.detector: opencv_haar``): it
finds no landmarks, miscounts faces and is slow at full size. The cascades ship
inside the opencv-contrib wheel and are checked against their known sha256.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from ..decode import resize_max_side
from .face_detector import Face, FaceDetector, suppress_overlaps


class HaarFaceDetector(FaceDetector):
    """Cascades run on a grey copy scaled to ``detection_side``.

    The score is the cascade's level weight (``detectMultiScale3``): roughly how
    far past the last stage threshold the window got; not a probability.
    """

    model_id = "opencv-haar-face"   # registry id
    has_landmarks = False

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
