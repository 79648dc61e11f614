"""The export's writer: ``metadata.jsonl`` / ``metadata.parquet``, the originals, the kohya folder (image and
caption) and the identity folders, and the crops (:mod:`.crops`), one thread-pool job per exported image."""
from __future__ import annotations

import contextlib
import json
import os
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pyarrow as pa

from ..sources import read_bytes
from ..ingest import names_of
from ..storage import OutputDir
from .crops import write_crops
from .identity import identities, identity_names
from .names import safe_name
from .options import CropOptions, IdentityOptions, KohyaOptions
from .records import canonical_uris, json_safe, metadata_schema
from .sync import TrackedOutput, finish, previous_files


@dataclass
class ExportResult:
    kept: int = 0
    exported: int = 0                # rows whose requested files were all written
    exact_duplicates: int = 0
    copy_errors: int = 0             # rows with an export_error
    captions: int = 0
    face_crops: int = 0
    body_crops: int = 0
    identities: int = 0              # person_<n> folders
    unchanged: int = 0               # files that already held their bytes (not written again)
    removed: int = 0                 # files of the previous export into OUT that this one no longer has


@dataclass
class _Written:
    file: str | None = None
    face_crops: list[str] = field(default_factory=list)
    body_crops: list[str] = field(default_factory=list)
    crops: list[dict[str, Any]] = field(default_factory=list)   # each crop's file, kind, box, size
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _RowWriter:
    """Writes one exported image's files; run in the export's thread pool."""

    out: OutputDir
    copy_images: bool
    kohya: KohyaOptions | None
    face_crops: CropOptions | None
    body_crops: CropOptions | None
    identity: bool

    @property
    def needed(self) -> bool:
        return bool(self.copy_images or self.kohya or self.face_crops or self.body_crops or self.identity)

    def write(self, row: Mapping[str, Any], name: str, captions: Mapping[str | None, str],
              identity: str | None) -> _Written:
        """The image's files; ``captions``: the caption per kohya folder (per --person target, or None). The
        original is read only when a copy of it is missing (a copy is named by the content id, so one of the
        same size is it) or crops are cut from it."""
        out = _Written()
        copy = f"images/{name}" if self.copy_images else None
        folders = [self.kohya.folder_for(person) for person in captions] if self.kohya is not None else []
        copies = ([copy] if copy else []) + [f"{folder}/{name}" for folder in folders] \
            + ([f"by_identity/{identity}/{name}"] if identity is not None else [])
        missing = [rel for rel in copies if not self.out.holds(rel, row.get("file_size"))]
        data = b""
        if missing or self.face_crops or self.body_crops:
            try:
                data = read_bytes(row["uri"])
            except OSError as exc:
                out.errors.append(f"export read failed: {exc}")
                return out
        src = None
        if copy is not None:
            try:
                if copy in missing:
                    self.out.write_bytes(copy, data)
                src = out.file = copy
            except OSError as exc:
                out.errors.append(f"export copy failed: {exc}")
        stem = os.path.splitext(name)[0]
        try:
            for folder, caption in zip(folders, captions.values()):
                self.out.makedirs(folder)
                if f"{folder}/{name}" in missing:
                    self.out.place(src, data, f"{folder}/{name}")
                self.out.write_bytes(f"{folder}/{stem}.txt", caption.encode("utf-8"))
            if identity is not None and f"by_identity/{identity}/{name}" in missing:
                self.out.place(src, data, f"by_identity/{identity}/{name}")
        except OSError as exc:
            out.errors.append(f"export link failed: {exc}")
        if self.face_crops or self.body_crops:
            faces, bodies, errors, crops = write_crops(self.out, row, data, stem, self.face_crops, self.body_crops)
            out.face_crops += faces
            out.body_crops += bodies
            out.crops += crops
            out.errors += errors
        return out


