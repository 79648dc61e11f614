"""One video -> batches of sampled frame rows (plain code; the Ray wiring is in raycurate.engine).

The frames are decoded once, sequentially; every ``sample_rate``-th one is a
candidate, thinned by the motion filter (on a 64 px grey copy). Scene detection
(optional) is fed every decoded frame as a small copy while decoding
(:mod:`raycurate.video.scenes`). A row carries the frame at the analysis size
for the cascade and, when larger, at full size for the Stage 3 step to write if
it wins. Scene numbers and "near a cut" are set by the Stage 3 step once the
video's cuts are all known. What happened to the video is summarised in
:attr:`VideoSampler.summary`, an error included; :meth:`VideoSampler.end_row`
closes the segment.
"""
from __future__ import annotations

import hashlib
import os
import time
from typing import Any, Iterator, Sequence

import numpy as np

from ..decode import resize_max_side
from ..settings import VideoSettings
from ..sources import file_content_id
from .jpeg import encode_frame
from .reader import Frame, VideoDecodeError, open_video
from .sampling import MotionFilter
from .scenes import CutDetector

END_OF_SEGMENT = -1   # ``frame_index`` of the row that closes a segment (:meth:`VideoSampler.end_row`)


def scene_decoders(decoders: Sequence[str]) -> tuple[str, ...]:
    """The decoders to try when scene detection needs a small copy of every frame: PyAV first, then the
    configured order. Measured on a 60 s 1080p clip, one step of the sampler with scene detection on: PyAV
    5.2 s and 300 MB peak, decord 6.7 s and 443 MB (decord hands out every frame whole, through its own
    buffers)."""
    return tuple(["pyav"] if "pyav" in decoders else []) + tuple(d for d in decoders if d != "pyav")


def empty_summary(uri: str, segment: int = 0, start: int = 0, stop: int | None = None) -> dict[str, Any]:
    """The ``videos`` row of a video (segment) before (or without) decoding."""
    return {"uri": uri, "video_id": None, "segment": segment, "frame_start": start, "frame_stop": stop,
            "decoder": None, "fps": None, "width": None, "height": None,
            "rotation": None, "start_time": None, "duration": None, "frames_claimed": None, "frames_decoded": 0,
            "candidates": 0, "motion_dropped": 0, "cuts": [], "error": None, "warning": None, "decode_s": 0.0,
            "file_size": None}


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
        self.decoders = scene_decoders(video.decoders) if video.scene_detection else tuple(video.decoders)
        self.decord_device = video.decord_device
        self.start = start
        self.stop = stop
        self.video_id = video_id
        self.summary = empty_summary(uri, segment, start, stop)
        self.rows_emitted = 0

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        start = time.perf_counter()
        s = self.summary
        try:
            s["file_size"] = os.path.getsize(self.path)
            s["video_id"] = self.video_id or file_content_id(self.path)
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
        cuts = CutDetector(p.scene_detector, info.fps) if p.scene_detection else None
        motion = MotionFilter(p.motion_threshold)
        rows: list[dict[str, Any]] = []
        last = self.start
        for frame in reader.frames(step=p.sample_rate, start=self.start, stop=self.stop, thumbs=cuts is not None):
            last = frame.index
            if cuts is not None:
                try:
                    cuts.add(frame.index, frame.rgb)
                except Exception as exc:  # scene detection is optional: the video still goes on
                    s["warning"] = f"scene detection failed: {exc}"
                    cuts = None
            if not frame.sampled:
                continue
            s["candidates"] += 1
            keep, score = motion(frame.rgb)
            if not keep:
                s["motion_dropped"] += 1
                continue
            rows.append(self._row(frame, score))
            if len(rows) >= self.batch_size:
                self.rows_emitted += len(rows)
                yield rows
                rows = []
        if rows:
            self.rows_emitted += len(rows)
            yield rows
        s["cuts"] = cuts.finish(last) if cuts is not None else []
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

    def _row(self, frame: Frame, motion: float | None) -> dict[str, Any]:
        """A sampled frame's row: the analysis copy in ``pixels``; the frame at full size in ``full_pixels``
        when it is larger, as the JPEG bytes its winner's file would hold (so that a winner is written from
        them, never decoded again, and a 1080p frame travels as a few hundred KB instead of 6 MB)."""
        h, w = frame.rgb.shape[:2]
        rgb = np.ascontiguousarray(resize_max_side(frame.rgb, self.max_side))
        full = frame.rgb if rgb.shape[:2] != (h, w) else None
        return {"video_id": self.summary["video_id"], "video_uri": self.uri, "segment": self.summary["segment"],
                "frame_index": frame.index, "timestamp": frame.timestamp, "scene_index": None, "near_cut": None,
                "motion": motion, "width": w, "height": h, "pixels": rgb.tobytes(), "pixels_h": rgb.shape[0],
                "pixels_w": rgb.shape[1], "full_pixels": None if full is None else encode_frame(full, self.params.frame_quality)}

    def end_row(self, segments: int) -> dict[str, Any]:
        """The row that closes this segment (:func:`end_row`)."""
        return end_row(self.summary, self.uri, self.rows_emitted, segments)


def end_row(summary: dict[str, Any], uri: str, rows_sent: int, segments: int) -> dict[str, Any]:
    """The row that closes a segment (``frame_index`` -1, no pixels): how many frame rows it sent, how many
    segments its video has, its cuts and frame rate. The Stage 3 step finishes a video once it has seen every
    segment's end row and every frame row they announce; a segment that failed sends one too."""
    s = summary
    return {"video_id": s["video_id"] or hashlib.sha256(uri.encode()).hexdigest(), "video_uri": uri,
            "segment": s["segment"], "frame_index": END_OF_SEGMENT, "segment_rows": rows_sent,
            "segments": segments, "cuts": list(s["cuts"] or []), "fps": s["fps"], "video_error": s["error"]}
