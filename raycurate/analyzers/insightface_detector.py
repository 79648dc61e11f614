"""InsightFace (SCRFD detection, ArcFace embedding, landmarks, head pose, age, gender) behind
the :class:`~raycurate.analyzers.face.FaceDetector` interface.

Weights come from the models directory (``insightface-buffalo_l`` in the registry), checked
before they are loaded; nothing is downloaded here (``raycurate models pull`` does that).
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from .base import package_version
from .face import Face, FaceDetector

MODEL_ID = "insightface-buffalo_l"


class InsightFaceDetector(FaceDetector):
    model_id = MODEL_ID

    def __init__(self, *, det_size: int = 640, det_thresh: float = 0.5, max_faces: int = 32,
                 device: str = "cpu", models_dir: str | None = None) -> None:
        self.det_size = det_size
        self.det_thresh = det_thresh
        self.max_faces = max_faces
        self.device = device
        self.models_dir = models_dir
        self._app = None
        self.provider = "CPUExecutionProvider"

    def load(self) -> None:
        import onnxruntime as ort
        from insightface.app import FaceAnalysis

        from .. import models

        root = models.require(MODEL_ID, models.models_dir(self.models_dir))
        folder = root / "insightface" / "models" / "buffalo_l"
        providers = ["CPUExecutionProvider"]
        if self.device.startswith("cuda"):
            if "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
            else:
                warnings.warn(
                    "InsightFace: device is cuda but onnxruntime has no CUDAExecutionProvider (install "
                    "onnxruntime-gpu with a matching CUDA): FACE DETECTION RUNS ON THE CPU", RuntimeWarning,
                    stacklevel=2)
        self.provider = providers[0]
        self._app = FaceAnalysis(name=str(folder), providers=providers)
        ctx = 0 if providers[0] == "CUDAExecutionProvider" else -1
        self._app.prepare(ctx_id=ctx, det_size=(self.det_size, self.det_size), det_thresh=self.det_thresh)

    def version(self) -> str:
        return f"{package_version('insightface')}+{self.provider.replace('ExecutionProvider', '').lower()}"

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        assert self._app is not None, "call load() first"
        out = []
        for rgb in images:
            faces = self._app.get(np.ascontiguousarray(rgb[:, :, ::-1]), max_num=self.max_faces)
            out.append([self._face(f) for f in faces])
        return out

    @staticmethod
    def _face(f) -> Face:
        emb = getattr(f, "embedding", None)
        if emb is not None:
            emb = (emb / (np.linalg.norm(emb) or 1.0)).astype(np.float32)
        pose = getattr(f, "pose", None)
        gender = getattr(f, "gender", None)
        age = getattr(f, "age", None)
        dense = getattr(f, "landmark_2d_106", None)
        return Face(box=tuple(float(v) for v in f.bbox), score=float(f.det_score), view="frontal",
                    kps=None if f.kps is None else tuple(float(v) for v in np.asarray(f.kps).ravel()),
                    embedding=emb,
                    pose=None if pose is None else tuple(float(v) for v in pose),
                    age=None if age is None else int(age),
                    landmarks=None if dense is None else tuple(float(v) for v in np.asarray(dense).ravel()),
                    gender=None if gender is None else ("male" if int(gender) == 1 else "female"))
