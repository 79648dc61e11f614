"""Small JPEG thumbnails as ``data:`` URIs, so that the report is one file that opens from disk."""
from __future__ import annotations

import base64
import io
from typing import Sequence

SIDE = 160        # longest side of a thumbnail, pixels
QUALITY = 70      # JPEG quality: a thumbnail is a few kB


def data_uri(uri: str, box: Sequence[float] | None = None, side: int = SIDE) -> str | None:
    """The picture at ``uri`` (a face: the region ``box``, fractions, with a margin) as a JPEG data URI at most
    ``side`` pixels on its longest side; None when it cannot be read or decoded (the report says so)."""
    from PIL import Image

    from ..decode import DecodeError, decode_image, resize_max_side
    from ..search.results import CROP_DECODE_SIDE, crop_face
    from ..sources import read_bytes

    try:
        rgb = decode_image(read_bytes(uri), max_side=side if box is None else CROP_DECODE_SIDE).rgb
    except (DecodeError, OSError):
        return None
    if box is not None:
        rgb = resize_max_side(crop_face(rgb, box), side)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


__all__ = ["SIDE", "data_uri"]
