"""The winning frames of the video path as JPEG files (plain code, no ray), from the pixels kept through the
cascade, or, for a winner whose pixels were not kept, from an exact seek to it; and their lineage for the
image path."""
from __future__ import annotations

import os
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..export import safe_stem
from ..sources import FileRef
from ..storage import OutputDir, is_remote
from ..storage import join as join_uri
from .jpeg import encode_frame
from .reader import open_video
from .segments import local_copy


def frame_name(video_uri: str, video_id: str, frame_index: int) -> str:
    """The file name of a winning frame: its video's name, id and frame index."""
    return f"{safe_stem(video_uri)}-{video_id[:12]}-f{frame_index:07d}.jpg"


def write_frame(frame: np.ndarray | bytes, frames_dir: str, name: str, quality: int) -> tuple[str, int] | None:
    """One frame (RGB pixels, or the JPEG bytes :func:`encode_frame` made of them) as a JPEG file in
    ``frames_dir`` (a folder or a bucket prefix): (its path, its size)."""
    data = frame if isinstance(frame, bytes) else encode_frame(frame, quality)
    if data is None:
        return None
    if is_remote(frames_dir):
        OutputDir(frames_dir).write_bytes(name, data)
    else:
        os.makedirs(frames_dir, exist_ok=True)
        with open(os.path.join(frames_dir, name), "wb") as f:
            f.write(data)
    return join_uri(frames_dir, name), len(data)


def frames_at(video_uri: str, indices: Iterable[int], decoders: Sequence[str]) -> dict[int, np.ndarray]:
    """The frames ``indices`` of a video at full size: decord seeks exactly to each; PyAV and OpenCV read
    once up to the last of them (they cannot seek exactly)."""
    wanted = sorted(set(indices))
    out: dict[int, np.ndarray] = {}
    if not wanted:
        return out
    with local_copy(video_uri) as path:
        reader = open_video(path, tuple(decoders))
        if reader.name == "decord":
            for index in wanted:
                out.update((f.index, f.rgb) for f in reader.frames(step=1, start=index, stop=index + 1))
        else:
            want = set(wanted)
            out.update((f.index, f.rgb) for f in reader.frames(step=1, stop=wanted[-1] + 1) if f.index in want)
    return out


def winner_files(winners: Sequence[Mapping[str, Any]]) -> tuple[list[FileRef], dict[str, dict[str, Any]]]:
    """The frame files of ``winners`` (rows with ``path`` and ``size``, as the Stage 3 step returns them or
    the ``stage3`` table holds them) and their lineage, for the image path."""
    files: list[FileRef] = []
    lineage: dict[str, dict[str, Any]] = {}
    for w in winners:
        if not w.get("path"):
            continue
        files.append(FileRef(uri=w["path"], path=w["path"], size=int(w.get("size") or 0), media_type="image"))
        lineage[w["path"]] = {"source_video_id": w["video_id"], "source_video_uri": w["video_uri"],
                              "frame_index": w["frame_index"], "frame_timestamp": w["timestamp"],
                              "scene_index": w["scene_index"], "stage1_score": w["stage1_score"],
                              "stage2_score": w["stage2_score"], "stage3_score": w["stage3_score"]}
    return files, lineage
