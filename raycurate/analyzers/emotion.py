"""Facial expression with DeepFace's emotion model (pytorch backend) on the face crops.

It reads the face analyser's boxes (``uses = ("face_boxes",)``), crops every face
of the batch with a margin, and sends all the crops of the batch to DeepFace in
one call (DeepFace batches a list of crops; raycurate gathers them across images).
Weights: ``deepface-emotion`` in the models directory (``$DEEPFACE_HOME`` is pointed
there), checked before loading; nothing is downloaded here.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import cv2
import numpy as np
import pyarrow as pa

from .base import Analyzer, package_version

MODEL_ID = "deepface-emotion"
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")   # DeepFace's order
CROP_SIDE = 224   # DeepFace's demography models take 224 x 224 face images (and resize to their own input)


class EmotionAnalyzer(Analyzer):
    name = "emotion"
    model_id = MODEL_ID
    uses = ("face_boxes",)
    supports_gpu = True

    def __init__(self, *, crop_margin: float = 0.2, batch_size: int = 16, num_cpus: float = 0.2,
                 device: str = "cpu", models_dir: str | None = None) -> None:
        super().__init__(batch_size=batch_size, num_cpus=num_cpus, device=device)
        self.crop_margin = crop_margin
        self.models_dir = models_dir
        self._client = None

    @classmethod
    def output_fields(cls) -> list[pa.Field]:
        return [
            pa.field("emotion_dominant", pa.string()),                         # of the largest face
            pa.field("emotion_faces", pa.list_(pa.string())),                  # per face, in face order
            pa.field("emotion_probs", pa.list_(pa.list_(pa.float32(), len(LABELS)))),  # per face, LABELS order
        ]

    @classmethod
    def gpu_memory(cls) -> dict[str, float]:
        return {"gpu_model_mb": 600.0, "gpu_item_mb": 5.0}   # a 48x48 CNN; the CUDA context dominates

    def load(self) -> None:
        from .. import models

        root = models.models_dir(self.models_dir)
        models.require(MODEL_ID, root)
        os.environ.update(models.library_env(root))          # DeepFace looks under $DEEPFACE_HOME
        os.environ["DEEPFACE_BACKEND_ENGINE"] = "pytorch"
        from deepface import DeepFace

        self._client = DeepFace.build_model(task="facial_attribute", model_name="Emotion")

    def model_version(self) -> str:
        return package_version("deepface")

    def _crop(self, rgb: np.ndarray, box: Sequence[float]) -> np.ndarray:
        h, w = rgb.shape[:2]
        x1, y1, x2, y2 = box[0] * w, box[1] * h, box[2] * w, box[3] * h
        mx, my = (x2 - x1) * self.crop_margin, (y2 - y1) * self.crop_margin
        x1, y1 = max(0, int(x1 - mx)), max(0, int(y1 - my))
        x2, y2 = min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my)))
        crop = np.ascontiguousarray(rgb[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1), ::-1])   # BGR, as DeepFace reads
        return cv2.resize(crop, (CROP_SIDE, CROP_SIDE), interpolation=cv2.INTER_AREA)

    def analyze(self, images: Sequence[np.ndarray], context: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
        assert self._client is not None
        crops, owner = [], []
        for i, (rgb, boxes) in enumerate(zip(images, context["face_boxes"])):
            for box in boxes or []:
                crops.append(self._crop(rgb, box))
                owner.append(i)
        probs = np.asarray(self._client.predict(crops), dtype=np.float32).reshape(len(crops), len(LABELS)) \
            if crops else np.zeros((0, len(LABELS)), np.float32)
        out = [{"emotion_dominant": None, "emotion_faces": [], "emotion_probs": []} for _ in images]
        for p, i in zip(probs, owner):
            label = LABELS[int(np.argmax(p))]
            out[i]["emotion_faces"].append(label)
            out[i]["emotion_probs"].append(p.tolist())
        for o in out:
            o["emotion_dominant"] = o["emotion_faces"][0] if o["emotion_faces"] else None   # faces are largest-first
        return out
