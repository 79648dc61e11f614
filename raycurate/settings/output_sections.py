"""Settings of what a run keeps and writes: dedup, filter, export."""
from __future__ import annotations

import os
from dataclasses import dataclass

from .schema import (DISTANCE, FRACTION, Check, Section, Widget, non_negative, one_of, positive, section,
                     setting)

_FOLDER = Check(lambda v: v[:1] not in ("", ".") and all(c.isalnum() or c in "._-" for c in v),
                "a folder name (letters, digits, . _ -; not starting with .)")
_CLASS_NAME = Check(lambda v: v[:1] not in ("", ".", " ") and all(c.isalnum() or c in " ._-" for c in v),
                    "a folder name (letters, digits, space, . _ -; not starting with . or space)")


@dataclass(frozen=True)
class DedupColumns(Section):
    """Vector column -> largest cosine distance that counts as a duplicate (null: unused)."""

    content_vector: float | None = setting(
        0.15, "Cosine distance under which two images count as near duplicates (only the best is kept). Higher "
        "merges more; may merge different shots. No-download DCT vector: catches resizes and re-encodes.",
        DISTANCE, widget=Widget("Near-duplicate distance", 0, 0.5, 0.01))
    clip_embedding: float | None = setting(0.06, "when CLIP ran", DISTANCE)
    face_embedding: float | None = setting(None, "ArcFace matches a person, not a picture: off (use identities)",
                                           DISTANCE)
    face_embedding_dlib: float | None = setting(None, "dlib's, likewise", DISTANCE)


@dataclass(frozen=True)
class DedupSettings(Section):
    enabled: bool = setting(True, "mark near duplicates (never deleted; not exported)")
    columns: DedupColumns = section(DedupColumns, "vector column -> largest cosine distance of a duplicate")
    keep_by: list[str] = setting(["stage3_score", "pixels", "quality_sharpness"],
                                 "best member of a group: each descending, nulls last (pixels = w x h)",
                                 Check(lambda v: all(isinstance(x, str) for x in v),
                                       "a list of column names (or pixels)"))
    k: int = setting(16, "neighbours asked per row and column", positive())
    index_min_rows: int = setting(100000, "above this many rows a vector column gets an ANN index (cosine)",
                                  positive())
    index_type: str = setting("IVF_FLAT", "IVF_FLAT (exact distances, fastest here) | IVF_PQ | IVF_HNSW_SQ "
                              "(compressed + refine)", Check(lambda v: v in ("IVF_FLAT", "IVF_PQ", "IVF_HNSW_SQ"),
                                                             "IVF_FLAT, IVF_PQ or IVF_HNSW_SQ"))
    nprobes: int = setting(8, "IVF partitions searched per query", positive())
    refine_factor: int = setting(10, "IVF_PQ / IVF_HNSW_SQ: candidates re-ranked exactly, k x this", positive())
    # how the near pairs are found (raycurate/store/dedup.py): block reads the whole column and searches it
    # exactly inside partitions (no index; every pair within the threshold, not only k per row); ann asks the
    # vector index per row. Measured (docs/benchmarks.md): 1M x 512 block 25-55 s, ann 551 s + 102 s index
    # build; 20k rows block 4.8 s, ann (exact search below index_min_rows) 27 s.
    method: str = setting("auto", "auto | ann | block: block searches the whole column exactly inside partitions "
                          "(no index); auto takes it when the scope holds >= block_min_rows vectors and >= 1/20 "
                          "of the table's", Check(lambda v: v in ("auto", "ann", "block"), "auto, ann or block"))
    block_min_rows: int = setting(10000, "method auto: block from this many vectors in scope", positive())


