"""Square face and upper-body crops: their geometry in the picture and the JPEG files written."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .options import CropOptions

JPEG_QUALITY = 95
VISIBLE = 0.5          # keypoint confidence that counts as visible (as the pose analyser's default)


def aspect_of(bucket: str) -> float:
    """Width / height of an aspect bucket ``"W:H"``."""
    w, h = (float(v) for v in bucket.split(":"))
    return w / h


def output_size(size: int, bucket: str) -> tuple[int, int]:
    """(width, height) of a crop of training size ``size`` (its longer side) in aspect ``bucket``; the shorter
    side a multiple of 64, as trainers' aspect buckets are."""
    a = aspect_of(bucket)
    short = max(64, int(round(size * min(a, 1 / a) / 64)) * 64)
    return (size, short) if a >= 1 else (short, size)


def region(box: Sequence[float], padding: float, width: int, height: int, aspect: float = 1.0
           ) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the crop of aspect ``aspect`` (width / height) around the pixel ``box`` (x1, y1, x2, y2).

    Its shorter side is the box's larger side plus ``padding`` of it on each side; the region shrinks to fit
    the picture (never below the box's larger side) and moves inside it where it fits; only a box larger than
    the picture leaves part of the region outside (filled black by :func:`crop_region`).
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    big = max(x2 - x1, y2 - y1, 1.0)
    short = big * (1 + 2 * padding)
    rw, rh = (short * aspect, short) if aspect >= 1 else (short, short / aspect)
    fit = min(1.0, width / rw, height / rh)   # shrink to the picture, keeping the aspect ...
    fit = max(fit, big / min(rw, rh))          # ... but never below the box
    rw, rh = max(1, round(rw * fit)), max(1, round(rh * fit))

    def place(centre: float, extent: int, side: int) -> int:
        start = round(centre - side / 2)
        return min(max(start, 0), extent - side) if side <= extent else (extent - side) // 2

    return place((x1 + x2) / 2, width, rw), place((y1 + y2) / 2, height, rh), rw, rh


def square_region(box: Sequence[float], padding: float, width: int, height: int) -> tuple[int, int, int]:
    """(x, y, side) of the square crop around the pixel ``box``: :func:`region` with aspect 1."""
    x, y, side, _ = region(box, padding, width, height, 1.0)
    return x, y, side


def crop_region(rgb: np.ndarray, x: int, y: int, rw: int, rh: int, out_w: int, out_h: int) -> np.ndarray:
    """The ``rw`` x ``rh`` region at (x, y) of ``rgb`` (black outside the picture), resized to out_w x out_h."""
    import cv2

    h, w = rgb.shape[:2]
    out = np.zeros((rh, rw, 3), dtype=np.uint8)
    sx1, sy1, sx2, sy2 = max(x, 0), max(y, 0), min(x + rw, w), min(y + rh, h)
    if sx2 > sx1 and sy2 > sy1:
        out[sy1 - y:sy2 - y, sx1 - x:sx2 - x] = rgb[sy1:sy2, sx1:sx2]
    interp = cv2.INTER_AREA if rw > out_w else cv2.INTER_CUBIC
    return cv2.resize(out, (out_w, out_h), interpolation=interp)


def crop_square(rgb: np.ndarray, x: int, y: int, side: int, size: int) -> np.ndarray:
    """The ``side`` square at (x, y) of ``rgb`` (black outside the picture), resized to ``size``."""
    return crop_region(rgb, x, y, side, side, size, size)


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


def _variants(opt: CropOptions) -> list[tuple[int, str]]:
    """(size, bucket) of every crop of one box: ``size`` and ``sizes``, in each aspect bucket."""
    sizes = list(dict.fromkeys([opt.size, *opt.sizes]))
    return [(s, b) for s in sizes for b in dict.fromkeys(opt.buckets or ("1:1",))]


def _crop_jobs(row: Mapping[str, Any], stem: str, w: int, h: int, face: CropOptions | None,
               body: CropOptions | None) -> list[tuple[str, str, int | None, list[float], CropOptions]]:
    """(file name stem, kind, face index, pixel box, options) of every box to crop."""
    jobs: list[tuple[str, str, int | None, list[float], CropOptions]] = []
    if face is not None:
        for k, b in enumerate(row.get("face_boxes") or []):
            if b is not None:
                jobs.append((f"face_crops/{stem}_f{k}", "face", k, [b[0] * w, b[1] * h, b[2] * w, b[3] * h], face))
    if body is not None:
        box = upper_body_box(row, w, h)
        if box is not None:
            jobs.append((f"body_crops/{stem}_b0", "body", None, box, body))
    return jobs


def write_crops(out: Any, row: Mapping[str, Any], data: bytes, stem: str, face: CropOptions | None,
                body: CropOptions | None) -> tuple[list[str], list[str], list[str], list[dict[str, Any]]]:
    """Write the face crops (``face_crops/<stem>_f<k>.jpg``) and the upper-body crop (``body_crops/<stem>_b0.jpg``)
    of one image (its bytes ``data``) into ``out`` (an :class:`~raycurate.storage.OutputDir`), at each training
    size and aspect bucket (``_<W>x<H>`` added to the name unless only one square size is asked for); returns
    the face crops written, the body crops written, the errors, and each crop's record (file, kind, face index,
    its box in the upright original's pixels, its size)."""
    from ..decode import DecodeError, decode_image

    faces: list[str] = []
    bodies: list[str] = []
    records: list[dict[str, Any]] = []
    errors: list[str] = []
    try:
        rgb = decode_image(data).rgb     # upright (EXIF applied), full size: the boxes' frame
    except DecodeError as exc:
        return faces, bodies, [f"export crop: {exc}"], records
    h, w = rgb.shape[:2]
    for base, kind, k, box, opt in _crop_jobs(row, stem, w, h, face, body):
        variants = _variants(opt)
        for size, bucket in variants:
            ow, oh = output_size(size, bucket)
            rel = f"{base}.jpg" if variants == [(opt.size, "1:1")] else f"{base}_{ow}x{oh}.jpg"
            try:
                x, y, rw, rh = region(box, opt.padding, w, h, aspect_of(bucket))
                out.write_bytes(rel, _jpeg_bytes(crop_region(rgb, x, y, rw, rh, ow, oh)))
            except (OSError, ValueError) as exc:
                errors.append(f"export crop {rel}: {exc}")
                continue
            (faces if kind == "face" else bodies).append(rel)
            records.append({"file": rel, "kind": kind, "face_index": k, "box": [x, y, x + rw, y + rh],
                            "width": ow, "height": oh})
    return faces, bodies, errors, records
