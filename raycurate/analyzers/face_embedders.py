"""Identity embeddings (and, with InsightFace, 3D head pose, 106 landmarks, age and gender) of faces
already found, from their boxes and 5 landmarks.

- :class:`DlibEmbedder`: dlib's 128-d ResNet descriptor after its own 5-point alignment on the box
  (weights ``dlib-face-recognition-resnet-v1``, shipped in ``face_recognition_models``). Vectors
  are stored as dlib returns them (norm ~1.4), so dlib's published same-person rule holds on the
  stored values: Euclidean distance <= 0.6.
- :class:`InsightFaceEmbedder`: the pack's ArcFace (512-d, L2-normalised; aligned on the detector's
  5 landmarks), plus its ``1k3d68`` (head pose), ``2d106det`` and ``genderage`` models where the
  pack has them.

Every vector is stored with the id of the model that made it: vectors of two models are never compared.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from . import insightface_pack
from .base import package_version
from .face_detector import Face
from .onnx import provider_label, providers_for

DLIB_ID = "dlib-face-recognition-resnet-v1"
# Main-face vector column and width per embedding family (a LanceDB vector column has one width).
VECTOR_COLUMNS = {"arcface": ("face_embedding", 512), "dlib": ("face_embedding_dlib", 128)}
FACE_VECTOR_COLUMNS = tuple(col for col, _ in VECTOR_COLUMNS.values())
# Those columns declared: the main face's vector on ``images`` (face_features) and each face's on ``faces``.
VECTOR_FIELDS: list[pa.Field] = [pa.field(col, pa.list_(pa.float32(), dim)) for col, dim in VECTOR_COLUMNS.values()]
# Cosine distance at or below which two faces are one person, per family. ArcFace: 0.5. dlib: its published
# rule is Euclidean <= 0.6 on its raw vectors, whose norms sit near 1.39 (measured on tests/data), so
# cosine = d^2 / (2 |a| |b|) ~ 0.36 / 3.86 ~ 0.09. Measured on 18 labelled photos of 5 people and seeded
# augmented copies (scripts/eval_identities.py): pair precision and recall >= 0.98 only for 0.0925-0.0975
# over three seeds, and centroid clustering for 0.095-0.11; hence 0.095. This is the face-to-face pair rule
# (face_search's same_person). Identities (face to centroid, with a margin over the second-nearest identity) use
# people.threshold_<family> / people.margin_<family>: dlib 0.06 / 0.0175, chosen on tuning data only
# (scripts/tune_identities.py) and scored on held-apart people (scripts/eval_heldout_identities.py).
SAME_PERSON = {"arcface": 0.5, "dlib": 0.095}


@dataclass
class FaceFeatures:
    embedding: np.ndarray | None = None
    pose: tuple[float, float, float] | None = None     # pitch, yaw, roll (degrees), 3D model only
    landmarks: tuple[float, ...] | None = None         # 106 points x, y in pixels
    age: int | None = None
    gender: str | None = None


class FaceEmbedder(abc.ABC):
    family: str                 # key of VECTOR_COLUMNS
    needs_kps: bool             # aligns on the detector's 5 landmarks
    gives_pose: bool = False

    @abc.abstractmethod
    def load(self) -> None: ...

    @abc.abstractmethod
    def features(self, rgb: np.ndarray, faces: Sequence[Face]) -> list[FaceFeatures]:
        """One result per face, in order."""

    @abc.abstractmethod
    def model_name(self) -> str:
        """The id stored beside every vector (``face_embedding_model``)."""

    @abc.abstractmethod
    def required_models(self) -> list[str]: ...

    def version(self) -> str:
        return ""


class DlibEmbedder(FaceEmbedder):
    family = "dlib"
    needs_kps = False

    def __init__(self, *, models_dir: str | None = None) -> None:
        self.models_dir = models_dir
        self._shape: Any = None
        self._net: Any = None

    def load(self) -> None:
        import dlib

        from .. import models

        root = models.models_dir(self.models_dir)
        models.require(DLIB_ID, root)
        self._shape = dlib.shape_predictor(str(models.role_path(DLIB_ID, "shape_predictor_5", root)))
        self._net = dlib.face_recognition_model_v1(str(models.role_path(DLIB_ID, "recognition", root)))

    def model_name(self) -> str:
        return DLIB_ID

    def required_models(self) -> list[str]:
        return [DLIB_ID]

    def version(self) -> str:
        return package_version("dlib-bin", "dlib")

    def features(self, rgb: np.ndarray, faces: Sequence[Face]) -> list[FaceFeatures]:
        import dlib

        if not faces:
            return []
        img = np.require(rgb, np.uint8, ["C_CONTIGUOUS", "WRITEABLE"])   # dlib wants its own writable buffer
        shapes = dlib.full_object_detections()
        for f in faces:
            x1, y1, x2, y2 = (int(round(v)) for v in f.box)
            shapes.append(self._shape(img, dlib.rectangle(x1, y1, x2, y2)))
        vectors = self._net.compute_face_descriptor(img, shapes)
        return [FaceFeatures(embedding=np.asarray(v, dtype=np.float32)) for v in vectors]


class InsightFaceEmbedder(FaceEmbedder):
    family = "arcface"
    needs_kps = True

    def __init__(self, *, pack: str = "buffalo_l", device: str = "cpu", models_dir: str | None = None) -> None:
        self.pack = pack
        self.device = device
        self.models_dir = models_dir
        self.providers = ["CPUExecutionProvider"]
        self._files: insightface_pack.Pack | None = None
        self._models: dict[str, Any] = {}

    @property
    def gives_pose(self) -> bool:  # type: ignore[override]
        return "landmark_3d_68" in self._models

    def load(self) -> None:
        from insightface.model_zoo import get_model

        files = insightface_pack.resolve(self.pack, self.models_dir, roles=insightface_pack.ROLES[1:])
        if "recognition" not in files.files:
            raise FileNotFoundError(f"InsightFace pack {self.pack} has no recognition model")
        self.providers = providers_for(self.device, "InsightFace")
        ctx = 0 if self.providers[0] == "CUDAExecutionProvider" else -1
        for role, path in files.files.items():
            model = get_model(str(path), providers=self.providers)
            model.prepare(ctx)
            self._models[role] = model
        self._files = files

    def model_name(self) -> str:
        assert self._files is not None, "call load() first"
        return self._files.provenance("recognition")

    def required_models(self) -> list[str]:
        return [] if insightface_pack.is_folder(self.pack) else [insightface_pack.registry_id(self.pack)]

    def version(self) -> str:
        return f"{package_version('insightface')}+{provider_label(self.providers)}"

    def features(self, rgb: np.ndarray, faces: Sequence[Face]) -> list[FaceFeatures]:
        from insightface.app.common import Face as InsightFace

        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        out = []
        for f in faces:
            face = InsightFace(bbox=np.asarray(f.box, dtype=np.float32), det_score=f.score,
                               kps=None if f.kps is None else np.asarray(f.kps, dtype=np.float32).reshape(5, 2))
            for role, model in self._models.items():
                if role != "recognition" or face.kps is not None:
                    model.get(bgr, face)
            emb = face.get("embedding")
            if emb is not None:
                emb = (np.asarray(emb, dtype=np.float32) / (np.linalg.norm(emb) or 1.0)).astype(np.float32)
            pose, dense, gender, age = (face.get(k) for k in ("pose", "landmark_2d_106", "gender", "age"))
            out.append(FaceFeatures(
                embedding=emb, pose=None if pose is None else tuple(float(v) for v in pose),
                landmarks=None if dense is None else tuple(float(v) for v in np.asarray(dense).ravel()),
                age=None if age is None else int(age),
                gender=None if gender is None else ("male" if int(gender) == 1 else "female")))
        return out
