"""Opening and creating LanceDB tables."""
from __future__ import annotations

import os
from typing import Any

import pyarrow as pa

from .schema import TABLE_NAME, images_schema


def _connect(db_uri: str) -> Any:
    import lancedb  # imported late: lancedb's runtime must not be forked by ray.init

    if "://" not in db_uri:
        db_uri = os.path.abspath(db_uri)
        os.makedirs(db_uri, exist_ok=True)
    return lancedb.connect(db_uri)


def _table_names(db: Any) -> list[str]:
    listed = db.list_tables()
    return list(getattr(listed, "tables", listed))


def open_or_create_images_table(db_uri: str, schema: pa.Schema | None = None) -> Any:
    """The ``images`` table, created empty with ``schema`` (default: every analyser) when absent."""
    return open_or_create_table(db_uri, TABLE_NAME, schema or images_schema())


def open_or_create_table(db_uri: str, name: str, schema: pa.Schema) -> Any:
    """Table ``name``, created empty with ``schema`` when absent; columns ``schema`` adds are added."""
    db = _connect(db_uri)
    if name in _table_names(db):
        table = db.open_table(name)
        missing = [f for f in schema if f.name not in table.schema.names]
        if missing:
            table.add_columns([f.with_nullable(True) for f in missing])
        return table
    try:
        return db.create_table(name, schema=schema)
    except (ValueError, OSError):
        # Another process created it between our check and create.
        return db.open_table(name)


def open_table(db_uri: str, name: str) -> Any:
    db = _connect(db_uri)
    if name not in _table_names(db):
        raise FileNotFoundError(f"no '{name}' table in LanceDB at {db_uri}")
    return db.open_table(name)


def open_images_table(db_uri: str) -> Any:
    return open_table(db_uri, TABLE_NAME)


def sql_str(value: str) -> str:
    """A SQL string literal for LanceDB filters (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def resolve_db(db_uri: str) -> str:
    """The LanceDB folder: ``db_uri`` itself, or ``db_uri/db`` when given a run's OUT folder."""
    if "://" in db_uri:
        return db_uri
    path = os.path.abspath(os.path.expanduser(db_uri))
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no LanceDB at {db_uri}: not a folder")
    nested = os.path.join(path, "db")
    if not os.path.isdir(os.path.join(path, "images.lance")) and os.path.isdir(os.path.join(nested, "images.lance")):
        return nested
    return path
