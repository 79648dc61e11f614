#!/usr/bin/env python
"""Clips with real faces and known truth, for the benchmarks and the bundled sample.

Each shot is a smooth random texture (its own, so consecutive shots differ: a hard cut) with a real face
photo of tests/data pasted on it, moving across or down the frame. :func:`write_clip` returns what is known by
construction: the cut frames and the face's box in every frame.

    .venv/bin/python scripts/clips.py   # (re)makes tests/data/videos/faces_two_shots.mp4 and its .json

scripts/bench_video.py (60 s at 1080p) and scripts/bench_video_memory.py (many short portrait clips) use it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# the face photos (tests/data, their licences in tests/data/licenses) and the crop around each face (rows, cols)
FACES = {
    "astronaut": ("tests/data/images/faces/skimage_astronaut.png", (40, 300, 130, 360)),   # scikit-image, public domain
    "obama": ("tests/data/images/face_recognition/obama.jpg", (60, 480, 270, 700)),        # face_recognition, MIT
}
SAMPLE = ROOT / "tests/data/videos/faces_two_shots.mp4"


def face_rgb(name: str, width: int) -> np.ndarray:
    """The cropped face photo ``name``, ``width`` px wide (aspect kept), RGB."""
    import cv2

    file, (r0, r1, c0, c1) = FACES[name]
    bgr = cv2.imread(str(ROOT / file))[r0:r1, c0:c1]
    height = round(bgr.shape[0] * width / bgr.shape[1])
    return cv2.cvtColor(cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)


def _position(i: int, n: int, w: int, h: int, fw: int, fh: int, motion: str) -> tuple[int, int]:
    if motion == "down":
        return (w - fw) // 2, int((h - fh) * i / n)
    x = int((w - fw) * i / n)
    y = (h - fh) // 2 + int(min(80, (h - fh) // 2) * math.sin(i / 15.0))
    return x, y


def encode(path: Path, frames: Iterable[np.ndarray], *, fps: int, size: tuple[int, int], crf: int = 23,
           preset: str = "ultrafast") -> int:
    """Write ``frames`` (RGB, ``size`` = (width, height)) to ``path`` as H.264 (yuv420p) at ``fps``; the number
    of frames written."""
    import av

    n = 0
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"preset": preset, "crf": str(crf)}
        for frame in frames:
            for pkt in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(pkt)
            n += 1
        for pkt in stream.encode():
            container.mux(pkt)
    return n


def write_clip(path: Path, *, shots: Sequence[str], shot_frames: int, fps: int = 30, size=(1920, 1080),
               face_width: int = 300, motion: str = "across", seed: int = 0, crf: int = 23,
               preset: str = "ultrafast") -> dict:
    """Write an H.264 clip of ``len(shots)`` shots of ``shot_frames`` frames, shot ``k`` showing face
    ``shots[k]`` (a :data:`FACES` name). Returns the truth: ``cuts`` (first frame of each new shot) and
    ``boxes`` (the pasted face photo's [x, y, w, h] per frame)."""
    import cv2

    rng = np.random.default_rng(seed)
    w, h = size
    boxes: list[list[int]] = []

    def frames() -> Iterator[np.ndarray]:
        for name in shots:
            face = face_rgb(name, face_width)
            fh, fw = face.shape[:2]
            grid = (16, 9) if w >= h else (9, 16)
            base = cv2.resize(rng.integers(0, 255, (grid[1], grid[0], 3), dtype=np.uint8), (w, h),
                              interpolation=cv2.INTER_CUBIC)
            for i in range(shot_frames):
                x, y = _position(i, shot_frames, w, h, fw, fh, motion)
                frame = base.copy()
                frame[y:y + fh, x:x + fw] = face
                boxes.append([x, y, fw, fh])
                yield frame

    encode(path, frames(), fps=fps, size=size, crf=crf, preset=preset)
    return {"cuts": [k * shot_frames for k in range(1, len(shots))], "frames": len(boxes), "fps": fps,
            "size": [w, h], "faces": list(shots), "boxes": boxes}


def make_sample(path: Path = SAMPLE) -> dict:
    """tests/data/videos/faces_two_shots.mp4: 640x360, 24 fps, two 3-s shots (the astronaut, then Obama), and
    its truth beside it (.json)."""
    truth = write_clip(path, shots=("astronaut", "obama"), shot_frames=72, fps=24, size=(640, 360),
                       face_width=150, preset="medium", crf=26)
    truth["source"] = ("made by scripts/clips.py from tests/data/images/faces/skimage_astronaut.png and "
                       "tests/data/images/face_recognition/obama.jpg; boxes are the pasted photo crops [x, y, w, h]")
    path.with_suffix(".json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth


if __name__ == "__main__":
    t = make_sample()
    print(f"{SAMPLE}: {t['frames']} frames, cuts {t['cuts']}, {SAMPLE.stat().st_size // 1024} KiB")
