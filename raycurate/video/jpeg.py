"""A video frame as the JPEG bytes of its winner's file (plain code, no ray): made once where the frame is
decoded, carried through the cascade, written as they are."""
from __future__ import annotations

import numpy as np


def encode_frame(rgb: np.ndarray, quality: int) -> bytes | None:
    """One RGB frame as JPEG bytes at ``quality`` (``video.frame_quality``); None if it cannot be encoded."""
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return buf.tobytes() if ok else None
