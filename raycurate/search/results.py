"""What a search returns and shows: the hits' table (rank, distance, thumbnail and the stored columns of
:data:`HIT_COLUMNS`), the JPEG thumbnails of the hits (a face's: a crop), and the text tables
``raycurate search`` prints for image hits and face hits. The searches themselves are
:mod:`raycurate.search.images` and :mod:`raycurate.search.faces`."""
from __future__ import annotations

import os
import uuid
import warnings
from typing import Any, Sequence

import pyarrow as pa

THUMB_SIDE = 256
CROP_MARGIN = 0.25        # a face thumbnail: its box grown by this fraction of its size on each side
CROP_DECODE_SIDE = 2048   # the original is decoded at this size before a face is cropped from it
# Stored columns returned with each hit (besides rank, distance and thumbnail).
HIT_COLUMNS = ("id", "uri", "media_type", "width", "height", "source_video_uri", "frame_index", "frame_timestamp",
               "face_count", "nsfw_score", "quality_sharpness", "clip_aesthetic", "stage3_score")


def join_path(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}" if "://" in base else os.path.join(base, name)


def result_table(hits: pa.Table, thumbs: list[str | None], stored: pa.Schema, column: str, method: str,
                 clip_model: str | None) -> pa.Table:
    """The hits (with a ``distance`` column) as a search returns them: rank, distance, :data:`HIT_COLUMNS`
    (null where the ``stored`` table lacks one) with ``thumbnail`` after ``uri``; the schema metadata says
    which column and method served."""
    n = hits.num_rows
    arrays: dict[str, pa.Array] = {"rank": pa.array(range(1, n + 1), pa.int32()),
                                   "distance": hits.column("distance").combine_chunks()}
    for name in HIT_COLUMNS:
        if name in hits.column_names:
            arrays[name] = hits.column(name).combine_chunks()
        else:   # a table written before the column existed
            arrays[name] = pa.nulls(n, stored.field(name).type if name in stored.names else pa.string())
        if name == "uri":
            arrays["thumbnail"] = pa.array(thumbs, pa.string())
    meta = {"raycurate.column": column, "raycurate.method": method, "raycurate.clip_model": clip_model or ""}
    return pa.table(arrays).replace_schema_metadata(meta)


def write_thumbnail(thumbs_dir: str, content_id: str, uri: str, box: Sequence[float] | None = None) -> str | None:
    """Path of a JPEG thumbnail (longest side :data:`THUMB_SIDE`) of the original at ``uri``,
    written under ``thumbs_dir`` the first time; None when the original cannot be read. With ``box``
    (x1, y1, x2, y2 as fractions): the thumbnail of that region with a margin of :data:`CROP_MARGIN`
    (a face), named ``<content_id[:16]>.jpg`` too, so ``content_id`` names the crop."""
    import io

    import pyarrow.fs as pafs
    from PIL import Image

    from ..decode import DecodeError, decode_image
    from ..sources import open_filesystem, read_bytes

    fs, folder = open_filesystem(thumbs_dir)
    target = f"{folder.rstrip('/')}/{content_id[:16]}.jpg"
    shown = join_path(thumbs_dir, f"{content_id[:16]}.jpg")
    if fs.get_file_info(target).type == pafs.FileType.File:
        return shown
    try:
        rgb = decode_image(read_bytes(uri), max_side=THUMB_SIDE if box is None else CROP_DECODE_SIDE).rgb
    except (DecodeError, OSError):
        return None
    if box is not None:
        rgb = crop_face(rgb, box)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=85)
    partial = f"{target}.{uuid.uuid4().hex[:8]}.part"   # two searches may write the same thumbnail
    try:
        fs.create_dir(folder, recursive=True)
        with fs.open_output_stream(partial) as out:
            out.write(buf.getvalue())
        fs.move(partial, target)
    except OSError as exc:   # e.g. a read-only DB: the hits are still good, say why there is no thumbnail
        # stacklevel: the caller of Curation.thumbnail's caller, as when this was Curation.thumbnail's body
        warnings.warn(f"thumbnail not written to {shown}: {exc} (pass thumbs_dir / use a writable place)",
                      RuntimeWarning, stacklevel=4)
        return None
    return shown


