"""The kill test's pile (tests/test_kill.py, scripts/kill_test.py): real photos and clips of tests/data made into
a messy folder: distinct photos (photos of tests/data/images and their rescaled, cropped and re-encoded JPEG
copies: near duplicates of each other), exact copies of some under other names in other folders, broken files
(truncated JPEG and PNG, a zero-byte .jpg, random bytes named .png, a text named .jpg), the clips of
tests/data/videos and copies of some under other names."""
from __future__ import annotations

import hashlib
import io
import random
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .conftest import DATA, general_images  # noqa: E402


@dataclass
class Pile:
    root: str
    photos: int = 0          # distinct photo contents
    duplicates: int = 0      # exact copies of photos under other names
    broken: int = 0
    videos: int = 0          # distinct clips
    video_copies: int = 0


def _sources() -> list[Path]:
    """The photos of tests/data/images that PIL decodes whole (a file corrupt on purpose is left out)."""
    from PIL import Image

    warnings.filterwarnings("ignore", "Corrupt EXIF", UserWarning)   # exif/hopper_bad_exif.jpg, on purpose
    out = []
    for p in sorted(q for folder in general_images() for q in folder.rglob("*")):
        if p.suffix.lower() not in (".jpg", ".jpeg", ".png", ".gif"):
            continue
        try:
            with Image.open(p) as im:
                im.load()
        except Exception:
            continue
        out.append(p)
    return out


def _variant(src: Path, kind: str, level: int) -> bytes:
    """A JPEG of ``src``: rescaled, cropped around its centre, or re-encoded, ``level`` (0, 1, ...) steps
    further each round."""
    from PIL import Image, ImageOps

    with Image.open(src) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
    quality = 88
    if kind == "scale":
        f = 0.85 - 0.12 * level
        im = im.resize((max(16, round(im.width * f)), max(16, round(im.height * f))), Image.LANCZOS)
    elif kind == "crop":
        f = 0.9 - 0.08 * level
        w, h = round(im.width * f), round(im.height * f)
        left, top = (im.width - w) // 2, (im.height - h) // 2
        im = im.crop((left, top, left + w, top + h))
    else:
        quality = 70 - 15 * level
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def build_pile(root: Path, *, photos: int = 100, per_source: int = 3, duplicates: int = 10, broken: int = 5,
               clips: Sequence[str] | None = None, video_copies: int = 1, seed: int = 0) -> Pile:
    """A pile in ``root`` (module docstring): ``photos`` distinct photo contents, ``per_source`` of them
    from each photo taken (the photo itself, then its rescaled, cropped and re-encoded copies: near
    duplicates of each other), the photos taken spread evenly over tests/data/images (more when some copies
    come out byte-identical); ``duplicates`` exact copies (which photos: drawn with ``seed``); ``broken``
    broken files (at most 5 kinds); the ``clips`` of tests/data/videos (all by default) and ``video_copies``
    copies of them."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    sources = _sources()
    seen: set[str] = set()
    made: list[Path] = []
    kinds = ("scale", "crop", "jpeg")
    wanted = -(-photos // per_source)
    order = [sources[round(i * len(sources) / wanted)] for i in range(min(wanted, len(sources)))]
    order += [p for p in sources if p not in order]
    for src in order:
        versions = [(f"photos/{src.parent.name}/{src.name}", src.read_bytes)]
        versions += [(f"photos/{src.parent.name}/{kind}{level}/{src.stem}.jpg",
                      lambda kind=kind, level=level: _variant(src, kind, level))
                     for level in range(3) for kind in kinds]
        taken = 0
        for rel, data in versions:
            if taken == per_source or len(made) == photos:
                break
            content = data()
            digest = hashlib.sha256(content).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(content)
            made.append(root / rel)
            taken += 1
    if len(made) < photos:
        raise ValueError(f"cannot make {photos} distinct photos from {len(sources)}, {per_source} each")
    for k, p in enumerate(rng.sample(made, duplicates)):
        sub = "a" if k % 2 == 0 else "b/c"
        dest = root / "copies" / sub / f"copy{k}_{p.name}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dest)
    jpeg = (DATA / "images" / "face_recognition" / "obama.jpg").read_bytes()
    png = (DATA / "images" / "faces" / "skimage_camera.png").read_bytes()
    bad = [("truncated.jpg", jpeg[: len(jpeg) // 3]), ("empty.jpg", b""),
           ("random.png", random.Random(seed + 1).randbytes(4096)),
           ("notes.jpg", b"this is a text file, not a photo\n" * 20), ("truncated.png", png[: len(png) // 2])]
    for name, data in bad[:broken]:
        (root / "broken").mkdir(exist_ok=True)
        (root / "broken" / name).write_bytes(data)
    clips = [DATA / "videos" / name for name in clips] if clips is not None else \
        sorted(p for p in (DATA / "videos").iterdir() if p.suffix in (".mp4", ".avi"))
    clips = list(clips)
    (root / "videos").mkdir(exist_ok=True)
    for p in clips:
        shutil.copy(p, root / "videos" / p.name)
    for k, p in enumerate(clips[:video_copies]):
        (root / "more" / "clips").mkdir(parents=True, exist_ok=True)
        shutil.copy(p, root / "more" / "clips" / f"again{k}_{p.name}")
    return Pile(str(root), photos=len(made), duplicates=duplicates, broken=min(broken, len(bad)),
                videos=len(clips), video_copies=min(video_copies, len(clips)))
