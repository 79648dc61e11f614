"""Square face and upper-body crops: their geometry in the picture and the JPEG files written."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .options import CropOptions

JPEG_QUALITY = 95
VISIBLE = 0.5          # keypoint confidence that counts as visible (as the pose analyser's default)


def square_region(box: Sequence[float], padding: float, width: int, height: int) -> tuple[int, int, int]:
    """(x, y, side) of the square crop around the pixel ``box`` (x1, y1, x2, y2).

    The side is the box's larger side plus ``padding`` of it on each side, shrunk to the
    picture's shorter side when larger (never below the box's larger side), and the square
    is moved inside the picture where it fits; only a box larger than the picture's shorter
    side leaves part of the square outside (filled black by :func:`crop_square`).
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    big = max(x2 - x1, y2 - y1, 1.0)
    side = max(1, round(min(big * (1 + 2 * padding), max(min(width, height), big))))

    def place(centre: float, extent: int) -> int:
        start = round(centre - side / 2)
        return min(max(start, 0), extent - side) if side <= extent else (extent - side) // 2

    return place((x1 + x2) / 2, width), place((y1 + y2) / 2, height), side


def crop_square(rgb: np.ndarray, x: int, y: int, side: int, size: int) -> np.ndarray:
    """The ``side`` square at (x, y) of ``rgb`` (black outside the picture), resized to ``size``."""
    import cv2

    h, w = rgb.shape[:2]
    out = np.zeros((side, side, 3), dtype=np.uint8)
    sx1, sy1, sx2, sy2 = max(x, 0), max(y, 0), min(x + side, w), min(y + side, h)
    if sx2 > sx1 and sy2 > sy1:
        out[sy1 - y:sy2 - y, sx1 - x:sx2 - x] = rgb[sy1:sy2, sx1:sx2]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(out, (size, size), interpolation=interp)


def upper_body_box(row: Mapping[str, Any], width: int, height: int) -> list[float] | None:
    """Pixel box (x1, y1, x2, y2) of the upper body of the largest person, or None.

    With pose keypoints (the largest person, a shoulder and a hip visible): from the top of
    the person's box down to the lowest visible hip, across the visible shoulders and hips.
    Without: from the largest face box, head plus three face heights below the chin (about
    chin to hips on an adult), three face heights wide, centred on the face.
    """
    kps, boxes = row.get("pose_keypoints") or [], row.get("pose_boxes") or []
    if kps and kps[0] is not None:
        k = np.asarray(kps[0], dtype=np.float64).reshape(17, 3)
        shoulders = [i for i in (5, 6) if k[i, 2] >= VISIBLE]
        hips = [i for i in (11, 12) if k[i, 2] >= VISIBLE]
        if shoulders and hips:
            pts = k[shoulders + hips, :2] * [width, height]
            top = boxes[0][1] * height if boxes and boxes[0] is not None else pts[:, 1].min()
            return [pts[:, 0].min(), min(top, pts[:, 1].min()), pts[:, 0].max(), pts[:, 1].max()]
    faces = row.get("face_boxes") or []
    if faces and faces[0] is not None:
        x1, y1, x2, y2 = faces[0][0] * width, faces[0][1] * height, faces[0][2] * width, faces[0][3] * height
        fh, cx = y2 - y1, (x1 + x2) / 2
        return [cx - 1.5 * fh, y1, cx + 1.5 * fh, y2 + 3 * fh]
    return None


def _jpeg_bytes(img: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def write_crops(out: Any, row: Mapping[str, Any], data: bytes, stem: str, face: CropOptions | None,
                body: CropOptions | None) -> tuple[list[str], list[str], list[str]]:
    """Write the face crops (``face_crops/<stem>_f<k>.jpg``) and the upper-body crop (``body_crops/<stem>_b0.jpg``)
    of one image (its bytes ``data``) into ``out`` (an :class:`~raycurate.storage.OutputDir`); returns the face
    crops written, the body crops written and the errors."""
    from ..decode import DecodeError, decode_image

    faces: list[str] = []
    bodies: list[str] = []
    errors: list[str] = []
    try:
        rgb = decode_image(data).rgb     # upright (EXIF applied), full size: the boxes' frame
    except DecodeError as exc:
        return faces, bodies, [f"export crop: {exc}"]
    h, w = rgb.shape[:2]
    jobs: list[tuple[str, list[float], CropOptions, list[str]]] = []
    if face is not None:
        for k, b in enumerate(row.get("face_boxes") or []):
            if b is not None:
                jobs.append((f"face_crops/{stem}_f{k}.jpg", [b[0] * w, b[1] * h, b[2] * w, b[3] * h], face, faces))
    if body is not None:
        box = upper_body_box(row, w, h)
        if box is not None:
            jobs.append((f"body_crops/{stem}_b0.jpg", box, body, bodies))
    for rel, box, opt, done in jobs:
        try:
            x, y, side = square_region(box, opt.padding, w, h)
            out.write_bytes(rel, _jpeg_bytes(crop_square(rgb, x, y, side, opt.size)))
            done.append(rel)
        except (OSError, ValueError) as exc:
            errors.append(f"export crop {rel}: {exc}")
    return faces, bodies, errors
