"""What every face detector returns, and the box arithmetic they share.

A detector is a plain class: ``load()`` once, then ``detect(images)`` maps RGB
images to a list of :class:`Face` per image, boxes and landmarks in the pixels of
the image it was given. Detectors live one per module (``haar``, ``centerface``,
``insightface_detector``); :mod:`raycurate.analyzers.face` chooses one.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels of the analysed image
    score: float                            # detector confidence (detector-specific scale)
    view: str | None = None                 # frontal | profile_left | profile_right where the detector says
    kps: tuple[float, ...] | None = None    # 5 points x, y: eye, eye, nose tip, mouth corner, mouth corner;
                                            # not clipped: a point of a face cut off at the border may lie outside


class FaceDetector(abc.ABC):
    """Detect faces in RGB images."""

    model_id: str          # registry id of the weights
    has_landmarks: bool    # whether faces come with 5 landmarks

    @abc.abstractmethod
    def load(self) -> None: ...

    @abc.abstractmethod
    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]: ...

    def version(self) -> str:
        return ""

    def required_models(self) -> list[str]:
        return [self.model_id]


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


def suppress_overlaps(faces: list[Face], iou: float, *, inside: float = 0.6) -> list[Face]:
    """Greedy non-maximum suppression by score; a box mostly (``inside``) within a kept box also goes."""
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
            if (overlap > iou).any() or (inter / max(area, 1e-9) > inside).any():
                continue
        kept.append(face)
    return kept
