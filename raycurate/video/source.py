"""One video -> batches of sampled frame rows (plain code; the Ray wiring is in raycurate.engine).

The frames are decoded sequentially and only every ``sample_rate``-th one is
kept, then thinned by the motion filter; scene cuts (optional) give each frame
its scene number and mark those near a cut. What happened to the video is
summarised in :attr:`VideoSampler.summary`, an error included.
"""
from __future__ import annotations

import hashlib
import time
from typing import Any, Iterator

import numpy as np

from ..decode import resize_max_side
from .reader import VideoDecodeError, open_video
from ..settings import VideoSettings
from .sampling import MotionFilter
from .scenes import detect_cuts, near_cut, scene_of


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def empty_summary(uri: str, segment: int = 0, start: int = 0, stop: int | None = None) -> dict[str, Any]:
    """The ``videos`` row of a video (segment) before (or without) decoding."""
    return {"uri": uri, "video_id": None, "segment": segment, "frame_start": start, "frame_stop": stop,
            "decoder": None, "fps": None, "width": None, "height": None,
            "rotation": None, "start_time": None, "duration": None, "frames_claimed": None, "frames_decoded": 0,
            "candidates": 0, "motion_dropped": 0, "cuts": [], "error": None, "warning": None, "decode_s": 0.0}


class VideoSampler:
    """Iterate over lists of frame rows (at most ``batch_size`` each) for one local video file,
    or for its frames ``start`` to ``stop`` when a long video is split into segments."""

    def __init__(self, path: str, uri: str, video: VideoSettings, *, start: int = 0, stop: int | None = None,
                 segment: int = 0, video_id: str | None = None) -> None:
        self.path = path
        self.uri = uri
        self.params = video   # sampling, batch size, analysis size and decoders: the typed ``video`` section
        self.batch_size = video.batch_size
        self.max_side = video.analysis_side
        self.decoders = tuple(video.decoders)
        self.decord_device = video.decord_device
        self.start = start
        self.stop = stop
        self.video_id = video_id
        self.summary = empty_summary(uri, segment, start, stop)

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        start = time.perf_counter()
        s = self.summary
        try:
            s["video_id"] = self.video_id or file_sha256(self.path)
            reader = open_video(self.path, self.decoders, decord_device=self.decord_device)
        except (OSError, VideoDecodeError) as exc:
            s["video_id"] = s["video_id"] or hashlib.sha256(self.uri.encode()).hexdigest()
            s["error"] = str(exc)
            return
        info = reader.info
        s.update(decoder=reader.stats.backend, fps=info.fps, width=info.width, height=info.height,
                 rotation=info.rotation, start_time=info.start_time, duration=info.duration,
                 frames_claimed=info.frame_count_claimed)
        p = self.params
        cuts: list[int] = []
        if p.scene_detection:
            try:
                cuts = detect_cuts(self.path, p.scene_detector, self.start, self.stop)
            except Exception as exc:  # scene detection is optional: the video still goes on
                s["warning"] = f"scene detection failed: {exc}"
        s["cuts"] = cuts
        window = max(1, round(p.scene_window_s * (info.fps or 25.0)))
        motion = MotionFilter(p.motion_threshold)
        rows: list[dict[str, Any]] = []
        for frame in reader.frames(step=p.sample_rate, start=self.start, stop=self.stop):
            s["candidates"] += 1
            keep, score = motion(frame.rgb)
            if not keep:
                s["motion_dropped"] += 1
                continue
            h, w = frame.rgb.shape[:2]
            rgb = np.ascontiguousarray(resize_max_side(frame.rgb, self.max_side))
            rows.append({"video_id": s["video_id"], "video_uri": self.uri, "segment": s["segment"],
                         "frame_index": frame.index,
                         "timestamp": frame.timestamp, "scene_index": scene_of(frame.index, cuts),
                         "near_cut": near_cut(frame.index, cuts, window), "motion": score, "width": w,
                         "height": h, "pixels": rgb.tobytes(), "pixels_h": rgb.shape[0],
                         "pixels_w": rgb.shape[1]})
            if len(rows) >= self.batch_size:
                yield rows
                rows = []
        if rows:
            yield rows
        s["frames_decoded"] = reader.stats.frames_decoded
        if reader.stats.errors:
            s["warning"] = "; ".join(reader.stats.errors)[:500]
        if self.stop is None and self.start == 0 and info.frame_count_claimed \
                and reader.stats.frames_decoded < info.frame_count_claimed:
            short = f"container claims {info.frame_count_claimed} frames, {reader.stats.frames_decoded} decoded"
            s["warning"] = f"{s['warning']}; {short}" if s["warning"] else short
        if reader.stats.frames_decoded == 0 and self.start == 0:
            s["error"] = "no frame could be decoded"
        s["decode_s"] = time.perf_counter() - start
