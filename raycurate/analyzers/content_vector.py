"""A content vector that needs no download: DCT perceptual hash and vector.

``content_phash`` is the 64-bit perceptual hash (pHash) as imagededup defines
it: grey, 32x32 (Lanczos), 2-D DCT-II, the top-left 8x8 block, each bit set
where a coefficient is >= the median of the block without its DC term.
``content_vector`` is the same 8x8 block without DC, L2-normalised: cosine
distance on it behaves like a soft Hamming distance on the hash and serves
near-duplicate search in LanceDB until CLIP arrives.
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


def _dct_matrix(n: int) -> np.ndarray:
    """Unnormalised DCT-II (scipy.fftpack.dct's default): X_k = 2 sum x_j cos(pi k (2j+1) / 2n)."""
    k = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * j + 1) / (2.0 * n))


_DCT = _dct_matrix(DCT_SIZE)


def dct_block(rgb: np.ndarray) -> np.ndarray:
    """Top-left HASH_SIZE x HASH_SIZE block of the 2-D DCT of the 32x32 grey image."""
    grey = Image.fromarray(rgb).convert("L").resize((DCT_SIZE, DCT_SIZE), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.float64)
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
        return f"{HASH_SIZE}x{HASH_SIZE}-of-{DCT_SIZE}"

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
