"""The detail view's picture: the original (upright) with the stored boxes and keypoints drawn on it.

Every box and point in the table is a fraction of the upright original's width and height, so they
are drawn on the decoded original at any display size.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

FACE = (46, 204, 64)        # face boxes
KPS = (255, 65, 54)         # 5 face keypoints (eyes, nose, mouth corners)
POSE = (0, 116, 217)        # body keypoints and boxes
NSFW = (255, 133, 27)       # NudeNet detections
# COCO skeleton (pairs of the 17 body keypoints)
SKELETON = ((5, 7), (7, 9), (6, 8), (8, 10), (5, 6), (5, 11), (6, 12), (11, 12), (11, 13), (13, 15),
            (12, 14), (14, 16), (0, 1), (0, 2), (1, 3), (2, 4))
VISIBLE = 0.5


def load_rgb(uri: str, max_side: int = 1024) -> np.ndarray:
    """The original at ``uri``, upright (EXIF applied), at most ``max_side`` on its longest side."""
    from ..decode import decode_image
    from ..sources import read_bytes

    return decode_image(read_bytes(uri), max_side=max_side).rgb


def annotate(rgb: np.ndarray, row: Mapping[str, Any]) -> np.ndarray:
    """``rgb`` with the row's face boxes (numbered, largest first), face keypoints, body pose and NSFW
    detections drawn on it."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(np.ascontiguousarray(rgb))
    h, w = rgb.shape[:2]
    draw = ImageDraw.Draw(img)
    line = max(2, round(max(w, h) / 300))
    dot = line + 1

    def box(b: Any, colour: tuple[int, int, int], text: str | None = None) -> None:
        x1, y1, x2, y2 = b[0] * w, b[1] * h, b[2] * w, b[3] * h
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=line)
        if text:
            draw.text((x1 + line, max(0, y1 - 12 - line)), text, fill=colour)

    def point(x: float, y: float, colour: tuple[int, int, int]) -> None:
        draw.ellipse([x * w - dot, y * h - dot, x * w + dot, y * h + dot], fill=colour)

    for det in row.get("nsfw_detections") or []:
        if det and det.get("box") is not None:
            box(det["box"], NSFW, f"{det.get('label', '')} {det.get('score') or 0:.2f}")
    for kp in row.get("pose_keypoints") or []:
        if kp is None:
            continue
        pts = np.asarray(kp, dtype=np.float32).reshape(17, 3)
        for a, b in SKELETON:
            if pts[a, 2] >= VISIBLE and pts[b, 2] >= VISIBLE:
                draw.line([pts[a, 0] * w, pts[a, 1] * h, pts[b, 0] * w, pts[b, 1] * h], fill=POSE, width=line)
        for x, y, c in pts:
            if c >= VISIBLE:
                point(float(x), float(y), POSE)
    for b in row.get("pose_boxes") or []:
        if b is not None:
            box(b, POSE)
    scores = row.get("face_scores") or []
    for i, b in enumerate(row.get("face_boxes") or []):
        if b is not None:
            score = f" {scores[i]:.2f}" if i < len(scores) and scores[i] is not None else ""
            box(b, FACE, f"face {i}{score}")
    for kps in row.get("face_kps") or []:
        if kps is not None:
            for j in range(0, len(kps) - 1, 2):
                point(float(kps[j]), float(kps[j + 1]), KPS)
    return np.asarray(img)


LEGEND = ("green: face boxes (0 = largest) · red: face keypoints · blue: body pose · orange: NSFW detections")

__all__ = ["LEGEND", "annotate", "load_rgb"]