def crop_face(rgb: Any, box: Sequence[float]) -> Any:
    """The region ``box`` (fractions) of ``rgb`` with its margin, at most :data:`THUMB_SIDE` on its longest side."""
    from ..decode import resize_max_side

    h, w = rgb.shape[:2]
    mx, my = (box[2] - box[0]) * CROP_MARGIN, (box[3] - box[1]) * CROP_MARGIN
    x1, x2 = max(0, int((box[0] - mx) * w)), min(w, int(round((box[2] + mx) * w)))
    y1, y2 = max(0, int((box[1] - my) * h)), min(h, int(round((box[3] + my) * h)))
    if x2 - x1 < 1 or y2 - y1 < 1:
        return resize_max_side(rgb, THUMB_SIDE)
    return resize_max_side(rgb[y1:y2, x1:x2].copy(), THUMB_SIDE)


# -- command line -------------------------------------------------------------------------------
def where_shown(row: dict[str, Any]) -> str:
    """A hit's place: its uri, or ``video@timestamp`` for a video frame."""
    video = row.get("source_video_uri")
    if video:
        ts = row.get("frame_timestamp")
        return f"{video}@{ts:.3f}s" if ts is not None else f"{video}#frame{row.get('frame_index')}"
    return str(row.get("uri"))


def format_hits(hits: pa.Table) -> str:
    """The hits as a text table, after one line naming the column and method."""
    meta = {k.decode(): v.decode() for k, v in (hits.schema.metadata or {}).items()}
    model = f", {meta['raycurate.clip_model']}" if meta.get("raycurate.clip_model") else ""
    lines = [f"# {hits.num_rows} hits on {meta.get('raycurate.column')} ({meta.get('raycurate.method')}{model})",
             f"{'rank':>4}  {'distance':>8}  {'id':<12}  {'uri':<48}  thumbnail"]
    for row in hits.to_pylist():
        lines.append(f"{row['rank']:>4}  {row['distance']:>8.4f}  {row['id'][:12]:<12}  {where_shown(row):<48}  "
                     f"{row['thumbnail'] or '-'}")
    return "\n".join(lines)


def face_where(row: dict[str, Any]) -> str:
    """A face's place: its image's uri, or ``video@timestamp`` for a face of a video frame."""
    if row.get("video_id") or row.get("source") == "frame":
        ts = row.get("timestamp")
        return f"{row.get('uri')}@{ts:.3f}s" if ts is not None else f"{row.get('uri')}#frame{row.get('frame_index')}"
    return str(row.get("uri"))


def short_face_id(face_id: str) -> str:
    """``<id[:12]>:<k>`` (``<video id[:12]>@<frame>:<k>``) of ``<64-hex id>:<k>``, as the hits' table shows it."""
    return face_id[:12] + face_id[64:] if len(face_id) > 64 else face_id


def format_face_hits(hits: pa.Table) -> str:
    """Face hits as a text table, after one line saying what served them."""
    meta = {k.decode(): v.decode() for k, v in (hits.schema.metadata or {}).items()}
    if meta.get("raycurate.kind") == "identity":
        name = f" ({meta['raycurate.identity_name']})" if meta.get("raycurate.identity_name") else ""
        head = (f"# {hits.num_rows} faces of identity {meta.get('raycurate.identity')}{name}, sharpest first; "
                f"distance: to the identity's centroid")
    else:
        head = (f"# {hits.num_rows} faces nearest on {meta.get('raycurate.column')} ({meta.get('raycurate.method')}, "
                f"{meta.get('raycurate.model')}); same person: distance <= {meta.get('raycurate.same_person')}")
    lines = [head, f"{'rank':>4}  {'distance':>8}  {'same':<4}  {'identity':<12}  {'face_id':<20}  "
                   f"{'uri':<48}  thumbnail"]
    for r in hits.to_pylist():
        dist = "-" if r["distance"] is None else f"{r['distance']:.4f}"
        lines.append(f"{r['rank']:>4}  {dist:>8}  {'yes' if r['same_person'] else 'no':<4}  "
                     f"{r['identity_id'] or '-':<12}  {short_face_id(r['face_id']):<20}  {face_where(r):<48}  "
                     f"{r['thumbnail'] or '-'}")
    return "\n".join(lines)


__all__ = ["CROP_DECODE_SIDE", "HIT_COLUMNS", "THUMB_SIDE", "crop_face", "face_where", "format_face_hits",
           "format_hits", "join_path", "result_table", "short_face_id", "where_shown", "write_thumbnail"]
