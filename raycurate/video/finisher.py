"""Stage 3 of each video as soon as all its frames have come through Stages 1-2 (plain code, no ray; the
engine runs one :class:`VideoFinisher` as the last actor of the video path).

Frame rows of many videos arrive in any order, each batch from whichever stage actor finished it. The row
that closes a segment (``frame_index`` -1, from :meth:`raycurate.video.source.VideoSampler.end_row`) says how
many frame rows the segment sent, how many segments its video has, and the segment's cuts. Once a video's
segments are all closed and all their rows have arrived, the finisher

1. numbers the scenes and marks the frames near a cut from the cuts of the whole video;
2. writes each winner's JPEG: the bytes the decoder made of the full-size frame, kept through the cascade
   (the best ``KEEP_FACTOR x max_frames`` of the video by Stage 3 base score are kept; a winner outside
   them is read by an exact seek, never by a re-read from frame 0). The file is written once and never read
   back: the winner's image row is made from the same bytes in memory;
3. stores its Stage 3 rows (scores, the winners marked with their files) in the ``stage3`` table, its frame
   rows (pixels dropped) in the ``frames`` table, then, last, its row in ``videos_done``: a video is done
   once that row is stored, and a later run skips it (what a killed run stored of an unfinished video is
   forgotten and the video done again: :func:`raycurate.video.stage3.forget_unfinished_videos`);
4. returns the winners as image rows (:func:`raycurate.rows.row_schema`: pixels at ``decode.max_side``, the
   file's hash as id, lineage, and the columns of the ``carried`` analysers as the cascade gave them), which
   flow on into the image analysers' pools in the same Ray Data graph as the photos.

A video whose decoder died for good sends no rows and no end row: its error is in the ``videos`` table.
"""
from __future__ import annotations

import heapq
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from ..people.targets import PersonTarget
from ..rows import DECODE_SCHEMA, blank_row, decode_bytes, table_of
from ..schemas import frames_schema
from ..settings import DecodeSettings, Stage3Settings, VideoSettings, as_dict
from ..store.schema import FRAMES_TABLE, STAGE3_SCHEMA, STAGE3_TABLE, VIDEOS_DONE_SCHEMA, VIDEOS_DONE_TABLE, conform
from ..store.table import open_or_create_table
from .frames import frame_name, frames_at, write_frame
from .jpeg import encode_frame
from .scenes import near_cut, scene_of
from .select import ensemble_parts, stage3_rows
from .source import END_OF_SEGMENT

KEEP_FACTOR = 3   # full-size pixels kept per video: the best KEEP_FACTOR x max_frames candidates (2: 11 of the
# bench clip's 45 winners, best of their scene but not of the video, were read again by a seek, 1.8 s at its end)
DROPPED = ("pixels", "pixels_h", "pixels_w", "full_pixels", "segment_rows", "segments", "cuts", "fps",
           "video_error")



@dataclass
class _Video:
    uri: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    segments: int | None = None
    closed: int = 0
    expected: int = 0
    cuts: set[int] = field(default_factory=set)
    fps: float | None = None
    kept: list[tuple[float, int]] = field(default_factory=list)     # min-heap of (base score, frame index)
    # frame index -> the full-size frame: its JPEG bytes, or RGB pixels when the analysis copy is full size
    pixels: dict[int, bytes | np.ndarray] = field(default_factory=dict)

    def done(self) -> bool:
        return self.segments is not None and self.closed >= self.segments and len(self.rows) >= self.expected