@dataclass
class _Records:
    """Turns batches of kept rows into metadata records, writing the files of each content id's exported copy."""

    writer: _RowWriter
    canonical: Mapping[str, str]     # content id -> the uri exported
    who: Mapping[str, str]           # content id -> identity folder
    names: Mapping[str, list[str]]   # content id -> every name it was listed under
    result: ExportResult
    exported_ids: set[str] = field(default_factory=set)
    captions: dict[str, dict[str | None, str]] = field(default_factory=dict)   # row id -> folder -> caption

    def batch(self, pool: Executor, batch: pa.RecordBatch, names: list[str]) -> list[dict[str, Any]]:
        rows = [{n: r.get(n) for n in names} for r in batch.to_pylist()]
        jobs = {}
        for i, row in enumerate(rows):
            if self._exported(row) and self.writer.needed:
                name = safe_name(row["uri"], row["id"], row.get("format"))
                jobs[i] = pool.submit(self.writer.write, row, name, self.captions.pop(row["id"], {}),
                                      row["identity"])
        for i, job in jobs.items():
            self._written(rows[i], job.result())
        return rows

    def _exported(self, row: dict[str, Any]) -> bool:
        """False for another copy of bytes already exported (marked an exact duplicate), else caption it."""
        result = self.result
        result.kept += 1
        row["identity"] = self.who.get(row["id"])
        row["names"] = self.names.get(row["id"]) or [row["uri"]]
        if row["uri"] != self.canonical[row["id"]] or row["id"] in self.exported_ids:
            if row["duplicate_of"] is None:
                row.update(duplicate_of=row["id"], duplicate_group=row["id"], duplicate_column="id",
                           duplicate_distance=0.0)
            result.exact_duplicates += 1
            return False
        self.exported_ids.add(row["id"])
        kohya = self.writer.kohya
        if kohya is not None:   # one caption per target the image shows, with the target's name as trigger
            captions = {p: kohya.caption(row, p) for p in (row.get("persons") or [None])}
            self.captions[row["id"]] = captions
            row["caption"] = next(iter(captions.values()))
            result.captions += len(captions)
        return True

    def _written(self, row: dict[str, Any], done: _Written) -> None:
        result = self.result
        row["file"] = done.file
        row["face_crops"] = done.face_crops if self.writer.face_crops is not None else None
        row["body_crops"] = done.body_crops if self.writer.body_crops is not None else None
        row["crops"] = done.crops or None
        result.face_crops += len(done.face_crops)
        result.body_crops += len(done.body_crops)
        if done.errors:
            row["export_error"] = "; ".join(done.errors)
            result.copy_errors += 1
        else:
            result.exported += 1


class _PersonFiles(contextlib.ExitStack):
    """``people/<name>.jsonl``: the metadata records of each --person target's images, opened on first use."""

    def __init__(self, out: OutputDir) -> None:
        super().__init__()
        self.out = out
        self.files: dict[str, Any] = {}

    def write(self, persons: Sequence[str] | None, line: str) -> None:
        for name in persons or ():
            if name not in self.files:
                self.out.makedirs("people")
                self.files[name] = self.enter_context(self.out.open_text(f"people/{name}.jsonl"))
            self.files[name].write(line)


def _make_folders(out: OutputDir, copy_images: bool, face_crops: bool, body_crops: bool) -> None:
    out.makedirs()
    # the kohya folders are made as images land in them (one per --person target)
    for sub, on in (("images", copy_images), ("face_crops", face_crops), ("body_crops", body_crops)):
        if on:
            out.makedirs(sub)


def export_kept(table: Any, where: str, out_dir: str, *, copy_images: bool, threads: int,
                progress: Any = None, parquet: bool = True, include_duplicates: bool = False,
                kohya: KohyaOptions | None = None, face_crops: CropOptions | None = None,
                body_crops: CropOptions | None = None, identity: IdentityOptions | None = None,
                db_uri: str | None = None) -> ExportResult:
    """Write ``metadata.jsonl`` (and ``metadata.parquet``, the originals, captions, crops, identity folders)
    for rows matching ``where`` into ``out_dir`` (a folder, or a prefix in a bucket).

    Rows that dedup marked ``duplicate_of`` are left out unless ``include_duplicates``. The same
    bytes under several names (one content id) are exported once, from the smallest uri; the
    other rows are listed with ``file`` null and ``duplicate_of`` the id (``duplicate_column`` id).
    """
    names = table.schema.names
    if not include_duplicates and "duplicate_of" in names:
        where = f"({where}) AND duplicate_of IS NULL"
    if kohya is not None:
        kohya.captions.check_columns(names)
    out = TrackedOutput(out_dir)
    previous = previous_files(out)
    _make_folders(out, copy_images, face_crops is not None, body_crops is not None)
    schema = metadata_schema(table.schema)
    columns = [f.name for f in table.schema if f.name in set(schema.names)]
    canonical = canonical_uris(table, where)
    who = identities(table, where, identity_names(db_uri)) if identity is not None else {}
    for person in set(who.values()):
        out.makedirs(f"by_identity/{person}")
    records = _Records(writer=_RowWriter(out, copy_images, kohya, face_crops, body_crops, identity is not None),
                       canonical=canonical, who=who, names=names_of(db_uri) if db_uri else {},
                       result=ExportResult(identities=len(set(who.values()) - {"unknown"})))
    pq_writer = None
    if parquet:
        import pyarrow.parquet as pq

        where_pq, fs = out.sink("metadata.parquet")
        pq_writer = pq.ParquetWriter(where_pq, schema, filesystem=fs)
    try:
        with out.open_text("metadata.jsonl") as meta, ThreadPoolExecutor(max_workers=max(1, threads)) as pool, \
                _PersonFiles(out) as per_person:
            reader = table.search().where(where).select(columns).limit(None).to_batches(batch_size=256)
            for batch in reader:
                rows = records.batch(pool, batch, schema.names)
                if progress is not None:
                    progress.update(len(rows))
                for row in rows:
                    line = json.dumps(json_safe(row), ensure_ascii=False) + "\n"
                    meta.write(line)
                    per_person.write(row.get("persons"), line)
                if pq_writer is not None and rows:
                    pq_writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    finally:
        if pq_writer is not None:
            pq_writer.close()
    records.result.removed = finish(out, previous)
    records.result.unchanged = out.unchanged
    return records.result
