"""Scene cuts with PySceneDetect (ContentDetector by default, AdaptiveDetector selectable), fed the frames the
video path already decoded: no second read of the file.

The detector sees every decoded frame, 256 px wide, bilinear, as PySceneDetect itself scales them: the
sampled frames, and the small copies of the frames between that the reader gives with ``thumbs``
(:mod:`raycurate.video.reader`). On tests/data/videos/testvideo.mp4 it finds the published cuts with decord
, OpenCV and PyAV. Every backend scales with OpenCV: swscale's own bilinear scaling (PyAV's
``to_ndarray(width=...)``) was slower here and, mixed with OpenCV's, gave ContentDetector a false cut at 691.
"""
from __future__ import annotations

import bisect
from typing import Sequence

import cv2
import numpy as np

from .reader import THUMB_WIDTH as CUT_WIDTH, thumb_size

DETECTORS = ("content", "adaptive")


class CutDetector:
    """Feed it decoded frames in order (``add``); ``cuts`` holds the frame indices where a new shot starts."""

    def __init__(self, detector: str = "content", fps: float | None = None) -> None:
        from scenedetect import AdaptiveDetector, ContentDetector

        if detector not in DETECTORS:
            raise ValueError(f"unknown scene detector {detector!r}; known: {', '.join(DETECTORS)}")
        self._detector = ContentDetector() if detector == "content" else AdaptiveDetector()
        self._fps = float(fps or 25.0)
        self.cuts: list[int] = []

    def add(self, index: int, rgb: np.ndarray) -> None:
        """One decoded frame (RGB, any size) with its 0-based index in the video."""
        from scenedetect import FrameTimecode

        h, w = rgb.shape[:2]
        # bilinear, as PySceneDetect scales: its published cuts of tests/data/videos/testvideo.mp4 are found
        small = cv2.resize(rgb, thumb_size(w, h), interpolation=cv2.INTER_LINEAR) if w > CUT_WIDTH else rgb
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)   # PySceneDetect works on OpenCV's BGR
        found = self._detector.process_frame(FrameTimecode(index, self._fps), bgr)
        self.cuts.extend(int(t.frame_num) for t in found if int(t.frame_num) > 0)

    def finish(self, last_index: int) -> list[int]:
        """The cuts, once the last frame was added (a detector may hold a cut back until it is sure)."""
        from scenedetect import FrameTimecode

        post = getattr(self._detector, "post_process", None)
        if post is not None:
            try:
                found = post(FrameTimecode(max(0, last_index), self._fps))
            except TypeError:   # older signature: the frame number
                found = post(max(0, last_index))
            self.cuts.extend(int(getattr(t, "frame_num", t)) for t in found or [] if int(getattr(t, "frame_num", t)) > 0)
        self.cuts = sorted(set(self.cuts))
        return self.cuts


def scene_of(index: int, cuts: Sequence[int]) -> int:
    """0-based scene number of frame ``index`` given sorted ``cuts``."""
    return bisect.bisect_right(cuts, index)


def near_cut(index: int, cuts: Sequence[int], window: int) -> bool:
    """True when ``index`` lies within ``window`` frames of a cut (either side)."""
    i = bisect.bisect_left(cuts, index - window)
    return i < len(cuts) and cuts[i] <= index + window
