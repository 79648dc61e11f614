"""The tables' schemas: the store's own columns are declared here, once, and the tables composed from them and
the columns the store is given.

Core columns describe the file and its decoding. The analysers declare their own columns
(:meth:`raycurate.analyzers.Analyzer.fields`: model id/version, error and time per image included) and the
cascade stages theirs; the store imports none of them: :func:`images_schema_of` and :func:`frames_schema_of`
take those columns, and :mod:`raycurate.schemas` gathers them (``images_schema()``, ``frames_schema()``).
"""
from __future__ import annotations

from typing import Sequence

import pyarrow as pa

from .people_schema import PEOPLE_FIELDS

TABLE_NAME = "images"

CORE_FIELDS: list[pa.Field] = [
    pa.field("id", pa.string(), nullable=False),          # sha256 of the file's bytes
    pa.field("uri", pa.string(), nullable=False),         # where the file was read
    pa.field("run_id", pa.string(), nullable=False),      # the run that wrote the row
    pa.field("media_type", pa.string(), nullable=False),  # image (video frames arrive with the video path)
    pa.field("file_size", pa.int64()),
    pa.field("format", pa.string()),                      # JPEG, PNG, GIF, ...
    pa.field("mode", pa.string()),                        # pixel mode in the file: RGB, L, I;16, P, CMYK ...
    pa.field("width", pa.int32()),                        # upright size of the original
    pa.field("height", pa.int32()),
    pa.field("exif_orientation", pa.int8()),
    pa.field("n_frames", pa.int32()),
    pa.field("error", pa.string()),                       # why the file could not be read or decoded
    pa.field("warning", pa.string()),                     # oddities that did not stop decoding
    pa.field("decode_ms", pa.float32()),
    pa.field("analyzed_at", pa.timestamp("us", tz="UTC")),
]

# Lineage of an image that is a video frame (null for photos).
LINEAGE_FIELDS: list[pa.Field] = [
    pa.field("source_video_id", pa.string()),
    pa.field("source_video_uri", pa.string()),
    pa.field("frame_index", pa.int64()),
    pa.field("frame_timestamp", pa.float64()),   # seconds, true presentation time
    pa.field("scene_index", pa.int32()),
    pa.field("stage1_score", pa.float32()),
    pa.field("stage2_score", pa.float32()),
    pa.field("stage3_score", pa.float32()),
]

# Written by dedup (raycurate/store/dedup.py) after the analysers; rows are marked, never deleted. The
# frames table has them too (content ids there: video_id:frame_index).
DEDUP_FIELDS: list[pa.Field] = [
    pa.field("duplicate_group", pa.string()),    # id of the group's kept row, on every member (keeper included)
    pa.field("duplicate_of", pa.string()),       # id of the kept row; null on the keeper and on unique rows
    pa.field("duplicate_distance", pa.float32()),  # cosine distance to the kept row (0: same bytes)
    pa.field("duplicate_column", pa.string()),   # id (same bytes) or the vector column that matched
]

# Written by people in the web UI (raycurate/ui): a manual decision that overrides the gates.
# keep: kept whatever the gates say (a row that decoded); reject: never kept; null: the gates decide.
CURATION_FIELDS: list[pa.Field] = [
    pa.field("manual_label", pa.string()),
    pa.field("manual_label_at", pa.timestamp("us", tz="UTC")),
]

FRAMES_TABLE = "frames"
VIDEOS_TABLE = "videos"
STAGE3_TABLE = "stage3"

