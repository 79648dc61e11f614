"""Re-export from an existing ``images`` table: no model is loaded."""
from __future__ import annotations

import os

from ..settings import ExportSettings, Settings
from .options import export_options
from .writer import ExportResult, export_kept


def export_from_db(db_uri: str, out_dir: str, *, where: str | None, export: ExportSettings) -> ExportResult:
    """Re-export rows of an existing ``images`` table: no model is loaded.

    Keeps ``error IS NULL`` rows (and, unless ``export.include_duplicates``, ``duplicate_of IS NULL``)
    AND-ed with ``where``; every other choice comes from the ``export`` settings.
    """
    from ..store.table import open_images_table

    options = export_options(export)
    table = open_images_table(db_uri)
    keep = "error IS NULL" + (f" AND ({where})" if where and where.strip() else "")
    return export_kept(table, keep, out_dir, copy_images=export.copy_images, threads=export.copy_threads,
                       db_uri=db_uri, **options)


def export_filtered(db_uri: str, out_dir: str, *, settings: Settings, where: str | None = None
                    ) -> tuple[ExportResult, str]:
    """Re-export with the ``filter`` settings (its gates, for the analysers whose columns the table
    holds) AND ``where``; returns the result and the SQL that chose the rows. No model is loaded."""
    from ..analyzers import ANALYZERS
    from ..gates import MANUAL_LABEL, build_gates, kept_predicate, with_manual_labels
    from ..store.table import open_images_table

    if "://" not in db_uri and not os.path.isdir(db_uri):
        raise FileNotFoundError(f"no LanceDB directory at {db_uri}")
    table = open_images_table(db_uri)
    ran = [name for name in ANALYZERS if table.count_rows(f"{name}_model IS NOT NULL") > 0]
    keep = kept_predicate(build_gates(settings.filter, ran), ran)
    if MANUAL_LABEL in table.schema.names:   # the web UI's manual keep / reject override the gates
        keep = with_manual_labels(keep)
    if where and where.strip():
        keep += f" AND ({where})"
    return export_from_db(db_uri, out_dir, where=keep, export=settings.export), keep
