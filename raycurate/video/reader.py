"""Video decoding with decord, falling back to PyAV, then OpenCV.

Every frame carries its 0-based decode index and its true presentation time in
seconds (the stream's first timestamp included, so a stream that starts at
1.075 s gives 1.075 for frame 0). Rotation metadata is applied. Frames are read
sequentially and only the sampled ones are converted, so a long or 4K video
never sits whole in memory. A container's frame count is only a claim: the
reader counts what really decodes.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

import numpy as np

BACKENDS = ("decord", "pyav", "opencv")


class VideoDecodeError(RuntimeError):
    """No backend could open or decode the video."""


@dataclass
class VideoInfo:
    """What the container says, probed with PyAV (every backend reports the same)."""

    fps: float | None
    frame_count_claimed: int | None
    duration: float | None
    width: int
    height: int
    rotation: int              # degrees the frames are turned to be displayed upright (0, 90, 180, 270)
    start_time: float          # presentation time of the first frame, seconds
    codec: str


@dataclass
class Frame:
    index: int                 # 0-based index in decode order
    timestamp: float           # seconds, true presentation time
    rgb: np.ndarray            # H x W x 3 uint8, upright
    sampled: bool = True       # False: a frame between samples, given as a small copy (``thumbs``)


THUMB_WIDTH = 256   # width of the small copies of the frames between samples (``thumbs``)


def thumb_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) of a frame's small copy: :data:`THUMB_WIDTH` wide (even), aspect kept."""
    if width <= THUMB_WIDTH:
        return width, height
    return THUMB_WIDTH, max(2, 2 * round(height * THUMB_WIDTH / width / 2))


def _thumb(rgb: np.ndarray) -> np.ndarray:
    import cv2

    w, h = thumb_size(rgb.shape[1], rgb.shape[0])
    return rgb if w == rgb.shape[1] else cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)


@dataclass
class DecodeStats:
    backend: str
    frames_decoded: int = 0
    errors: list[str] = field(default_factory=list)


def probe(source: str | BinaryIO) -> VideoInfo:
    """Container metadata of a local path or a seekable file object (e.g. :func:`raycurate.sources.open_input`
    on a bucket object: only the ranges the container needs are read); raises :class:`VideoDecodeError` when
    nothing can be read."""
    import av

    try:
        with av.open(source) as container:
            if not container.streams.video:
                raise VideoDecodeError("no video stream")
            s = container.streams.video[0]
            rate = s.average_rate or s.guessed_rate
            start = float(s.start_time * s.time_base) if s.start_time is not None and s.time_base else 0.0
            duration = (float(s.duration * s.time_base) if s.duration and s.time_base
                        else (container.duration / 1e6 if container.duration else None))
            rotation = 0
            try:
                frame = next(container.decode(s))
                rotation = int(round(getattr(frame, "rotation", 0) or 0)) % 360
            except (StopIteration, av.error.FFmpegError):
                pass
            return VideoInfo(fps=float(rate) if rate else None, frame_count_claimed=int(s.frames) or None,
                             duration=duration, width=s.codec_context.width, height=s.codec_context.height,
                             rotation=rotation, start_time=start, codec=s.codec_context.name)
    except VideoDecodeError:
        raise
    except Exception as exc:  # av raises many error types for unreadable input
        raise VideoDecodeError(f"cannot open video: {exc}") from None


def upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a decoded frame by the container's display rotation (counter-clockwise degrees)."""
    if rotation == 90:
        return np.ascontiguousarray(np.rot90(rgb, 1))
    if rotation == 180:
        return np.ascontiguousarray(rgb[::-1, ::-1])
    if rotation == 270:
        return np.ascontiguousarray(np.rot90(rgb, 3))
    return rgb


class VideoBackend(abc.ABC):
    """One decoding library; yields every ``step``-th frame from ``start`` in decode order."""

    name: str

    def __init__(self, path: str, info: VideoInfo) -> None:
        self.path = path
        self.info = info
        self.stats = DecodeStats(backend=self.name)

    @abc.abstractmethod
    def frames(self, step: int = 1, start: int = 0, stop: int | None = None, thumbs: bool = False
               ) -> Iterator[Frame]:
        """Frames ``start, start+step, ...`` (< ``stop``); ``stats`` counts the frames of that range
        that decoded (decord seeks to ``start``; PyAV and OpenCV decode their way there). With ``thumbs``
        the frames between them come too, as small copies (``sampled=False``): PyAV scales them in the
        decoder's colour conversion; decord and OpenCV convert them whole first (slower)."""


