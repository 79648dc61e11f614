"""The winning frames of the video path as JPEG files (plain code, no ray; :mod:`raycurate.engine` runs
:func:`write_frames` as Ray tasks, one video each), and their lineage for the image path."""
from __future__ import annotations

import os
import sys
from typing import Any, Mapping, Sequence

import pyarrow as pa

from ..export import safe_stem
from ..sources import FileRef
from ..storage import OutputDir, is_remote
from ..storage import configure as use_storage
from ..storage import join as join_uri
from .reader import open_video
from .segments import local_copy


def write_frames(batch: pa.Table, *, frames_dir: str, quality: int, decoders: Sequence[str],
                 storage: Mapping[str, Any] | None = None) -> pa.Table:
    """Decode the winning frames of each video (one video per row) and write them as JPEG files
    (``frames_dir`` may be a bucket prefix)."""
    import cv2

    if storage is not None:
        use_storage(storage)
    out = []
    for row in batch.to_pylist():
        wanted = set(row["frame_indices"])
        stem = safe_stem(row["video_uri"])
        try:
            with local_copy(row["video_uri"]) as path:
                reader = open_video(path, tuple(decoders))
                for frame in reader.frames(step=1, stop=max(wanted) + 1):
                    if frame.index not in wanted:
                        continue
                    name = f"{stem}-{row['video_id'][:12]}-f{frame.index:07d}.jpg"
                    dest = join_uri(frames_dir, name)
                    bgr = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR)
                    if is_remote(frames_dir):
                        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
                        if ok:
                            OutputDir(frames_dir).write_bytes(name, buf.tobytes())
                            out.append({"video_id": row["video_id"], "frame_index": frame.index, "path": dest,
                                        "size": len(buf)})
                    elif cv2.imwrite(dest, bgr, [cv2.IMWRITE_JPEG_QUALITY, quality]):
                        out.append({"video_id": row["video_id"], "frame_index": frame.index, "path": dest,
                                    "size": os.path.getsize(dest)})
        except Exception as exc:  # the frames written so far still count; the rest are reported missing
            print(f"[raycurate] writing frames of {row['video_uri']} failed: {exc}", file=sys.stderr)
    return pa.Table.from_pylist(out, schema=pa.schema([("video_id", pa.string()), ("frame_index", pa.int64()),
                                                        ("path", pa.string()), ("size", pa.int64())]))


def frames_by_video(winners: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One work item per video for :func:`write_frames`: its id, uri and winning frame indices."""
    per_video: dict[str, dict[str, Any]] = {}
    for w in winners:
        v = per_video.setdefault(w["video_id"], {"video_id": w["video_id"], "video_uri": w["video_uri"],
                                                 "frame_indices": []})
        v["frame_indices"].append(w["frame_index"])
    return list(per_video.values())


def winner_files(winners: Sequence[Mapping[str, Any]], written: Mapping[tuple[str, int], Mapping[str, Any]]
                 ) -> tuple[list[FileRef], dict[str, dict[str, Any]]]:
    """The frame files :func:`write_frames` wrote (``written``: by (video id, frame index)) and their lineage."""
    files: list[FileRef] = []
    lineage: dict[str, dict[str, Any]] = {}
    for w in winners:
        r = written.get((w["video_id"], w["frame_index"]))
        if r is None:
            continue
        files.append(FileRef(uri=r["path"], path=r["path"], size=r["size"], media_type="image"))
        lineage[r["path"]] = {"source_video_id": w["video_id"], "source_video_uri": w["video_uri"],
                              "frame_index": w["frame_index"], "frame_timestamp": w["timestamp"],
                              "scene_index": w["scene_index"], "stage1_score": w["stage1_score"],
                              "stage2_score": w["stage2_score"], "stage3_score": w["stage3_score"]}
    return files, lineage
