"""What the Main tab lets a user set: video sampling parameters (filled by a preset), analyser toggles
and per-stage thresholds, each with the short explanation shown next to it. No gradio here.

Every value maps to one config key; its label, help, type and slider bounds come from the settings
schema (:mod:`raycurate.settings`). A run receives them as ``--set``. The UI's typed settings are built here
(:func:`settings_for`, :func:`recorded`) and nowhere else in the UI.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..config import load_settings, recorded_settings
from ..settings import KEYS, Settings

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


def param(key: str) -> Param:
    """The UI parameter of a config key, from the settings schema (label and slider bounds: its widget)."""
    k = KEYS[key]
    if k.widget is None:
        raise KeyError(f"{key} has no widget in the settings schema")
    kind = bool if bool in k.types else float if float in k.types else int
    w = k.widget
    return Param(key, w.label, k.help, kind, w.minimum, w.maximum, w.step)


# video.batch_size is auto (sized from the GPUs when the run starts: docs/concepts/engine.md, "GPU sizing"): no
# slider, which would always send a number
VIDEO_PARAMS: list[Param] = [param(f"video.{k}") for k in ("sample_rate", "min_separation", "max_frames",
                                                             "scene_detection", "motion_threshold")]

ANALYSERS: list[tuple[str, str]] = [
    ("quality", "Quality: sharpness, exposure, contrast, noise (OpenCV, no download)"),
    ("content", "Content vector: perceptual hash for near duplicates and image search (no download)"),
    ("face", "Faces: every face's box, 5 landmarks, face sharpness (InsightFace, else CenterFace)"),
    ("face_features", "Face features: identity embedding, head pose (InsightFace ArcFace, else dlib)"),
    ("nsfw", "NSFW: NudeNet detector (ships with its wheel)"),
    ("emotion", "Emotion per face (DeepFace where its weights are present, else FER)"),
    ("pose", "Body pose: people, 17 keypoints, full body (YOLO pose where its weights are present, else BlazePose)"),
    ("clip", "CLIP: embedding, shot/clothing/lighting labels, aesthetic, text search (needs its weights)"),
]

THRESHOLDS: list[Param] = [param(k) for k in (
    "cascade.stage1.threshold", "cascade.stage2.threshold", "cascade.stage3.threshold", "filter.min_faces",
    "filter.max_nsfw_score", "filter.min_side", "filter.drop_blurry", "dedup.columns.content_vector")]

PROFILE_INFO = ("fast-cpu: only models that ship in the wheels, smaller analysis sizes (a laptop). "
                "full-cpu / full-gpu: every analyser whose weights are present.")


def settings_for(preset: str | None = None, profile: str | None = None,
                 overrides: Iterable[tuple[str, Any]] = ()) -> Settings:
    """The typed settings of what the UI starts (a run, an export) or shows (a profile's defaults): the
    defaults, ``profile``, ``preset``, then ``overrides`` (dotted keys), checked as the CLI checks them."""
    return load_settings(overrides=list(overrides), preset=preset, profile=profile)


def recorded(manifest: Mapping[str, Any] | None) -> Settings | None:
    """The typed settings a finished run's manifest recorded (None: no manifest, or no usable config in it)."""
    return recorded_settings(manifest)


def defaults(preset: str | None = None, profile: str | None = None) -> dict[str, Any]:
    """Every parameter's value (dotted key -> value) for ``preset`` and ``profile``."""
    settings = settings_for(preset, profile)
    out = {p.key: get_dotted(settings, p.key) for p in VIDEO_PARAMS + THRESHOLDS}
    out.update({f"analyzers.{name}.enabled": getattr(settings.analyzers, name).enabled for name, _ in ANALYSERS})
    return out


def preset_values(preset: str) -> list[Any]:
    """The video parameters a preset sets, in :data:`VIDEO_PARAMS` order."""
    values = defaults(preset=preset)
    return [values[p.key] for p in VIDEO_PARAMS]


def get_dotted(settings: Settings, key: str) -> Any:
    """The value of dotted ``key`` in the typed settings (``video.sample_rate`` -> ``settings.video.sample_rate``)."""
    node: Any = settings
    for part in key.split("."):
        node = getattr(node, part)
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
           "defaults", "get_dotted", "overrides", "param", "preset_values", "recorded", "settings_for"]
