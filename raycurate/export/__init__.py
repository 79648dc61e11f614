"""Export of the kept images: the originals, their metadata, and training-ready layouts.

Rows are streamed out of LanceDB with the keep predicate applied inside
LanceDB; no model runs here (``export_from_db`` re-exports an existing table).
Output names come from the source name made safe (no path separators, no
leading dots, a restricted alphabet) plus the content id, so two sources can
never collide and nothing can be written outside the output folder.

``OUT`` is a local folder or a prefix in a bucket (``s3://bucket/prefix``, ``gs://...``), written
through ``pyarrow.fs`` (:class:`raycurate.storage.OutputDir`): in a bucket the kohya and identity
copies are server-side copies of ``images/`` (there are no hard links), or uploads when the
originals are not copied.

What is written under ``OUT`` (each part but ``metadata.jsonl`` is optional)::

    images/<name>                     the originals, byte for byte
    metadata.jsonl, metadata.parquet  one record per kept row (vector columns stay in LanceDB)
    train/<repeats>_<name>/<name>     kohya-ss / OneTrainer layout: the image (a hard link)
    train/<repeats>_<name>/<stem>.txt   and its caption (export.kohya.caption_style: tags | sentence)
    face_crops/<stem>_f<k>.jpg        square crop of face k (0: the largest)
    body_crops/<stem>_b0.jpg          square upper-body crop
    by_identity/person_<n>/<name>     the images grouped by face embedding (unknown/: no embedding)

The modules: :mod:`.names` (safe output names), :mod:`.records` (the metadata columns and rows),
:mod:`.caption_parts` (what the stored columns say: a caption's facts), :mod:`.captions` (the facts as tags,
through the caption template language, or as a sentence), :mod:`.crops` (crop geometry and files),
:mod:`.identity` (group_by_identity: the stored identities), :mod:`.options` (the ``export`` config section),
:mod:`.writer` (``export_kept``) and :mod:`.from_db` (re-export from a table, no model).
"""
from .caption_parts import CaptionFacts, caption_facts
from .captions import CAPTIONS_FILE, DERIVED, STYLES, CaptionBuilder, CaptionPart, CaptionTemplate, head_yaw, sentence
from .crops import JPEG_QUALITY, VISIBLE, crop_square, square_region, upper_body_box, write_crops
from .from_db import export_filtered, export_from_db
from .identity import identities, identity_names
from .names import FORMAT_EXTENSIONS, safe_name, safe_stem
from .options import CropOptions, IdentityOptions, KohyaOptions, export_options
from .records import (EXPORT_FIELDS, VECTOR_COLUMNS, canonical_uris, iter_rows, json_safe, metadata_schema,
                      vector_columns)
from .writer import ExportResult, export_kept

__all__ = ["CAPTIONS_FILE", "DERIVED", "EXPORT_FIELDS", "FORMAT_EXTENSIONS", "JPEG_QUALITY", "STYLES",
           "VECTOR_COLUMNS", "VISIBLE", "CaptionBuilder", "CaptionFacts", "CaptionPart", "CaptionTemplate",
           "caption_facts", "sentence", "CropOptions", "ExportResult", "IdentityOptions",
           "KohyaOptions", "canonical_uris", "crop_square", "export_filtered", "identity_names",
           "export_from_db", "export_kept", "export_options", "head_yaw", "identities", "iter_rows", "json_safe",
           "metadata_schema", "safe_name", "safe_stem", "square_region", "upper_body_box", "vector_columns",
           "write_crops"]
