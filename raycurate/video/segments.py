"""Planning a video's work (plain code, no ray): its segments, a local copy to decode."""
from __future__ import annotations

import math
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from ..sources import FileRef, read_bytes
from .reader import VideoDecodeError, probe
from ..settings import VideoSettings
from .source import file_sha256


@contextmanager
def local_copy(uri: str) -> Iterator[str]:
    """A local path for ``uri``: itself when local, else a temporary download (decoders need files)."""
    if "://" not in uri:
        yield uri
        return
    suffix = os.path.splitext(uri)[1]
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        tmp.write(read_bytes(uri))
        tmp.flush()
        yield tmp.name


def plan_segments(videos: Sequence[FileRef], video: VideoSettings) -> list[dict[str, Any]]:
    """One work item per video, or per segment of ``video.segment_s`` seconds for a long local video,
    so that one long video is decoded by several tasks at once. Segments start on a multiple of the
    sample rate, so the sampled frame indices are the same as without splitting."""
    seg_s = video.segment_s
    step = video.sample_rate

    def plan(f: FileRef) -> list[dict[str, Any]]:
        whole = [{"uri": f.uri, "start": 0, "stop": None, "segment": 0, "video_id": None}]
        if seg_s is None or "://" in f.uri:
            return whole
        try:
            info = probe(f.uri)
        except VideoDecodeError:
            return whole  # the decode task records the error
        if not info.duration or not info.fps or info.duration <= seg_s:
            return whole
        length = int(math.ceil(seg_s * info.fps / step)) * step
        total = info.frame_count_claimed or int(math.ceil(info.duration * info.fps))
        video_id = file_sha256(f.uri)
        starts = list(range(0, total, length))
        return [{"uri": f.uri, "start": start, "segment": k, "video_id": video_id,
                 "stop": None if k == len(starts) - 1 else start + length}   # the last one reads to the end
                for k, start in enumerate(starts)]

    with ThreadPoolExecutor(max_workers=8) as pool:   # probing and hashing are I/O and native code
        return [item for items in pool.map(plan, videos) for item in items]
