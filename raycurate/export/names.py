"""Safe output names for exported images: no path separators, no leading dots, a restricted alphabet,
plus the content id, so two sources never collide and nothing is written outside the output folder."""
from __future__ import annotations

import os
import re

FORMAT_EXTENSIONS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp",
                     "TIFF": ".tif", "BMP": ".bmp", "JPEG2000": ".jp2", "PPM": ".ppm"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_stem(uri: str) -> str:
    """The file-name stem of ``uri`` in a safe alphabet: no separators, no leading dots, at most 80 chars."""
    base = uri.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return _UNSAFE.sub("_", os.path.splitext(base)[0]).strip("._-")[:80] or "image"


def safe_name(uri: str, content_id: str, fmt: str | None) -> str:
    """A file name for an exported image that cannot escape its folder or collide."""
    base = uri.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    ext = FORMAT_EXTENSIONS.get(fmt or "", _UNSAFE.sub("", os.path.splitext(base)[1].lower())[:8] or ".bin")
    return f"{safe_stem(uri)}-{content_id[:16]}{ext}"
