"""Analysers: plain classes that score images. The Ray wiring lives in :mod:`raycurate.pipeline`."""
from __future__ import annotations

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


def build_analyzer(name: str, section: Mapping[str, Any]) -> Analyzer:
    """An analyser from its config section (the pool keys are the pipeline's business)."""
    kwargs = {k: v for k, v in section.items() if k not in POOL_KEYS}
    return ANALYZERS[name](**kwargs)


def check_analyzers(cfg: Mapping[str, Any]) -> None:
    """Build every enabled analyser (no model is loaded) so that a bad section fails now, naming it."""
    from ..config import ConfigError

    for name in ANALYZERS:
        if cfg["analyzers"][name]["enabled"]:
            try:
                build_analyzer(name, cfg["analyzers"][name])
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"config section analyzers.{name}: {exc}") from exc


def enabled_analyzers(cfg: Mapping[str, Any]) -> list[Analyzer]:
    return [build_analyzer(name, cfg["analyzers"][name])
            for name in ANALYZERS if cfg["analyzers"][name]["enabled"]]


__all__ = ["ANALYZERS", "Analyzer", "check_analyzers", "ContentVectorAnalyzer", "FaceAnalyzer", "FaceDetector",
           "HaarFaceDetector", "NsfwAnalyzer", "QualityAnalyzer", "Resources", "build_analyzer",
           "enabled_analyzers"]