class DecordBackend(VideoBackend):
    name = "decord"

    def __init__(self, path: str, info: VideoInfo, device: str = "cpu") -> None:
        super().__init__(path, info)
        import decord

        ctx = decord.cpu(0)
        if device == "gpu":
            try:  # NVDEC: only when decord was built with CUDA
                self._reader = decord.VideoReader(path, ctx=decord.gpu(0), num_threads=1)
                self.device = "gpu"
            except Exception as exc:
                self.stats.errors.append(f"decord gpu unavailable, decoding on cpu: {exc}")
            else:
                self._setup_offset()
                return
        self.device = "cpu"
        self._reader = decord.VideoReader(path, ctx=ctx, num_threads=1)
        self._setup_offset()

    def _setup_offset(self) -> None:
        first = float(self._reader.get_frame_timestamp(0)[0]) if len(self._reader) else 0.0
        # decord reports times from the stream's first frame; add the stream's own start back.
        self._offset = self.info.start_time if abs(first) < 1e-6 else 0.0

    def frames(self, step: int = 1, start: int = 0, stop: int | None = None, thumbs: bool = False
               ) -> Iterator[Frame]:
        vr = self._reader
        n = len(vr) if stop is None else min(stop, len(vr))
        if start:
            vr.seek_accurate(start)
        index = start
        while index < n:
            try:
                frame = vr.next()
                rgb = frame.asnumpy() if hasattr(frame, "asnumpy") else np.asarray(frame)
            except Exception as exc:  # decord raises DECORDError / StopIteration at a broken tail
                self.stats.errors.append(f"frame {index}: {exc}")
                return
            self.stats.frames_decoded += 1
            ts = float(vr.get_frame_timestamp(index)[0]) + self._offset
            yield Frame(index, ts, rgb)  # decord applies the display rotation itself
            skip = min(step - 1, n - index - 1)
            if skip > 0 and thumbs:   # decord converts whole frames only
                for k in range(1, skip + 1):
                    try:
                        small = _thumb(vr.next().asnumpy())
                    except Exception as exc:
                        self.stats.errors.append(f"frame {index + k}: {exc}")
                        return
                    self.stats.frames_decoded += 1
                    yield Frame(index + k, float(vr.get_frame_timestamp(index + k)[0]) + self._offset, small, False)
            elif skip > 0:
                try:
                    vr.skip_frames(skip)
                except Exception as exc:
                    self.stats.errors.append(f"frame {index + 1}: {exc}")
                    return
                self.stats.frames_decoded += skip
            index += step


class PyAVBackend(VideoBackend):
    name = "pyav"

    def frames(self, step: int = 1, start: int = 0, stop: int | None = None, thumbs: bool = False
               ) -> Iterator[Frame]:
        import av

        with av.open(self.path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            index = -1
            try:
                for frame in container.decode(stream):
                    index += 1
                    if stop is not None and index >= stop:
                        return
                    if index < start:
                        continue  # decoded to reach the range, not counted as the range's
                    self.stats.frames_decoded += 1
                    sampled = not (index - start) % step
                    if not sampled and not thumbs:
                        continue
                    ts = float(frame.pts * frame.time_base) if frame.pts is not None else (
                        self.info.start_time + index / (self.info.fps or 1.0))
                    if sampled:   # to_ndarray applies no rotation: do it here as for every backend
                        yield Frame(index, ts, upright(frame.to_ndarray(format="rgb24"), self.info.rotation))
                    else:         # converted whole, then scaled by OpenCV: faster than swscale's scaling, and
                        # the scaler PySceneDetect uses (swscale's bilinear finds a false cut in testvideo.mp4)
                        yield Frame(index, ts, _thumb(upright(frame.to_ndarray(format="rgb24"), self.info.rotation)), False)
            except av.error.FFmpegError as exc:
                self.stats.errors.append(f"frame {index + 1}: {exc}")


class OpenCVBackend(VideoBackend):
    name = "opencv"

    def frames(self, step: int = 1, start: int = 0, stop: int | None = None, thumbs: bool = False
               ) -> Iterator[Frame]:
        import cv2

        cap = cv2.VideoCapture(self.path)
        if not cap.isOpened():
            raise VideoDecodeError("OpenCV cannot open the video")
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)  # rotation is applied by upright(), as for every backend
        index = -1
        offset = None
        try:
            while stop is None or index + 1 < stop:
                if not cap.grab():
                    return
                index += 1
                if offset is None:  # like decord, OpenCV may count from the stream's first frame
                    first = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                    offset = self.info.start_time if abs(first) < 1e-6 else 0.0
                if index < start:
                    continue
                self.stats.frames_decoded += 1
                sampled = not (index - start) % step
                if not sampled and not thumbs:
                    continue
                ok, bgr = cap.retrieve()
                if not ok:
                    self.stats.errors.append(f"frame {index}: cannot retrieve")
                    return
                ts = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 + offset
                rgb = upright(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.info.rotation)
                yield Frame(index, ts, rgb if sampled else _thumb(rgb), sampled)
        finally:
            cap.release()


_BACKEND_CLASSES: dict[str, type[VideoBackend]] = {
    "decord": DecordBackend, "pyav": PyAVBackend, "opencv": OpenCVBackend}


def open_video(path: str, backends: tuple[str, ...] = BACKENDS, *, decord_device: str = "cpu") -> VideoBackend:
    """The first backend that opens ``path``, in the order given; records why others failed."""
    info = probe(path)
    failures = []
    for name in backends:
        try:
            backend = (DecordBackend(path, info, device=decord_device) if name == "decord"
                       else _BACKEND_CLASSES[name](path, info))
        except Exception as exc:  # each library has its own error types
            failures.append(f"{name}: {exc}")
            continue
        backend.stats.errors.extend(f"fallback: {f}" for f in failures)
        return backend
    raise VideoDecodeError("no decoder could open the video: " + "; ".join(failures))
