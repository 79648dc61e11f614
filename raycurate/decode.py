"""Image decoding to 8-bit RGB, upright, whatever the file's mode.

EXIF orientation is applied; grey, RGBA, 16-bit, palette and CMYK images become
8-bit RGB; an animated image gives its first frame. A file that cannot be
decoded raises :class:`DecodeError` with a short reason.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

EXIF_ORIENTATION_TAG = 0x0112


class DecodeError(ValueError):
    """The bytes are not an image raycurate can read."""


@dataclass
class DecodedImage:
    rgb: np.ndarray            # H x W x 3 uint8, upright
    width: int                 # upright size of the original, before any analysis resize
    height: int
    format: str                # PIL format name: JPEG, PNG, ...
    mode: str                  # PIL mode of the file: RGB, L, I;16, P, CMYK, ...
    orientation: int           # EXIF orientation that was applied (1 = none)
    n_frames: int              # frames in the file (animated GIF/WebP > 1)
    warning: str | None = None # something odd that did not stop decoding (e.g. a bad EXIF block)


def _orientation(img: Image.Image) -> tuple[int, str | None]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = int(img.getexif().get(EXIF_ORIENTATION_TAG, 1))
        except Exception as exc:  # a corrupt EXIF block must not lose the image
            return 1, f"unreadable EXIF: {exc}"
    warning = f"EXIF: {caught[0].message}" if caught else None
    return (value if 1 <= value <= 8 else 1), warning


def _to_rgb8(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        grey = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        finite = arr[np.isfinite(arr)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if lo >= 0.0 and hi <= 1.0:
            lo, hi = 0.0, 1.0
        scale = (hi - lo) or 1.0
        grey = np.clip((np.nan_to_num(arr, nan=lo) - lo) / scale * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    if mode != "RGB":
        img = img.convert("RGB")  # L, 1, CMYK (Pillow handles Adobe's inverted CMYK), YCbCr, LAB, HSV
    return np.asarray(img)


def decode_image(data: bytes, *, max_side: int | None = None, max_pixels: int | None = None) -> DecodedImage:
    """Decode ``data`` to an upright 8-bit RGB array, scaled so its longest side is at most ``max_side``."""
    if not data:
        raise DecodeError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if max_pixels is not None and img.width * img.height > max_pixels:
                raise DecodeError(f"image too large: {img.width}x{img.height} > {max_pixels} pixels")
            fmt, mode, n_frames = img.format or "", img.mode, int(getattr(img, "n_frames", 1) or 1)
            if n_frames > 1:
                img.seek(0)
            orientation, warning = _orientation(img)
            img.load()
    except DecodeError:
        raise
    except UnidentifiedImageError:
        raise DecodeError("not a readable image (unknown or corrupt format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecodeError(f"image too large: {exc}") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise DecodeError(f"corrupt or truncated image: {exc}") from None
    except Exception as exc:  # a plugin registered by another library (e.g. a HEIF opener) may fail its own way
        raise DecodeError(f"not a readable image ({type(exc).__name__}: {exc})") from None

    try:
        rgb = _to_rgb8(img)
    except (OSError, ValueError) as exc:
        raise DecodeError(f"cannot convert {mode} image to RGB: {exc}") from None
    if orientation != 1:
        rgb = _apply_orientation(rgb, orientation)
    height, width = rgb.shape[:2]
    if max_side is not None:
        rgb = resize_max_side(rgb, max_side)
    return DecodedImage(rgb=np.ascontiguousarray(rgb), width=width, height=height, format=fmt,
                        mode=mode, orientation=orientation, n_frames=n_frames, warning=warning)


def _apply_orientation(rgb: np.ndarray, orientation: int) -> np.ndarray:
    """The EXIF orientation transform, as ``PIL.ImageOps.exif_transpose`` defines it."""
    method = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }[orientation]
    return np.asarray(Image.fromarray(rgb).transpose(method))


def resize_max_side(img: np.ndarray, max_side: int) -> np.ndarray:
    """``img`` (H x W or H x W x C) scaled down so that its longest side is ``max_side``; as is when smaller."""
    import cv2

    h, w = img.shape[:2]
    if max(h, w) <= max_side:
        return img
    scale = max_side / float(max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


__all__ = ["DecodeError", "DecodedImage", "decode_image", "resize_max_side"]
