"""Body pose with an ultralytics YOLO pose model: people, 17 COCO keypoints, full body, orientation.

Weights: ``ultralytics-yolo11n-pose`` in the models directory, checked before loading;
nothing is downloaded here. Keypoints are COCO's: nose, eyes, ears, shoulders, elbows,
wrists, hips, knees, ankles (left before right).
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from .base import Analyzer, package_version

MODEL_ID = "ultralytics-yolo11n-pose"
NOSE, L_EYE, R_EYE, L_EAR, R_EAR, L_SHOULDER, R_SHOULDER = 0, 1, 2, 3, 4, 5, 6
L_ANKLE, R_ANKLE = 15, 16


def orientation(xy: np.ndarray, conf: np.ndarray, visible: float) -> str:
    """front | back | left | right | unknown, from which face points are seen and the shoulders' order.

    Facing the camera, the person's left shoulder is on the image's right (larger x).
    """
    face_seen = conf[[NOSE, L_EYE, R_EYE]].max() >= visible
    shoulders = conf[L_SHOULDER] >= visible and conf[R_SHOULDER] >= visible
    if shoulders:
        width = xy[L_SHOULDER, 0] - xy[R_SHOULDER, 0]
        span = np.ptp(xy[conf >= visible][:, 0]) if (conf >= visible).sum() > 1 else 0.0
        if span > 0 and abs(width) < 0.15 * span:
            return "left" if conf[L_EAR] >= conf[R_EAR] else "right"   # shoulders overlap: a profile
        if width > 0:
            return "front" if face_seen else "back"
        return "back" if not face_seen else "front"
    if face_seen:
        return "front"
    return "unknown"


class PoseAnalyzer(Analyzer):
    name = "pose"
    model_id = MODEL_ID
    supports_gpu = True

    def __init__(self, *, conf: float = 0.25, max_people: int = 10, imgsz: int = 640, visible: float = 0.5,
                 batch_size: int = 8, num_cpus: float = 0.2, device: str = "cpu",
                 models_dir: str | None = None) -> None:
        super().__init__(batch_size=batch_size, num_cpus=num_cpus, device=device)
        self.conf = conf
        self.max_people = max_people
        self.imgsz = imgsz
        self.visible = visible
        self.models_dir = models_dir
        self._model = None

    @classmethod
    def output_fields(cls) -> list[pa.Field]:
        return [
            pa.field("pose_count", pa.int32()),                                  # people found
            pa.field("pose_boxes", pa.list_(pa.list_(pa.float32(), 4))),         # fractions, largest first
            pa.field("pose_scores", pa.list_(pa.float32())),
            pa.field("pose_keypoints", pa.list_(pa.list_(pa.float32(), 51))),    # 17 x (x, y, conf), fractions
            pa.field("pose_full_body", pa.list_(pa.bool_())),                    # head and both ankles visible
            pa.field("pose_orientation", pa.list_(pa.string())),                 # front | back | left | right
        ]

    @classmethod
    def gpu_memory(cls) -> dict[str, float]:
        return {"gpu_model_mb": 700.0, "gpu_item_mb": 40.0}   # a nano model; CUDA context dominates

    def load(self) -> None:
        from .. import models

        root = models.models_dir(self.models_dir)
        models.require(MODEL_ID, root)
        os.environ.setdefault("YOLO_OFFLINE", "1")
        os.environ.update(models.library_env(root))
        from ultralytics import YOLO

        self._model = YOLO(str(root / models.REGISTRY[MODEL_ID].files[0].path))

    def model_version(self) -> str:
        return package_version("ultralytics")

    def analyze(self, images: Sequence[np.ndarray], context: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
        assert self._model is not None
        device = "cpu" if self.resources.device == "cpu" else self.resources.device
        results = self._model.predict([np.ascontiguousarray(img[:, :, ::-1]) for img in images], conf=self.conf,
                                      max_det=self.max_people, imgsz=self.imgsz, device=device, verbose=False)
        out = []
        for img, r in zip(images, results):
            h, w = img.shape[:2]
            boxes = r.boxes.xyxy.cpu().numpy() if r.boxes is not None else np.zeros((0, 4))
            scores = r.boxes.conf.cpu().numpy() if r.boxes is not None else np.zeros(0)
            xy = r.keypoints.xy.cpu().numpy() if r.keypoints is not None else np.zeros((0, 17, 2))
            kconf = (r.keypoints.conf.cpu().numpy() if r.keypoints is not None and r.keypoints.conf is not None
                     else np.zeros(xy.shape[:2]))
            order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])) if len(boxes) else []
            scale = np.array([w, h, w, h], dtype=np.float64)
            out.append({
                "pose_count": int(len(boxes)),
                "pose_boxes": [(boxes[i] / scale).tolist() for i in order],
                "pose_scores": [float(scores[i]) for i in order],
                "pose_keypoints": [np.column_stack([xy[i, :, 0] / w, xy[i, :, 1] / h, kconf[i]]).ravel().tolist()
                                   for i in order],
                "pose_full_body": [bool(kconf[i][[NOSE, L_ANKLE, R_ANKLE]].min() >= self.visible) for i in order],
                "pose_orientation": [orientation(xy[i], kconf[i], self.visible) for i in order],
            })
        return out
