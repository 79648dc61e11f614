"""Scene cuts with PySceneDetect (ContentDetector by default, AdaptiveDetector selectable)."""
from __future__ import annotations

import bisect
from typing import Sequence

DETECTORS = ("content", "adaptive")


def detect_cuts(path: str, detector: str = "content", start: int | None = None,
                stop: int | None = None) -> list[int]:
    """Frame indices where a new shot starts (the first frame of each scene but the first),
    looking only at frames ``start`` to ``stop`` when given (indices stay absolute)."""
    from scenedetect import AdaptiveDetector, ContentDetector, detect

    if detector not in DETECTORS:
        raise ValueError(f"unknown scene detector {detector!r}; known: {', '.join(DETECTORS)}")
    det = ContentDetector() if detector == "content" else AdaptiveDetector()
    scenes = detect(path, det, start_time=start or None, end_time=stop)
    return [start.frame_num for start, _ in scenes[1:]]


def scene_of(index: int, cuts: Sequence[int]) -> int:
    """0-based scene number of frame ``index`` given sorted ``cuts``."""
    return bisect.bisect_right(cuts, index)


def near_cut(index: int, cuts: Sequence[int], window: int) -> bool:
    """True when ``index`` lies within ``window`` frames of a cut (either side)."""
    i = bisect.bisect_left(cuts, index - window)
    return i < len(cuts) and cuts[i] <= index + window
