"""What a search is given, checked: the DB's place and the query picture, decoded the way the pipeline decodes
stored images (upright, at most ``decode.max_side``), so a stored image queried with its own file comes back
first at distance ~0. :class:`SearchError` is the one error a search raises for a query it cannot answer."""
from __future__ import annotations

import os

import numpy as np


class SearchError(ValueError):
    """A query raycurate cannot answer; the message says why and what to do."""


def resolve_db(db_uri: str) -> str:
    """The DB folder (or bucket prefix: its endpoint and credentials come from raycurate.storage)."""
    from ..sources import SourceError
    from ..store.table import resolve_db as resolve

    try:
        return resolve(db_uri)
    except (FileNotFoundError, SourceError) as exc:
        raise SearchError(str(exc)) from exc


def query_pixels(image: str | os.PathLike | np.ndarray, *, max_side: int, max_pixels: int) -> np.ndarray:
    """The query as the pipeline's analysers saw the stored images: decoded, upright, <= ``max_side``.
    ``image``: a path or URI, or an H x W x 3 (or H x W) uint8 array."""
    from ..decode import DecodeError, decode_image, resize_max_side

    if isinstance(image, np.ndarray):
        rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise SearchError(f"a query array must be H x W x 3 uint8 RGB, got {image.shape} {image.dtype}")
        return np.ascontiguousarray(resize_max_side(rgb, max_side))
    from ..sources import SourceError, exists, read_bytes

    path = os.fspath(image)
    try:
        if not exists(path):
            raise SearchError(f"query image not found: {path}")
        data = read_bytes(path)
    except (SourceError, OSError) as exc:
        raise SearchError(f"cannot read query image {path}: {exc}") from None
    try:
        return decode_image(data, max_side=max_side, max_pixels=max_pixels).rgb
    except DecodeError as exc:
        raise SearchError(f"query image {path}: {exc}") from None


__all__ = ["SearchError", "query_pixels", "resolve_db"]