# One row per sampled frame: where it comes from, then Stage 1 and Stage 2 columns.
FRAME_KEY_FIELDS: list[pa.Field] = [
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("video_uri", pa.string(), nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("segment", pa.int32()),    # part of a long video decoded by its own task (0 when not split)
    pa.field("frame_index", pa.int64(), nullable=False),
    pa.field("timestamp", pa.float64()),
    pa.field("scene_index", pa.int32()),  # within the segment; Stage 3 and the images carry the video-wide one
    pa.field("near_cut", pa.bool_()),
    pa.field("motion", pa.float32()),   # difference to the previous kept frame, 0-100 (null for the first)
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
]

VIDEOS_SCHEMA = pa.schema([
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("uri", pa.string(), nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("segment", pa.int32()),
    pa.field("frame_start", pa.int64()),
    pa.field("frame_stop", pa.int64()),     # null: to the end
    pa.field("decoder", pa.string()),
    pa.field("fps", pa.float64()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("rotation", pa.int32()),
    pa.field("start_time", pa.float64()),
    pa.field("duration", pa.float64()),
    pa.field("frames_claimed", pa.int64()),
    pa.field("frames_decoded", pa.int64()),
    pa.field("candidates", pa.int64()),
    pa.field("motion_dropped", pa.int64()),
    pa.field("cuts", pa.list_(pa.int64())),
    pa.field("error", pa.string()),
    pa.field("warning", pa.string()),
    pa.field("decode_s", pa.float64()),
    pa.field("file_size", pa.int64()),      # bytes of the video file (ingest: which sizes the catalogue holds)
])

# A video the Stage 3 step finished (its frames, Stage 3 rows and winners stored): a later run skips it.
VIDEOS_DONE_TABLE = "videos_done"
VIDEOS_DONE_SCHEMA = pa.schema([
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("uri", pa.string(), nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("frames", pa.int64()),          # frame rows stored
    pa.field("winners", pa.int32()),         # winning frames written
    pa.field("finished_at", pa.timestamp("us", tz="UTC")),
])

# The runs whose stored rows a finished run has curated (grouped with their duplicates, their faces indexed): the
# rows of a run killed before that are curated by the next run.
CURATED_TABLE = "curated_runs"
CURATED_SCHEMA = pa.schema([
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("curated_by", pa.string(), nullable=False),   # the run that did it (itself, or the next one)
    pa.field("curated_at", pa.timestamp("us", tz="UTC")),
])

# Every name a content was listed under (raycurate.ingest): the same bytes under several names are one row of
# ``images`` (or one video) and one row here per name. (uri, size, mtime) tell an unchanged file, whose id is
# then known without reading it again.
FILES_TABLE = "files"
FILES_SCHEMA = pa.schema([
    pa.field("uri", pa.string(), nullable=False),
    pa.field("id", pa.string(), nullable=False),        # content id: images.id, or videos.video_id
    pa.field("media_type", pa.string()),                # image | video
    pa.field("size", pa.int64()),
    pa.field("mtime_ns", pa.int64()),
    pa.field("run_id", pa.string()),                    # the run that recorded it (listed it first, or changed)
])

STAGE3_SCHEMA = pa.schema([
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("frame_index", pa.int64(), nullable=False),
    pa.field("stage3_base", pa.float32()),     # weighted mean of the parts
    pa.field("stage3_score", pa.float32()),    # base, with the scene bonus where near a cut
    pa.field("stage3_passed", pa.bool_()),
    pa.field("selected", pa.bool_()),          # one of the video's winners
    pa.field("stage3_target", pa.string()),    # --person: the target(s) the main face shows (null: none / no target)
    pa.field("stage3_bin", pa.string()),       # --person: head-pose / expression bin of the main face
    pa.field("frame_path", pa.string()),       # a winner: the file it was written to (OUT/frames)
    *[pa.field(f"stage3_{p}", pa.float32()) for p in
      ("face_sharpness", "sharpness", "exposure", "face_area", "one_face", "contrast", "nsfw_safe")],
])


def images_schema_of(columns: Sequence[pa.Field]) -> pa.Schema:
    """The ``images`` table: the store's columns (core, lineage, dedup marks, manual labels, people), then
    ``columns``, the analysers' in pipeline order (:func:`raycurate.schemas.images_schema` passes every known
    analyser's: the table always holds them all, so that runs with different analysers enabled append to one
    table; a disabled analyser's columns are null)."""
    return pa.schema(CORE_FIELDS + LINEAGE_FIELDS + DEDUP_FIELDS + CURATION_FIELDS + PEOPLE_FIELDS + list(columns))


def frames_schema_of(columns: Sequence[pa.Field]) -> pa.Schema:
    """The ``frames`` table: key and lineage columns, then ``columns`` (every cascade stage's, in stage order:
    :func:`raycurate.schemas.frames_schema`), then dedup's marks (the dedup columns hold a frame's content id,
    ``video_id:frame_index``)."""
    return pa.schema(FRAME_KEY_FIELDS + list(columns) + DEDUP_FIELDS)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns, in order and types; missing columns are null."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            col = table.column(field.name)
            columns.append(col if col.type == field.type else col.cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)
