"""Planning a video's work (plain code, no ray): its segments, a local copy to decode."""
from __future__ import annotations

import math
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any, Iterator, Sequence

from ..sources import SPOOL_CHUNK, FileRef, copy_to, file_content_id, open_input
from ..storage import is_remote
from .reader import VideoDecodeError, VideoInfo, probe
from ..settings import VideoSettings


@contextmanager
def local_copy(uri: str, chunk: int = SPOOL_CHUNK) -> Iterator[str]:
    """A local path for ``uri``: itself when local, else a spool file (decoders need files) in the temporary
    folder ($TMPDIR, else the system's), streamed ``chunk`` bytes at a time so memory does not grow with the
    file's size, and removed when the block ends, by an exception too."""
    if not is_remote(uri):
        yield uri
        return
    fd, path = tempfile.mkstemp(prefix="raycurate-spool-", suffix=os.path.splitext(uri)[1])
    try:
        with os.fdopen(fd, "wb") as out:
            copy_to(uri, out, chunk)
        yield path
    finally:
        with suppress(FileNotFoundError):
            os.remove(path)


def probe_uri(uri: str) -> VideoInfo:
    """:func:`probe` of a local path, or of a bucket object through a seekable file object: the container's
    header (and, for an MP4 whose index is at the end, that end) is read, never the whole file."""
    if not is_remote(uri):
        return probe(uri)
    with open_input(uri) as f:
        return probe(f)


def plan_segments(videos: Sequence[FileRef], video: VideoSettings) -> list[dict[str, Any]]:
    """One work item per video, or per segment of ``video.segment_s`` seconds for a long video (local or in a
    bucket), so that one long video is decoded by several tasks at once. Segments start on a multiple of the
    sample rate, so the sampled frame indices are the same as without splitting.

    A video's id (the SHA-256 of its bytes) is the one ingest found (:mod:`raycurate.ingest`), else, for a
    local video, computed here, once for all its segments. A bucket video's is not (that would download it on
    the driver): each segment's task computes it from its spooled copy, as for a video that is not split, so
    every segment, and the whole video, get the same id."""
    seg_s = video.segment_s
    step = video.sample_rate

    def plan(f: FileRef) -> list[dict[str, Any]]:
        whole = [{"uri": f.uri, "start": 0, "stop": None, "segment": 0, "video_id": f.content_id}]
        if seg_s is None:
            return whole
        try:
            info = probe_uri(f.uri)
        except (VideoDecodeError, OSError):
            return whole  # the decode task records the error
        if not info.duration or not info.fps or info.duration <= seg_s:
            return whole
        length = int(math.ceil(seg_s * info.fps / step)) * step
        total = info.frame_count_claimed or int(math.ceil(info.duration * info.fps))
        video_id = f.content_id or (None if is_remote(f.uri) else file_content_id(f.uri))
        starts = list(range(0, total, length))
        return [{"uri": f.uri, "start": start, "segment": k, "video_id": video_id,
                 "stop": None if k == len(starts) - 1 else start + length}   # the last one reads to the end
                for k, start in enumerate(starts)]

    with ThreadPoolExecutor(max_workers=8) as pool:   # probing and hashing are I/O and native code
        return [item for items in pool.map(plan, videos) for item in items]
