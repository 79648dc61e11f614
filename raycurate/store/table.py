"""Opening and creating LanceDB tables."""
from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

import pyarrow as pa

from .schema import TABLE_NAME, images_schema_of


def _connect(db_uri: str, create: bool = True) -> Any:
    """LanceDB at ``db_uri``: a local folder (made when absent, unless not ``create``: then
    :class:`FileNotFoundError`), or a bucket with the storage options of :mod:`raycurate.storage` (the endpoint
    and credentials this process was configured with)."""
    import lancedb  # imported late: lancedb's runtime must not be forked by ray.init

    from .. import storage

    if "://" not in db_uri:
        db_uri = os.path.abspath(db_uri)
        if not create and not os.path.isdir(db_uri):
            raise FileNotFoundError(f"no LanceDB at {db_uri}")
        os.makedirs(db_uri, exist_ok=True)
        return lancedb.connect(db_uri)
    options = storage.lance_storage_options(db_uri)
    return lancedb.connect(storage.lance_uri(db_uri), storage_options=options or None)


def _table_names(db: Any, db_uri: str = "") -> list[str]:
    try:
        listed = db.list_tables()
    except Exception as exc:
        if "://" not in db_uri:
            raise
        from ..storage import SourceError, describe_error

        # a bucket that refuses us (credentials, no such bucket, no endpoint): one line, not lance's dump
        raise SourceError(describe_error(db_uri, exc)) from None
    return list(getattr(listed, "tables", listed))


def open_or_create_images_table(db_uri: str, schema: pa.Schema) -> Any:
    """The ``images`` table, created empty with ``schema`` when absent (every analyser's columns:
    :func:`raycurate.schemas.images_schema`)."""
    return open_or_create_table(db_uri, TABLE_NAME, schema)


def open_or_create_table(db_uri: str, name: str, schema: pa.Schema) -> Any:
    """Table ``name``, created empty with ``schema`` when absent; columns ``schema`` adds are added."""
    db = _connect(db_uri)
    if name in _table_names(db, db_uri):
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
    """Table ``name`` of the DB at ``db_uri``; :class:`FileNotFoundError` when there is none (nothing is made)."""
    db = _connect(db_uri, create=False)
    if name not in _table_names(db, db_uri):
        raise FileNotFoundError(f"no '{name}' table in LanceDB at {db_uri}")
    return db.open_table(name)


def open_images_table(db_uri: str) -> Any:
    return open_table(db_uri, TABLE_NAME)


ROW_KEY = ("id", "uri", "run_id")   # what names one row of ``images`` (the same bytes may come from two URIs)


def write_columns(table: Any, rows: list[dict[str, Any]], columns: tuple[str, ...], key: tuple[str, ...] = ROW_KEY,
                  schema: pa.Schema | None = None) -> None:
    """Set ``columns`` on the rows ``key`` names (one ``merge_insert``); a column an older table lacks is added,
    typed as in ``schema`` (default: the store's own columns of ``images``: dedup marks, manual labels, people;
    an analyser's column needs the schema that holds it, :func:`raycurate.schemas.images_schema`)."""
    if not rows:
        return
    missing = [c for c in columns if c not in table.schema.names]
    if missing:
        full = schema or images_schema_of(())
        table.add_columns([full.field(c).with_nullable(True) for c in missing])
    schema = pa.schema([table.schema.field(n) for n in (*key, *columns)])
    table.merge_insert(list(key)).when_matched_update_all().execute(pa.Table.from_pylist(rows, schema=schema))


def upsert(table: Any, data: pa.Table, key: str = "id") -> None:
    """Write the rows of ``data`` keyed by ``key`` (one ``merge_insert``): a key the table does not hold is
    appended, a key it holds has the columns of ``data`` updated in place, and its other columns (a manual
    label, the people and dedup marks) kept. One row per key: a task retried after its worker died writes
    nothing twice, and a content analysed again updates its row. Of rows repeating a key within ``data``, the
    first is written."""
    import pyarrow.compute as pc

    index = pa.array(range(data.num_rows), pa.int64())
    first = pa.table({"k": data.column(key), "i": index}).group_by("k").aggregate([("i", "min")]).column("i_min")
    if len(first) < data.num_rows:
        data = data.take(first.take(pc.sort_indices(first)))   # in their order in ``data``
    # a null vector (no face, no CLIP) is a null, as ``add`` stores it: merge_insert would call it "bad"
    table.merge_insert(key).when_matched_update_all().when_not_matched_insert_all().execute(data,
                                                                                             on_bad_vectors="null")


def content_ids(data: pa.Table, columns: Sequence[str]) -> pa.Array:
    """The content id of each row of ``data``: its one ``columns`` value (``id``: the sha256 of the bytes), or
    the values joined with ``:`` (a video frame: ``video_id:frame_index``)."""
    import pyarrow.compute as pc

    if len(columns) == 1:
        return data.column(columns[0]).combine_chunks()
    parts = [pc.cast(data.column(c), pa.string()) for c in columns]
    return pc.binary_join_element_wise(*parts, ":").combine_chunks()


def sql_str(value: str) -> str:
    """A SQL string literal for LanceDB filters (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def sql_in(column: str, values: Iterable[str]) -> str:
    """SQL: ``column`` is one of the strings ``values`` (none: false)."""
    listed = ", ".join(sql_str(v) for v in values)
    return f"{column} IN ({listed})" if listed else "false"


def stored_rows(table: Any, run_id: str, where: str | None = None) -> int:
    """The rows run ``run_id`` stored in ``table`` (those matching ``where`` too, if given), counted on its latest
    version: the workers and sinks wrote through handles of their own, after this one was opened."""
    table.checkout_latest()
    return int(table.count_rows(f"run_id = {sql_str(run_id)}" + (f" AND ({where})" if where else "")))


def resolve_db(db_uri: str) -> str:
    """The LanceDB folder: ``db_uri`` itself, or ``db_uri/db`` when given a run's OUT folder (or prefix)."""
    if "://" in db_uri:
        return _resolve_remote_db(db_uri.rstrip("/"))
    path = os.path.abspath(os.path.expanduser(db_uri))
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no LanceDB at {db_uri}: not a folder")
    nested = os.path.join(path, "db")
    if not os.path.isdir(os.path.join(path, "images.lance")) and os.path.isdir(os.path.join(nested, "images.lance")):
        return nested
    return path


def _resolve_remote_db(db_uri: str) -> str:
    """``db_uri`` or ``db_uri/db`` in a bucket: the one holding ``images.lance``; ``db_uri`` when neither
    does (opening it then says what is missing); :class:`~raycurate.sources.SourceError` when the bucket
    cannot be read."""
    import pyarrow.fs as pafs

    from .. import storage

    fs, path = storage.filesystem(db_uri)
    try:
        here = fs.get_file_info(f"{path}/images.lance").type != pafs.FileType.NotFound
        nested = not here and fs.get_file_info(f"{path}/db/images.lance").type != pafs.FileType.NotFound
    except OSError as exc:
        raise storage.SourceError(storage.describe_error(db_uri, exc)) from None
    return f"{db_uri}/db" if nested else db_uri
