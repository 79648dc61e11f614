"""What the Main tab lets a user set: video sampling parameters (filled by a preset), analyser toggles
and per-stage thresholds, each with the short explanation shown next to it. No gradio here.

Every value maps to one config key (``configs/default.yaml``); a run receives them as ``--set``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..config import load_config

# (label shown, preset name of configs/presets/)
PRESET_CHOICES: list[tuple[str, str]] = [("TikTok / Instagram", "tiktok"), ("YouTube", "youtube"),
                                         ("Custom", "custom")]


@dataclass(frozen=True)
class Param:
    key: str          # dotted config key
    label: str
    info: str         # what it does; the trade-off
    kind: type        # int, float or bool
    minimum: float = 0
    maximum: float = 1
    step: float = 1


VIDEO_PARAMS: list[Param] = [
    Param("video.sample_rate", "Sample rate",
          "Frames stepped between candidates (1 = every frame, 5 = one in five). Lower finds more moments; "
          "costs more decoding and analysis.", int, 1, 60, 1),
    Param("video.min_separation", "Minimum separation",
          "Chosen frames are at least this many source frames apart. Higher gives more varied frames; "
          "may skip a good one next to another.", int, 0, 300, 1),
    Param("video.max_frames", "Maximum frames per video",
          "At most this many frames kept per video. Higher keeps more; more near duplicates to review.",
          int, 1, 500, 1),
    Param("video.scene_detection", "Scene detection",
          "Find cuts (PySceneDetect): frames near a cut score higher and each scene keeps its best frame. "
          "Costs one more decode of each video.", bool),
    Param("video.batch_size", "Batch size",
          "Frames analysed together by each stage. Larger is faster on a GPU; uses more memory.",
          int, 1, 256, 1),
    Param("video.motion_threshold", "Motion threshold (%)",
          "Share of pixels that must change since the last kept frame (0-100). 0-20 keeps similar frames; "
          "25-50 keeps only clearly different ones (fewer frames to analyse).", float, 0, 100, 0.5),
]

ANALYSERS: list[tuple[str, str]] = [
    ("quality", "Quality: sharpness, exposure, contrast, noise (OpenCV, no download)"),
    ("content", "Content vector: perceptual hash for near duplicates and image search (no download)"),
    ("face", "Faces: every face's box, 5 landmarks, face sharpness (InsightFace, else CenterFace)"),
    ("face_features", "Face features: identity embedding, head pose (InsightFace ArcFace, else dlib)"),
    ("nsfw", "NSFW: NudeNet detector (ships with its wheel)"),
    ("emotion", "Emotion per face (DeepFace; needs its weights)"),
    ("pose", "Body pose: people, 17 keypoints, full body (YOLO pose; needs its weights)"),
    ("clip", "CLIP: embedding, shot/clothing/lighting labels, aesthetic, text search (needs its weights)"),
]

THRESHOLDS: list[Param] = [
    Param("cascade.stage1.threshold", "Video Stage 1 threshold",
          "Quality + face score a sampled frame needs to reach Stage 2. Higher drops more frames early "
          "(faster); may lose usable ones.", float, 0, 1, 0.01),
    Param("cascade.stage2.threshold", "Video Stage 2 threshold",
          "Score after content and NSFW checks needed to reach Stage 3.", float, 0, 1, 0.01),
    Param("cascade.stage3.threshold", "Video Stage 3 threshold",
          "Ensemble score (sharpness, exposure, face size, ...) a frame needs to be a winner candidate.",
          float, 0, 1, 0.01),
    Param("filter.min_faces", "Minimum faces",
          "Images with fewer detected faces are dropped (0 keeps images without people).", int, 0, 10, 1),
    Param("filter.max_nsfw_score", "Maximum NSFW score",
          "Images scoring above this are dropped. Lower is stricter.", float, 0, 1, 0.01),
    Param("filter.min_side", "Minimum side (px)", "Images smaller than this in width or height are dropped.",
          int, 0, 2048, 16),
    Param("filter.drop_blurry", "Drop blurry images",
          "Drop images the quality analyser marks blurry (variance of the Laplacian under its threshold).", bool),
    Param("dedup.columns.content_vector", "Near-duplicate distance",
          "Cosine distance under which two images count as near duplicates (only the best is kept). "
          "Higher merges more; may merge different shots.", float, 0, 0.5, 0.01),
]

PROFILE_INFO = ("fast-cpu: only models that ship in the wheels, smaller analysis sizes (a laptop). "
                "full-cpu / full-gpu: every analyser whose weights are present.")


def defaults(preset: str | None = None, profile: str | None = None) -> dict[str, Any]:
    """Every parameter's value (dotted key -> value) for ``preset`` and ``profile``."""
    cfg = load_config(preset=preset, profile=profile)
    out = {p.key: get_dotted(cfg, p.key) for p in VIDEO_PARAMS + THRESHOLDS}
    out.update({f"analyzers.{name}.enabled": cfg["analyzers"][name]["enabled"] for name, _ in ANALYSERS})
    return out


def preset_values(preset: str) -> list[Any]:
    """The video parameters a preset sets, in :data:`VIDEO_PARAMS` order."""
    values = defaults(preset=preset)
    return [values[p.key] for p in VIDEO_PARAMS]


def get_dotted(cfg: Mapping[str, Any], key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = node[part]
    return node


def coerce(param: Param, value: Any) -> Any:
    """A component's value as the config expects it (a slider gives floats; None stays None)."""
    if value is None:
        return None
    if param.kind is bool:
        return bool(value)
    if param.kind is int:
        return int(round(float(value)))
    return float(value)


def overrides(values: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(key, value) pairs for the run, typed, from the UI's parameter values."""
    by_key = {p.key: p for p in VIDEO_PARAMS + THRESHOLDS}
    out: list[tuple[str, Any]] = []
    for key, value in values.items():
        if key in by_key:
            out.append((key, coerce(by_key[key], value)))
        elif key.startswith("analyzers.") and key.endswith(".enabled"):
            out.append((key, bool(value)))
        else:
            raise KeyError(f"not a UI parameter: {key}")
    return out


__all__ = ["ANALYSERS", "PRESET_CHOICES", "PROFILE_INFO", "Param", "THRESHOLDS", "VIDEO_PARAMS", "coerce",
           "defaults", "get_dotted", "overrides", "preset_values"]
