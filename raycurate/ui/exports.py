"""The Export tab: the rows the Results filters keep, exported with the chosen formats into the UI's
work folder and zipped for download. Uses :func:`raycurate.export.export_from_db` (no model runs)."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

from ..settings import ExportSettings
from .params import settings_for

# (key, label): what the user can tick; metadata.jsonl is always written
FORMATS: list[tuple[str, str]] = [
    ("parquet", "metadata.parquet: the rows as one table (metadata.jsonl is always written)"),
    ("images", "images/: the original files, byte for byte"),
    ("kohya", "train/<repeats>_<name>/: kohya-ss / OneTrainer folders, each image with its caption .txt"),
    ("face_crops", "face_crops/: one square crop per detected face"),
    ("body_crops", "body_crops/: one square upper-body crop per image"),
    ("identity", "by_identity/person_<n>/: images grouped by face embedding (needs InsightFace)"),
]
DEFAULT_FORMATS = ["parquet", "images", "kohya"]


@dataclass(frozen=True)
class ExportDone:
    folder: str
    zip_path: str
    kept: int
    exported: int
    summary: str


def export_config(formats: Iterable[str], *, name: str = "person", trigger: str | None = None,
                  repeats: int = 10, include_duplicates: bool = False, caption_style: str = "tags"
                  ) -> ExportSettings:
    """The typed ``export`` settings of the tab's choices (checked: a bad folder name or caption style raises
    :class:`~raycurate.config.ConfigError`)."""
    chosen = set(formats)
    unknown = chosen - {k for k, _ in FORMATS}
    if unknown:
        raise ValueError(f"unknown export formats: {', '.join(sorted(unknown))}")
    overrides = [("export.parquet", "parquet" in chosen), ("export.copy_images", "images" in chosen),
                 ("export.kohya.enabled", "kohya" in chosen), ("export.kohya.name", name.strip() or "person"),
                 ("export.kohya.trigger", (trigger or "").strip() or None), ("export.kohya.repeats", int(repeats)),
                 ("export.kohya.caption_style", caption_style),
                 ("export.face_crops.enabled", "face_crops" in chosen),
                 ("export.body_crops.enabled", "body_crops" in chosen),
                 ("export.group_by_identity.enabled", "identity" in chosen),
                 ("export.include_duplicates", bool(include_duplicates))]
    return settings_for(overrides=overrides).export


def export_zip(db_uri: str, exports_dir: str, where: str, export: ExportSettings) -> ExportDone:
    """Export the rows matching ``where`` into ``exports_dir/export-<UTC time>/`` and zip that folder."""
    from ..export import export_from_db

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    folder = os.path.join(exports_dir, f"export-{stamp}")
    result = export_from_db(db_uri, folder, where=where, export=export)
    zip_path = shutil.make_archive(folder, "zip", root_dir=folder)
    parts = [f"{result.exported} of {result.kept} rows exported"]
    for label, n in (("captions", result.captions), ("face crops", result.face_crops),
                     ("body crops", result.body_crops), ("identities", result.identities),
                     ("errors", result.copy_errors)):
        if n:
            parts.append(f"{n} {label}")
    return ExportDone(folder, zip_path, result.kept, result.exported, ", ".join(parts))


__all__ = ["DEFAULT_FORMATS", "ExportDone", "FORMATS", "export_config", "export_zip"]