@dataclass(frozen=True)
class FilterSettings(Section):
    """Gates act on stored scores (LanceDB SQL), never by re-running a model."""

    min_faces: int | None = setting(
        1, "Images with fewer detected faces are dropped (0 or null keeps images without people).",
        non_negative("an integer >= 0"), widget=Widget("Minimum faces", 0, 10, 1))
    max_faces: int | None = setting(None, "images with more faces are dropped", non_negative("an integer >= 0"))
    max_nsfw_score: float | None = setting(
        0.5, "Images scoring above this are dropped. Lower is stricter; null: no NSFW gate.", FRACTION,
        widget=Widget("Maximum NSFW score", 0, 1, 0.01))
    drop_blurry: bool = setting(
        True, "Drop images the quality analyser marks blurry (variance of the Laplacian under its threshold).",
        widget=Widget("Drop blurry images"))
    min_sharpness: float | None = setting(None, "variance of the Laplacian (quality_sharpness) at least this",
                                          non_negative())
    max_abs_yaw: float | None = setting(None, "degrees: the largest face's |yaw| at most this", non_negative())
    min_side: int | None = setting(64, "Images smaller than this in width or height are dropped (pixels).",
                                   non_negative("an integer >= 0"), widget=Widget("Minimum side (px)", 0, 2048, 16))
    where: str | None = setting(None, 'extra SQL predicate over stored columns, e.g. "quality_brightness > 0.2"')


@dataclass(frozen=True)
class KohyaSettings(Section):
    enabled: bool = setting(True, "LoRA trainer folders: OUT/<dir>/<repeats>_<name>/ image + caption .txt")
    dir: str = setting("train", "folder under OUT", _FOLDER)
    repeats: int = setting(10, "times each image is seen per epoch (the folder's number)", positive())
    name: str = setting("person", "the folder's class name", _CLASS_NAME)
    trigger: str | None = setting(None, 'the caption\'s {trigger} word (e.g. "ohwx person"); null: name')
    captions: str | None = setting(None, "caption template file; null: configs/captions.yaml",
                                   Check(os.path.isfile, "an existing caption template file"))
    caption_style: str = setting("tags", "tags: comma tags (the caption template); sentence: one plain-language "
                                 "sentence of the same facts", one_of("tags", "sentence"))


_BUCKET = Check(lambda v: bool(v) and all(isinstance(b, str) and len(b.split(":")) == 2 and
                                          all(p.strip().isdigit() and int(p) > 0 for p in b.split(":")) for b in v),
                "a non-empty list of aspect ratios W:H, e.g. [\"1:1\", \"3:4\", \"4:3\"]")
_SIZES = Check(lambda v: all(isinstance(s, int) and not isinstance(s, bool) and s >= 64 for s in v),
               "a list of sizes in pixels (>= 64), e.g. [768, 1024]")


@dataclass(frozen=True)
class CropSettings(Section):
    enabled: bool = setting(False, "write the crops")
    size: int = setting(512, "pixels: the longer side of every crop", positive())
    sizes: list[int] = setting([], "more training sizes, each crop also written at these (e.g. [768, 1024])",
                               _SIZES)
    buckets: list[str] = setting(["1:1"], "aspect buckets W:H (width:height) of the crops, e.g. [1:1, 3:4, 4:3]; "
                                 "the shorter side is a multiple of 64", _BUCKET)
    padding: float = setting(0.4, "added on each side, as a fraction of the box's larger side", non_negative())


@dataclass(frozen=True)
class BodyCropSettings(CropSettings):
    size: int = setting(768, "pixels: the longer side of every crop", positive())
    padding: float = setting(0.15, "added on each side, as a fraction of the box's larger side", non_negative())


@dataclass(frozen=True)
class IdentitySettings(Section):
    enabled: bool = setting(False, "OUT/by_identity/<identity>/: the kept images by their main face's stored "
                            "identity (its name, or id); metadata gets identity")


@dataclass(frozen=True)
class ExportSettings(Section):
    enabled: bool = setting(True, "write OUT/ (images, metadata, trainer folders)")
    copy_images: bool = setting(True, "copy kept originals into OUT/images (bytes untouched)")
    copy_threads: int = setting(8, "threads that copy, link, caption and crop", positive())
    parquet: bool = setting(True, "also OUT/metadata.parquet: the rows and columns of metadata.jsonl")
    include_duplicates: bool = setting(False, "also export rows dedup marked duplicate_of")
    kohya: KohyaSettings = section(KohyaSettings, "LoRA trainer folders (kohya-ss sd-scripts, OneTrainer)")
    face_crops: CropSettings = section(CropSettings, "OUT/face_crops/<stem>_f<k>.jpg: one square JPEG per face")
    body_crops: BodyCropSettings = section(BodyCropSettings, "OUT/body_crops/<stem>_b0.jpg: upper body of the "
                                           "largest person")
    group_by_identity: IdentitySettings = section(IdentitySettings, "OUT/by_identity/<identity>/")
