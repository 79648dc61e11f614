"""Analysers: plain classes that score images. The Ray wiring lives in :mod:`raycurate.pipeline`."""
from __future__ import annotations

import inspect
from typing import Any, Mapping

from .base import Analyzer, Resources
from .content_vector import ContentVectorAnalyzer
from .face import FaceAnalyzer, FaceDetector, HaarFaceDetector
from .nsfw import NsfwAnalyzer
from .quality import QualityAnalyzer

# Config section name -> class. Order is the order of the actor pools in the pipeline.
ANALYZERS: dict[str, type[Analyzer]] = {
    "quality": QualityAnalyzer,
    "content": ContentVectorAnalyzer,
    "face": FaceAnalyzer,
    "nsfw": NsfwAnalyzer,
}


# Keys of an analyser's config section that configure its actor pool, not the analyser.
POOL_KEYS = frozenset({"enabled", "min_actors", "max_actors"})


def build_analyzer(name: str, section: Mapping[str, Any], models_cfg: Mapping[str, Any] | None = None
                   ) -> Analyzer:
    """An analyser from its config section (the pool keys are the pipeline's business) and the
    ``models`` section (models directory, strictness) for analysers that load weights."""
    cls = ANALYZERS[name]
    kwargs = {k: v for k, v in section.items() if k not in POOL_KEYS}
    accepted = inspect.signature(cls.__init__).parameters
    if models_cfg is not None and "models_dir" in accepted:
        kwargs["models_dir"] = models_cfg["dir"]
        kwargs["strict_models"] = models_cfg["profile"] == "strict"
    return cls(**kwargs)


def check_analyzers(cfg: Mapping[str, Any]) -> None:
    """Build every enabled analyser (no model is loaded) so that a bad section fails now, naming it."""
    from ..config import ConfigError

    for name in ANALYZERS:
        if cfg["analyzers"][name]["enabled"]:
            try:
                build_analyzer(name, cfg["analyzers"][name], cfg["models"])
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"config section analyzers.{name}: {exc}") from exc


def enabled_analyzers(cfg: Mapping[str, Any]) -> list[Analyzer]:
    return [build_analyzer(name, cfg["analyzers"][name], cfg["models"])
            for name in ANALYZERS if cfg["analyzers"][name]["enabled"]]


__all__ = ["ANALYZERS", "Analyzer", "check_analyzers", "ContentVectorAnalyzer", "FaceAnalyzer", "FaceDetector",
           "HaarFaceDetector", "NsfwAnalyzer", "QualityAnalyzer", "Resources", "build_analyzer",
           "enabled_analyzers"]
