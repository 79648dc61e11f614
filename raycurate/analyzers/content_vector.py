"""A content vector that needs no download: DCT perceptual hash and vector.

``content_phash`` is the 64-bit perceptual hash (pHash) as imagededup defines
it: grey, 32x32 (Lanczos), 2-D DCT-II, the top-left 8x8 block, each bit set
where a coefficient is >= the median of the block without its DC term.
``content_vector`` is the same 8x8 block without DC, L2-normalised: cosine
distance on it behaves like a soft Hamming distance on the hash and serves
near-duplicate search in LanceDB until CLIP arrives.

Uniform borders are cut off first (:func:`content_box`): letterbox and pillarbox bars, the black around a
photo shown small in a video. Bars dominate the lowest frequencies, so without the cut two different photos
framed by the same bars come out near each other (0.057 apart in a slideshow, under dedup's 0.15), and
the same photo with and without bars far apart. A picture whose edges are not uniform is not cut: its hash
is imagededup's.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa
from PIL import Image

from .base import Analyzer

HASH_SIZE = 8
DCT_SIZE = 32
VECTOR_DIM = HASH_SIZE * HASH_SIZE - 1
BORDER_DIFF = 4         # a border pixel's grey level lies this close to its edge's colour ...
BORDER_SHARE = 0.98     # ... in this share of a row or column
MIN_CONTENT = 0.1       # a side is never cut below this share of its length (a blank frame stays whole)
PROBE = 256             # borders are found on a copy at most this many pixels on its longer side


def _dct_matrix(n: int) -> np.ndarray:
    """Unnormalised DCT-II (scipy.fftpack.dct's default): X_k = 2 sum x_j cos(pi k (2j+1) / 2n)."""
    k = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * j + 1) / (2.0 * n))


_DCT = _dct_matrix(DCT_SIZE)


def _border(lines: np.ndarray) -> int:
    """How many leading ``lines`` (rows of grey levels) are uniform in the colour of the first one."""
    colour = np.median(lines[0])
    uniform = (np.abs(lines - colour) <= BORDER_DIFF).mean(axis=1) >= BORDER_SHARE
    return len(uniform) if uniform.all() else int(np.argmin(uniform))


def content_box(grey: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right): the rows and columns of ``grey`` without its uniform borders (each side's
    run of rows or columns in the colour of that side's outermost line). The whole picture when the cut
    would leave less than :data:`MIN_CONTENT` of a side."""
    h, w = grey.shape
    g = grey.astype(np.int16)
    top, bottom = _border(g), h - _border(g[::-1])
    left, right = _border(g.T), w - _border(g.T[::-1])
    if bottom - top < MIN_CONTENT * h or right - left < MIN_CONTENT * w:
        return 0, h, 0, w
    return top, bottom, left, right


def dct_block(rgb: np.ndarray) -> np.ndarray:
    """Top-left HASH_SIZE x HASH_SIZE block of the 2-D DCT of the 32x32 grey image, uniform borders cut."""
    grey = Image.fromarray(rgb).convert("L")
    scale = max(1, -(-max(grey.size) // PROBE))
    probe = grey.reduce(scale) if scale > 1 else grey
    top, bottom, left, right = content_box(np.asarray(probe))
    if (top, bottom, left, right) != (0, probe.height, 0, probe.width):
        # the probe's pixels map to scale x scale blocks: keep whole blocks inside the cut, nothing of the bars
        grey = grey.crop((min(left * scale + scale, grey.width - 1) if left else 0,
                          min(top * scale + scale, grey.height - 1) if top else 0,
                          max(right * scale - scale, 1) if right < probe.width else grey.width,
                          max(bottom * scale - scale, 1) if bottom < probe.height else grey.height))
    pixels = np.asarray(grey.resize((DCT_SIZE, DCT_SIZE), Image.Resampling.LANCZOS), dtype=np.float64)
    coeffs = _DCT @ pixels @ _DCT.T
    return coeffs[:HASH_SIZE, :HASH_SIZE]


def phash_bits(block: np.ndarray) -> np.ndarray:
    flat = block.ravel()
    return flat >= np.median(flat[1:])


def bits_to_hex(bits: np.ndarray) -> str:
    return "".join(f"{int(''.join('1' if b else '0' for b in bits[i:i + 4]), 2):x}"
                   for i in range(0, bits.size, 4))


def hamming(hex_a: str, hex_b: str) -> int:
    return bin(int(hex_a, 16) ^ int(hex_b, 16)).count("1")


class ContentVectorAnalyzer(Analyzer):
    name = "content"
    size_free = True
    model_id = "dct-phash"

    def __init__(self, *, batch_size: int = 32, num_cpus: float = 0.1, device: str = "cpu") -> None:
        super().__init__(batch_size=batch_size, num_cpus=num_cpus, device=device)

    @classmethod
    def output_fields(cls) -> list[pa.Field]:
        return [
            pa.field("content_phash", pa.string()),
            pa.field("content_vector", pa.list_(pa.float32(), VECTOR_DIM)),
        ]

    def load(self) -> None:
        pass  # nothing to load: the DCT basis is computed at import

    def model_version(self) -> str:
        return f"{HASH_SIZE}x{HASH_SIZE}-of-{DCT_SIZE}-borders-cut"

    def analyze(self, images: Sequence[np.ndarray], context: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
        out = []
        for rgb in images:
            block = dct_block(rgb)
            vec = block.ravel()[1:]
            norm = float(np.linalg.norm(vec)) or 1.0
            out.append({
                "content_phash": bits_to_hex(phash_bits(block)),
                "content_vector": (vec / norm).astype(np.float32),
            })
        return out
