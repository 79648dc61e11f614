#!/usr/bin/env python
"""Clips with real faces and known truth, for the benchmarks and the bundled sample.

Each shot is a smooth random texture (its own, so consecutive shots differ: a hard cut) with a real face
photo of tests/data pasted on it, moving across or down the frame. :func:`write_clip` returns what is known by
construction: the cut frames and the face's box in every frame.

:func:`write_slideshow` makes a clip of whole photos of people (tests/data/images/people), one shot each, with
a slow zoom or pan and hard cuts; its truth says which photo, hence which person, every frame shows.

    .venv/bin/python scripts/clips.py   # (re)makes tests/data/videos/faces_two_shots.mp4 and its .json

scripts/bench_video.py (60 s at 1080p) and scripts/bench_video_memory.py (many short portrait clips) use it;
scripts/bench_selection.py and tests/test_selection.py the slideshows.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
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


# ---- slideshows of people photos (scripts/bench_selection.py, tests/test_selection.py) ----

PEOPLE = ROOT / "tests/data/images/people"   # distinct photos, one person each; labels.json says who
MOTIONS = ("zoom_in", "pan_right", "zoom_out", "pan_left")
BACKGROUNDS = ("black", "blur")
ZOOM = 0.25     # a shot's slow zoom or pan: the photo grows (or shrinks) by this share, or pans at this size
FOCUS = (0.5, 0.35)   # the point of the photo (x, y as shares) a zoom closes in on: where faces mostly are


@dataclass(frozen=True)
class Shot:
    """``seconds`` of one photo of :data:`PEOPLE`, moving as ``motion`` says (one of :data:`MOTIONS`)."""

    photo: str
    motion: str = "zoom_in"
    seconds: float = 3.0


def people() -> dict[str, str]:
    """Each photo of :data:`PEOPLE` (file name) -> the person it shows."""
    labels = json.loads((PEOPLE / "labels.json").read_text())["photos"]
    return {name: entry["person"] for name, entry in labels.items()}


def photo_rgb(name: str) -> np.ndarray:
    """The photo ``name`` of :data:`PEOPLE`, RGB."""
    import cv2

    return cv2.cvtColor(cv2.imread(str(PEOPLE / name)), cv2.COLOR_BGR2RGB)


def _view(photo_hw: tuple[int, int], size: tuple[int, int], motion: str, t: float) -> np.ndarray:
    """The 2x3 affine map from photo to frame pixels at ``t`` (0 -> 1 over the shot): the whole photo fits the
    frame at scale 1; a zoom scales by 1 -> 1 + ZOOM (or back) about :data:`FOCUS`, which stays where it was;
    a pan holds 1 + ZOOM and slides the photo by ZOOM of its width."""
    (ph, pw), (w, h) = photo_hw, size
    fit = min(w / pw, h / ph)
    fx, fy = FOCUS[0] * pw, FOCUS[1] * ph
    at = (w / 2 + fit * (fx - pw / 2), h / 2 + fit * (fy - ph / 2))   # where the focus sits at scale 1
    if motion in ("zoom_in", "zoom_out"):
        grow = t if motion == "zoom_in" else 1.0 - t
        s = fit * (1 + ZOOM * grow)
    elif motion in ("pan_right", "pan_left"):
        s = fit * (1 + ZOOM)
        shift = (t - 0.5) * ZOOM * pw * (1 if motion == "pan_left" else -1)
        fx += shift   # the photo point under the focus moves: the photo slides
    else:
        raise ValueError(f"motion {motion!r}: one of {', '.join(MOTIONS)}")
    return np.array([[s, 0.0, at[0] - s * fx], [0.0, s, at[1] - s * fy]])


def _backdrop(photo: np.ndarray, size: tuple[int, int], background: str) -> np.ndarray:
    import cv2

    w, h = size
    if background == "black":
        return np.zeros((h, w, 3), np.uint8)
    if background != "blur":
        raise ValueError(f"background {background!r}: one of {', '.join(BACKGROUNDS)}")
    ph, pw = photo.shape[:2]
    cover = max(w / pw, h / ph)
    big = cv2.resize(photo, (math.ceil(pw * cover), math.ceil(ph * cover)), interpolation=cv2.INTER_AREA)
    y0, x0 = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    blurred = cv2.GaussianBlur(big[y0:y0 + h, x0:x0 + w], (0, 0), sigmaX=max(w, h) / 40)
    return (blurred * 0.5).astype(np.uint8)


def write_slideshow(path: Path, shots: Sequence[Shot], *, fps: int = 30, size=(1920, 1080),
                    background: str = "black", crf: int = 23, preset: str = "ultrafast") -> dict:
    """Write an H.264 clip of ``shots``, one after the other with hard cuts, each photo fitted to the frame
    (its ``background`` around it: black, or the photo blurred and darkened) and moving as its shot says.
    Returns the truth: ``cuts`` (first frame of each shot after the first) and ``shots``: for each, its
    ``photo``, ``person``, ``motion`` and frames ``[start, stop)``; :func:`shot_at` reads it per frame."""
    import cv2

    who = people()
    w, h = size
    spans: list[dict] = []

    def frames() -> Iterator[np.ndarray]:
        for shot in shots:
            photo = photo_rgb(shot.photo)
            back = _backdrop(photo, size, background)
            n = max(1, round(shot.seconds * fps))
            start = spans[-1]["stop"] if spans else 0
            spans.append({"photo": shot.photo, "person": who[shot.photo], "motion": shot.motion,
                          "start": start, "stop": start + n})
            for i in range(n):
                m = _view(photo.shape[:2], size, shot.motion, i / max(1, n - 1))
                yield cv2.warpAffine(photo, m, (w, h), dst=back.copy(), flags=cv2.INTER_CUBIC,
                                     borderMode=cv2.BORDER_TRANSPARENT)

    n = encode(path, frames(), fps=fps, size=size, crf=crf, preset=preset)
    return {"fps": fps, "size": [w, h], "frames": n, "background": background,
            "cuts": [s["start"] for s in spans[1:]], "shots": spans}


def shot_at(truth: dict, frame_index: int) -> dict:
    """The shot of :func:`write_slideshow`'s ``truth`` that holds frame ``frame_index``."""
    for shot in truth["shots"]:
        if shot["start"] <= frame_index < shot["stop"]:
            return shot
    raise KeyError(f"frame {frame_index} is outside the clip ({truth['frames']} frames)")


if __name__ == "__main__":
    t = make_sample()
    print(f"{SAMPLE}: {t['frames']} frames, cuts {t['cuts']}, {SAMPLE.stat().st_size // 1024} KiB")