class VideoFinisher:
    """Collects each video's scored frames and finishes it (module docstring) when the last one arrives."""

    def __init__(self, *, db_uri: str, run_id: str, stage3: Stage3Settings, video: VideoSettings,
                 frames_dir: str, rows: pa.Schema, decode: DecodeSettings, targets: Sequence[PersonTarget] = ()
                 ) -> None:
        """``rows``: the schema of the image rows it hands on (:func:`raycurate.rows.row_schema`: the columns it
        carries from the cascade follow the decoded ones); ``decode``: their pixels' size limits."""
        self.rows_schema = rows
        self.carried = [name for name in rows.names if name not in DECODE_SCHEMA.names]   # the cascade's columns
        self.decode = decode
        self.read_again = 0   # winners read again by a seek (their pixels were not kept), all videos so far
        self.db_uri = db_uri
        self.run_id = run_id
        self.stage3 = stage3
        self.video = video
        self.frames_dir = frames_dir
        self.targets = list(targets)
        self.keep = KEEP_FACTOR * video.max_frames if video.max_frames else None
        self._videos: dict[str, _Video] = {}
        self._frames_schema = frames_schema()

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Take one batch of scored frame rows; the winners of every video it completes."""
        touched: set[str] = set()
        images = _full_images(batch)
        for i, row in enumerate(batch.drop_columns([c for c in DROPPED if c in batch.column_names]).to_pylist()):
            vid = row["video_id"]
            v = self._videos.setdefault(vid, _Video(row["video_uri"]))
            touched.add(vid)
            if row["frame_index"] == END_OF_SEGMENT:
                end = {k: batch.column(k)[i].as_py() for k in ("segment_rows", "segments", "cuts", "fps")}
                v.segments = int(end["segments"] or 1)
                v.closed += 1
                v.expected += int(end["segment_rows"] or 0)
                v.cuts.update(end["cuts"] or [])
                v.fps = v.fps or end["fps"]
                continue
            v.rows.append(row)
            if row.get("stage2_passed") and images[i] is not None:
                self._maybe_keep(v, row, images[i])
        winners: list[dict[str, Any]] = []
        for vid in touched:
            if self._videos[vid].done():
                winners += self._finish(vid, self._videos.pop(vid))
        return table_of(winners, self.rows_schema)

    @property
    def pending(self) -> list[str]:
        """Videos seen but not finished (their uris)."""
        return [v.uri for v in self._videos.values()]

    def _maybe_keep(self, v: _Video, row: Mapping[str, Any], frame: bytes | np.ndarray) -> None:
        """Keep a candidate's full-size frame while it is among the video's best ``keep`` by base score."""
        w = self.stage3.weights
        try:
            parts = ensemble_parts(row)
        except (TypeError, ValueError, KeyError):
            return
        weights = as_dict(w)
        base = sum(weights[k] * parts[k] for k in parts) / (sum(weights.values()) or 1.0)
        entry = (base, int(row["frame_index"]))
        if self.keep is None or len(v.kept) < self.keep:
            heapq.heappush(v.kept, entry)
        elif v.kept and entry > v.kept[0]:
            dropped = heapq.heapreplace(v.kept, entry)
            v.pixels.pop(dropped[1], None)
        else:
            return
        v.pixels[entry[1]] = frame

    def _finish(self, vid: str, v: _Video) -> list[dict[str, Any]]:
        cuts = sorted(v.cuts)
        window = max(1, round(self.video.scene_window_s * (v.fps or 25.0)))
        v.rows.sort(key=lambda r: r["frame_index"])
        for r in v.rows:
            r["scene_index"] = scene_of(r["frame_index"], cuts)
            r["near_cut"] = near_cut(r["frame_index"], cuts, window)
            r["run_id"] = self.run_id
        winners = self._stage3(vid, v)
        if v.rows:
            open_or_create_table(self.db_uri, FRAMES_TABLE, self._frames_schema).add(
                conform(pa.Table.from_pylist(v.rows), self._frames_schema))
        # last: the video is done (a later run skips it; a run killed before this line does it again)
        done = {"video_id": vid, "uri": v.uri, "run_id": self.run_id, "frames": len(v.rows), "winners": len(winners),
                "finished_at": datetime.now(timezone.utc)}
        open_or_create_table(self.db_uri, VIDEOS_DONE_TABLE, VIDEOS_DONE_SCHEMA).add(
            pa.Table.from_pylist([done], schema=VIDEOS_DONE_SCHEMA))
        return winners

    def _stage3(self, vid: str, v: _Video) -> list[dict[str, Any]]:
        """The video's Stage 3 rows stored, its winners written; the winners."""
        passed = [r for r in v.rows if r.get("stage2_passed")]
        if not passed:
            return []
        s3 = self.stage3
        scored = stage3_rows(passed, weights=as_dict(s3.weights), threshold=s3.threshold,
                             scene_bonus=self.video.scene_bonus, min_separation=self.video.min_separation,
                             max_frames=self.video.max_frames, per_scene=self.video.scene_detection,
                             targets=self.targets)
        by_index = {r["frame_index"]: r for r in passed}
        chosen = [r["frame_index"] for r in scored if r["selected"]]
        missing = [i for i in chosen if i not in v.pixels]
        pixels = dict(v.pixels)
        if missing:   # not kept: an exact seek to each (decord), never a re-read of the whole video
            try:
                pixels.update(frames_at(v.uri, missing, self.video.decoders))
            except Exception as exc:  # the video went away or broke since: those winners have no file
                print(f"[raycurate] {v.uri}: {len(missing)} winning frames could not be read again: {exc}",
                      file=sys.stderr)
        winners = []
        for r in scored:
            r["run_id"] = self.run_id
            if not r["selected"] or r["frame_index"] not in pixels:
                continue
            f = by_index[r["frame_index"]]
            frame = pixels[r["frame_index"]]
            data = frame if isinstance(frame, bytes) else encode_frame(frame, self.video.frame_quality)
            out = None if data is None else write_frame(data, self.frames_dir,
                                                        frame_name(v.uri, vid, f["frame_index"]),
                                                        self.video.frame_quality)
            if out is None:
                continue
            r["frame_path"] = out[0]
            self.read_again += r["frame_index"] in missing
            lineage = {"source_video_id": vid, "source_video_uri": v.uri, "frame_index": f["frame_index"],
                       "frame_timestamp": f["timestamp"], "scene_index": f["scene_index"],
                       "stage1_score": f["stage1_score"], "stage2_score": f["stage2_score"],
                       "stage3_score": r["stage3_score"]}
            row = blank_row(out[0], out[1], lineage, self.rows_schema)
            row.update({name: f.get(name) for name in self.carried})
            winners.append(decode_bytes(data, row, max_side=self.decode.max_side, max_pixels=self.decode.max_pixels))
        table = open_or_create_table(self.db_uri, STAGE3_TABLE, STAGE3_SCHEMA)
        table.add(conform(pa.Table.from_pylist(scored, schema=STAGE3_SCHEMA), table.schema))
        return winners


def _full_images(batch: pa.Table) -> list[bytes | np.ndarray | None]:
    """Each Stage 2 candidate's frame at full size: ``full_pixels`` (its JPEG bytes), else the analysis copy's
    pixels when it is the frame's full size; None for every other row (rejected, an end row, no pixels): only
    the candidates' bytes are taken out of the batch."""
    n = batch.num_rows
    out: list[bytes | np.ndarray | None] = [None] * n
    cols = batch.column_names
    if "stage2_passed" not in cols:
        return out
    passed = batch.column("stage2_passed").to_pylist()
    full = batch.column("full_pixels") if "full_pixels" in cols else None
    small = batch.column("pixels") if "pixels" in cols else None
    for i in (i for i in range(n) if passed[i]):
        data = full[i].as_py() if full is not None else None
        if data is not None:
            out[i] = data
        elif small is not None and small[i].is_valid:
            h, w = batch.column("pixels_h")[i].as_py(), batch.column("pixels_w")[i].as_py()
            if (h, w) == (batch.column("height")[i].as_py(), batch.column("width")[i].as_py()):
                out[i] = np.frombuffer(small[i].as_py(), np.uint8).reshape(h, w, 3)   # a copy: the batch is let go
    return out
