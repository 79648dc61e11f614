"""Camera / technical quality: sharpness, exposure, contrast, noise, aspect.

Classical measures with OpenCV, no model to download. Sharpness, contrast and
noise are computed on a copy scaled to ``analysis_side`` so that they compare
across resolutions.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import cv2
import numpy as np
import pyarrow as pa

from ..decode import resize_max_side
from .base import Analyzer

# Immerkaer (1996), "Fast noise variance estimation": a Laplacian-difference mask
# whose response to image structure is small and to white noise is known.
_NOISE_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def sharpness(grey: np.ndarray) -> float:
    """Variance of the Laplacian (higher is sharper)."""
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def noise_sigma(grey: np.ndarray) -> float:
    """Immerkaer's estimate of the standard deviation of additive white noise, in grey levels."""
    h, w = grey.shape
    if h < 3 or w < 3:
        return 0.0
    response = cv2.filter2D(grey.astype(np.float64), -1, _NOISE_MASK, borderType=cv2.BORDER_REFLECT)
    total = np.abs(response[1:-1, 1:-1]).sum()
    return float(total * math.sqrt(math.pi / 2.0) / (6.0 * (w - 2) * (h - 2)))


class QualityAnalyzer(Analyzer):
    name = "quality"
    size_free = True
    model_id = "opencv-classic-quality"

    def __init__(self, *, analysis_side: int = 512, blur_threshold: float = 60.0,
                 batch_size: int = 16, num_cpus: float = 0.1, device: str = "cpu") -> None:
        super().__init__(batch_size=batch_size, num_cpus=num_cpus, device=device)
        self.analysis_side = analysis_side
        self.blur_threshold = blur_threshold

    @classmethod
    def output_fields(cls) -> list[pa.Field]:
        f32 = pa.float32()
        return [
            pa.field("quality_sharpness", f32),       # variance of the Laplacian at analysis_side
            pa.field("quality_is_blurry", pa.bool_()),
            pa.field("quality_brightness", f32),      # mean luma, 0..1
            pa.field("quality_underexposed", f32),    # fraction of pixels with luma <= 5
            pa.field("quality_overexposed", f32),     # fraction of pixels with luma >= 250
            pa.field("quality_exposure", f32),        # 1 = well exposed, 0 = badly clipped/dark/bright
            pa.field("quality_contrast", f32),        # RMS contrast: std of luma, 0..1
            pa.field("quality_noise", f32),           # noise sigma, grey levels (0..255)
            pa.field("quality_aspect", f32),          # width / height
        ]

    def load(self) -> None:
        cv2.setNumThreads(max(1, int(math.ceil(self.resources.num_cpus))))

    def model_version(self) -> str:
        return f"cv2-{cv2.__version__}"

    def analyze(self, images: Sequence[np.ndarray], context: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
        return [self._one(img) for img in images]

    def _one(self, rgb: np.ndarray) -> dict[str, Any]:
        h, w = rgb.shape[:2]  # resolution itself is the row's width/height (the original's)
        grey = resize_max_side(_grey(rgb), self.analysis_side)
        sharp = sharpness(grey)
        hist = np.bincount(grey.ravel(), minlength=256).astype(np.float64)
        hist /= max(1.0, hist.sum())
        brightness = float(np.dot(hist, np.arange(256)) / 255.0)
        under = float(hist[:6].sum())
        over = float(hist[250:].sum())
        # Penalise clipping and a mean far from mid-grey; 1.0 for a well exposed frame.
        exposure = max(0.0, 1.0 - 2.0 * (under + over)) * (1.0 - min(1.0, abs(brightness - 0.5) * 1.25))
        return {
            "quality_sharpness": sharp,
            "quality_is_blurry": bool(sharp < self.blur_threshold),
            "quality_brightness": brightness,
            "quality_underexposed": under,
            "quality_overexposed": over,
            "quality_exposure": exposure,
            "quality_contrast": float(grey.std() / 255.0),
            "quality_noise": noise_sigma(grey),
            "quality_aspect": w / float(h),
        }
