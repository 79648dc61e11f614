"""InsightFace's SCRFD detector alone (boxes, scores, 5 landmarks), from a named pack or a folder.

Only the pack's detection file is loaded (``insightface.model_zoo.get_model``), so a
detection-only stage pays for nothing else; recognition, landmarks, head pose and
gender/age come from :mod:`raycurate.analyzers.face_embedders` where their columns are used.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import insightface_pack
from .base import package_version
from .face_detector import Face, FaceDetector
from .onnx import provider_label, providers_for


class InsightFaceDetector(FaceDetector):
    has_landmarks = True

    def __init__(self, *, pack: str = "buffalo_l", det_size: int = 640, det_thresh: float = 0.5,
                 max_faces: int = 32, device: str = "cpu", models_dir: str | None = None) -> None:
        self.pack = pack
        self.det_size = int(det_size)
        self.det_thresh = float(det_thresh)
        self.max_faces = int(max_faces)
        self.device = device
        self.models_dir = models_dir
        self.providers = ["CPUExecutionProvider"]
        self.model_id = (f"insightface-folder:{pack}" if insightface_pack.is_folder(pack)
                         else insightface_pack.registry_id(pack))
        self._model: Any = None
        self._served = ""

    def required_models(self) -> list[str]:
        return [] if insightface_pack.is_folder(self.pack) else [self.model_id]

    def load(self) -> None:
        from insightface.model_zoo import get_model

        files = insightface_pack.resolve(self.pack, self.models_dir, roles=("detection",))
        if "detection" not in files.files:
            raise FileNotFoundError(f"InsightFace pack {self.pack} has no detection model")
        self.providers = providers_for(self.device, "InsightFace detector")
        self._model = get_model(str(files.files["detection"]), providers=self.providers)
        ctx = 0 if self.providers[0] == "CUDAExecutionProvider" else -1
        self._model.prepare(ctx, input_size=(self.det_size, self.det_size), det_thresh=self.det_thresh)
        self._served = files.provenance("detection")

    def version(self) -> str:
        return f"{package_version('insightface')}+{provider_label(self.providers)}:{self._served}"

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        assert self._model is not None, "call load() first"
        out = []
        for rgb in images:
            boxes, kps = self._model.detect(np.ascontiguousarray(rgb[:, :, ::-1]), max_num=self.max_faces)
            faces = []
            for k in range(len(boxes)):
                points = None if kps is None else tuple(float(v) for v in np.asarray(kps[k]).ravel())
                faces.append(Face(box=tuple(float(v) for v in boxes[k, :4]), score=float(boxes[k, 4]), kps=points))
            out.append(faces)
        return out
