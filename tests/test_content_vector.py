"""The content vector sees the picture, not the bars around it (letterbox, pillarbox, a photo shown small)."""
import itertools

import numpy as np
import pytest
from PIL import Image

from raycurate.analyzers.content_vector import ContentVectorAnalyzer, content_box

from .conftest import IMAGES

PEOPLE = sorted((IMAGES / "people").glob("*.jpg"))


def _rgb(path):
    return np.asarray(Image.open(path).convert("RGB"))


def _framed(rgb, size=(1080, 1920), colour=0, scale=0.6, at=(0.5, 0.5)):
    """``rgb`` scaled to ``scale`` of the frame (aspect kept), on a uniform ``colour`` frame, placed at ``at``."""
    f = scale * min(size[0] / rgb.shape[0], size[1] / rgb.shape[1])
    h, w = int(rgb.shape[0] * f), int(rgb.shape[1] * f)
    small = np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.LANCZOS))
    frame = np.full((*size, 3), colour, dtype=np.uint8)
    y, x = int(at[0] * (size[0] - h)), int(at[1] * (size[1] - w))
    frame[y:y + h, x:x + w] = small
    return frame


def _vectors(images):
    rows = ContentVectorAnalyzer().analyze(images, {})
    return np.stack([r["content_vector"] for r in rows])


def test_a_photo_in_bars_keeps_its_vector():
    for path in PEOPLE[:6]:
        rgb = _rgb(path)
        v = _vectors([rgb, _framed(rgb), _framed(rgb, colour=255, scale=0.8, at=(0.2, 0.7)),
                      _framed(rgb, size=(720, 1280), colour=16, scale=1.0)])
        assert np.all(1.0 - v[1:] @ v[0] < 0.02), (path.name, 1.0 - v[1:] @ v[0])


def test_different_photos_in_the_same_bars_stay_apart():
    """Every pair of the 20 distinct photos, each framed alike, lies beyond dedup's threshold (0.15)."""
    v = _vectors([_framed(_rgb(p)) for p in PEOPLE])
    dist = [1.0 - float(v[i] @ v[j]) for i, j in itertools.combinations(range(len(v)), 2)]
    assert min(dist) > 0.15, min(dist)


def test_content_box_cuts_only_uniform_edges():
    grey = np.full((100, 200), 0, dtype=np.uint8)
    grey[20:80, 50:150] = np.random.default_rng(0).integers(30, 255, (60, 100))
    assert content_box(grey) == (20, 80, 50, 150)
    assert content_box(np.zeros((100, 200), np.uint8)) == (0, 100, 0, 200)      # a blank frame stays whole
    busy = np.random.default_rng(1).integers(0, 255, (50, 60)).astype(np.uint8)
    assert content_box(busy) == (0, 50, 0, 60)


@pytest.mark.parametrize("colour", [0, 255])
def test_a_blank_frame_has_a_vector(colour):
    v = _vectors([np.full((360, 640, 3), colour, np.uint8)])
    assert v.shape == (1, 63) and np.isfinite(v).all()
