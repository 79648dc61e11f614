"""Which frames of a video are analysed and which are finally kept.

Two steps, both plain functions of stored numbers:

1. While decoding: every ``sample_rate``-th frame is a candidate (1 = every
   frame, 5 = take one, skip four); a candidate whose picture differs from the
   last kept one by less than ``motion_threshold`` (0-100) is dropped.
2. After scoring: frames near a scene cut get a ``scene_bonus`` (20%); then
   the best frames are chosen greedily, at least ``min_separation`` source
   frames apart, at most ``max_frames`` of them, and, with scene detection,
   the best frame of every scene first, so each scene keeps one where the
   separation allows; with ``spread`` (a ``--person`` run), then one frame of
   each pose/expression bin in turn (best bins first) before any bin gets a
   second, so the winners are not 30 near-identical frontal frames.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np


MOTION_THUMB_WIDTH = 64
MOTION_PIXEL_DELTA = 8.0   # grey levels a thumbnail pixel must change by to count as changed


def motion_thumb(rgb: np.ndarray) -> np.ndarray:
    """A small grey copy used to compare frames (64 px wide, float32)."""
    h, w = rgb.shape[:2]
    size = (MOTION_THUMB_WIDTH, max(1, round(h * MOTION_THUMB_WIDTH / w)))
    return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA).astype(np.float32)


def motion_score(a: np.ndarray, b: np.ndarray) -> float:
    """How different two thumbnails are, 0-100: the percentage of pixels that changed by more than
    ``MOTION_PIXEL_DELTA`` grey levels. People walking in a fixed shot score 2-5, a pan 20-60, a cut 80+."""
    return float((np.abs(a - b) > MOTION_PIXEL_DELTA).mean() * 100.0)


class MotionFilter:
    """Keeps a frame when it differs enough from the last kept one (the first is always kept)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._last: np.ndarray | None = None

    def __call__(self, rgb: np.ndarray) -> tuple[bool, float | None]:
        thumb = motion_thumb(rgb)
        if self._last is None or thumb.shape != self._last.shape:
            self._last = thumb
            return True, None
        score = motion_score(thumb, self._last)
        if score < self.threshold:
            return False, score
        self._last = thumb
        return True, score


@dataclass
class Candidate:
    index: int
    score: float    # with the scene bonus already applied where the frame is near a cut
    scene: int = 0
    bin: str = ""   # head-pose / expression bin (``spread``)


def select_frames(candidates: Sequence[Candidate], *, min_separation: int, max_frames: int | None,
                  per_scene: bool, spread: bool = False) -> list[Candidate]:
    """The chosen frames, in index order (see the module docstring for the rule)."""
    limit = max_frames if max_frames is not None else len(candidates)
    chosen: list[Candidate] = []
    taken: set[int] = set()

    def fits(c: Candidate) -> bool:
        return c.index not in taken and all(abs(c.index - o.index) >= min_separation for o in chosen)

    def take(c: Candidate) -> None:
        chosen.append(c)
        taken.add(c.index)

    ranked = sorted(candidates, key=lambda c: (-c.score, c.index))
    if per_scene:
        best: dict[int, Candidate] = {}
        for c in ranked:
            best.setdefault(c.scene, c)
        for c in sorted(best.values(), key=lambda c: (-c.score, c.index)):
            if len(chosen) >= limit:
                break
            # the scene's best frame, or its best frame that keeps the separation
            pick = next((o for o in ranked if o.scene == c.scene and fits(o)), None)
            if pick is not None:
                take(pick)
    if spread:
        by_bin: dict[str, list[Candidate]] = {}
        for c in ranked:
            by_bin.setdefault(c.bin, []).append(c)
        progress = True
        while progress and len(chosen) < limit:   # one frame per bin per round, best bins first
            progress = False
            for members in by_bin.values():
                pick = next((o for o in members if fits(o)), None)
                if pick is not None and len(chosen) < limit:
                    take(pick)
                    progress = True
    for c in ranked:
        if len(chosen) >= limit:
            break
        if fits(c):
            take(c)
    return sorted(chosen, key=lambda c: c.index)
