"""Content-addressed ingest (plain code, no ray): which listed files hold the same bytes, which contents the
catalogue already holds, and the one file per new content that a run reads and analyses.

A file's content id is the SHA-256 of its bytes (an ``images`` row's ``id``, a video's ``video_id``). The
rules, each an invariant that tests/test_ingest.py checks on real files:

* **Unchanged files are not read again.** A file listed before under the same uri, size and modification
  time keeps the id the ``files`` table recorded for it.
* **Only files that may share their bytes are hashed before the pipeline.** Two files of different sizes
  never hold the same bytes, so a new file is hashed here only when its size is shared by another listed
  file or by a content the catalogue holds; any other file's content is new by construction, and its id is
  computed where the file is read for analysis (one read, not two).
* **One content, one analysis.** The files holding one content are its names. The first by uri is read; the
  others are *duplicate files*: counted, and recorded as names of the content in ``files``, never analysed.
  Every listed image or video file is a name of exactly one content, and each content new to the catalogue
  is in exactly one work item.
* **Analysed once across runs.** A photo content whose ``images`` row holds every enabled analyser's results
  (or the error that stopped its decoding), or a finished video (``videos_done``; ``frames`` rows in a DB
  written before that table existed), is not analysed again. A grown folder costs only its new content; an
  unchanged one, no analysis at all. A photo stored before an analyser was enabled is analysed again, its
  row updated in place (:func:`raycurate.store.table.upsert`).
"""
from __future__ import annotations

import dataclasses
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import pyarrow as pa

from .sources import IMAGE, VIDEO, FileRef, file_content_id
from .store.schema import FILES_SCHEMA, FILES_TABLE, FRAMES_TABLE, TABLE_NAME, VIDEOS_DONE_TABLE, VIDEOS_TABLE
from .store.table import open_or_create_table, open_table, sql_str

ANY_SIZE = -1   # in the stored sizes: a stored video whose size is not known (a DB from before sizes were kept)


@dataclass
class Catalogue:
    """What the DB already holds, as ingest needs it: every recorded name, the contents stored, their sizes."""

    names: dict[str, dict[str, Any]] = field(default_factory=dict)   # uri -> its ``files`` row
    image_ids: set[str] = field(default_factory=set)                 # ``images`` rows with every analyser's
    partial_ids: set[str] = field(default_factory=set)               # ``images`` rows that lack one
    video_ids: set[str] = field(default_factory=set)                 # finished videos
    sizes: dict[str, set[int]] = field(default_factory=lambda: {IMAGE: set(), VIDEO: set()})

    @classmethod
    def read(cls, db_uri: str, analysers: Sequence[str] = ()) -> "Catalogue":
        """The catalogue at ``db_uri`` (empty when the DB or a table is absent); an ``images`` row counts as
        analysed when it holds the results of every one of ``analysers`` (the run's), or a decoding error.
        Columns are read whole and reduced in Arrow: no per-row object but the sets kept."""
        import pyarrow.compute as pc

        cat = cls()
        files = _columns(db_uri, FILES_TABLE, ["uri", "id", "media_type", "size", "mtime_ns"])
        if files is not None:
            cat.names = {r["uri"]: r for r in files.to_pylist()}
            for kind in cat.sizes:
                cat.sizes[kind].update(_unique(files.filter(pc.equal(files.column("media_type"), kind)), "size"))
        models = [f"{name}_model" for name in analysers]
        images = _columns(db_uri, TABLE_NAME, ["id", "media_type", "file_size", "error", *models])
        if images is not None:
            analysed = pc.is_valid(images.column("id"))
            for m in models:
                analysed = pc.and_(analysed, pc.is_valid(images.column(m)))
            done = pc.or_(pc.is_valid(images.column("error")), analysed)
            ids = images.column("id")
            cat.image_ids = set(ids.filter(done).to_pylist())
            cat.partial_ids = set(ids.filter(pc.invert(done)).to_pylist())
            cat.sizes[IMAGE].update(_unique(images.filter(pc.equal(images.column("media_type"), "image")),
                                            "file_size"))
        for name in (VIDEOS_DONE_TABLE, FRAMES_TABLE):   # frames: a DB from before videos_done
            done_videos = _columns(db_uri, name, ["video_id"])
            if done_videos is not None:
                cat.video_ids.update(_unique(done_videos, "video_id"))
        videos = _columns(db_uri, VIDEOS_TABLE, ["file_size"])
        if videos is not None:
            sizes = videos.column("file_size")
            cat.sizes[VIDEO].update(_unique(videos, "file_size"))
            if sizes.null_count:   # a video stored before sizes were kept: any size may be its
                cat.sizes[VIDEO].add(ANY_SIZE)
        return cat

    def stored(self, media_type: str, content_id: str) -> bool:
        return content_id in (self.image_ids if media_type == IMAGE else self.video_ids)

    def known_id(self, f: FileRef) -> str | None:
        """The recorded id of ``f`` when it is unchanged (same uri, size and modification time)."""
        r = self.names.get(f.uri)
        if r is None or r["size"] != f.size or f.mtime_ns is None or r["mtime_ns"] != f.mtime_ns:
            return None
        return r["id"]


def _columns(db_uri: str, name: str, columns: list[str]) -> pa.Table | None:
    """``columns`` of every row of table ``name`` (None when the table is absent); a column an older table
    lacks reads as nulls."""
    try:
        table = open_table(db_uri, name)
    except FileNotFoundError:
        return None
    have = [c for c in columns if c in table.schema.names]
    rows = table.count_rows() if not have else None
    data = table.search().select(have).limit(None).to_arrow() if have else pa.table({"_": pa.nulls(rows)})
    return pa.table({c: data.column(c) if c in have else pa.nulls(data.num_rows) for c in columns})


def _unique(data: pa.Table, column: str) -> list[Any]:
    """The distinct non-null values of ``column``."""
    return data.column(column).drop_null().unique().to_pylist()


@dataclass
class Ingest:
    """A run's work: one file per new content, every listed name with its id where known, and the counts."""

    images: list[FileRef] = field(default_factory=list)   # new photo contents, one file each
    videos: list[FileRef] = field(default_factory=list)   # new video contents
    names: list[FileRef] = field(default_factory=list)    # every listed image and video file
    duplicate_files: int = 0        # listed files whose bytes another listed file holds (read instead)
    stored: dict[str, int] = field(default_factory=lambda: {IMAGE: 0, VIDEO: 0})   # contents already there
    reanalysed: int = 0             # photos stored before one of the run's analysers was enabled
    known: int = 0                  # unchanged files: the id recorded in ``files``
    hashed: int = 0                 # files hashed before the pipeline (their size is shared)
    hash_errors: int = 0            # of those, files that could not be read (their read step records it)
    hashed_bytes: int = 0
    seconds: float = 0.0

    def manifest(self) -> dict[str, Any]:
        return {"duplicate_files": self.duplicate_files, "already_stored": dict(self.stored),
                "new": {IMAGE: len(self.images), VIDEO: len(self.videos)}, "analysed_again": self.reanalysed,
                "ids_known": self.known,
                "hashed_before_reading": self.hashed, "hashed_bytes": self.hashed_bytes,
                "hash_errors": self.hash_errors, "seconds": round(self.seconds, 3)}


def plan_ingest(files: Iterable[FileRef], catalogue: Catalogue, *, threads: int = 8,
                log: Callable[[str], None] | None = None) -> Ingest:
    """The work of a run over ``files`` (image and video files; others are ignored), given what ``catalogue``
    holds (module docstring)."""
    t = time.perf_counter()
    media = [f for f in files if f.media_type in (IMAGE, VIDEO)]
    out = Ingest()
    ids: dict[str, str] = {}
    for f in media:
        known = catalogue.known_id(f)
        if known is not None:
            ids[f.uri] = known
    out.known = len(ids)
    to_hash = _sharing_a_size(media, ids, catalogue)
    if to_hash:
        out.hashed_bytes = sum(f.size for f in to_hash)
        if log is not None:
            log(f"[raycurate] hashing {len(to_hash)} files ({out.hashed_bytes / 1e6:.1f} MB) whose size another "
                "file shares")
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            for f, cid in zip(to_hash, pool.map(_hash_or_none, (f.uri for f in to_hash))):
                if cid is None:
                    out.hash_errors += 1
                else:
                    ids[f.uri] = cid
        out.hashed = len(to_hash)
    groups: dict[str, list[FileRef]] = {}
    for f in sorted(media, key=lambda f: f.uri):
        cid = ids.get(f.uri)
        f = dataclasses.replace(f, content_id=cid)
        out.names.append(f)
        if cid is None:   # a content of its own (no other file has its size), or unreadable: read once
            _work(out, f).append(f)
        else:
            groups.setdefault(cid, []).append(f)
    for cid, names in groups.items():
        first = names[0]
        out.duplicate_files += len(names) - 1
        if catalogue.stored(first.media_type, cid):
            out.stored[first.media_type] += 1
        else:
            out.reanalysed += cid in catalogue.partial_ids
            _work(out, first).append(first)
    out.seconds = time.perf_counter() - t
    return out


def _work(out: Ingest, f: FileRef) -> list[FileRef]:
    return out.images if f.media_type == IMAGE else out.videos


def _hash_or_none(uri: str) -> str | None:
    try:
        return file_content_id(uri)
    except OSError:
        return None


def _sharing_a_size(media: Sequence[FileRef], ids: dict[str, str], catalogue: Catalogue) -> list[FileRef]:
    """The files without a known id whose size another listed file of their type, or a stored content of their
    type, has: only they can hold bytes that another file holds."""
    listed = Counter((f.media_type, f.size) for f in media)
    out = []
    for f in media:
        if f.uri in ids:
            continue
        stored = catalogue.sizes[f.media_type]
        if listed[(f.media_type, f.size)] > 1 or f.size in stored or ANY_SIZE in stored:
            out.append(f)
    return out


def record_names(ingest: Ingest, catalogue: Catalogue, db_uri: str, run_id: str) -> int:
    """Every listed name in the ``files`` table with its content id: ids found before the pipeline, and for the
    files hashed where they were read, the id of the row this run stored for them (a file whose row was not
    stored stays unrecorded: the next run reads it again). Only new or changed names are written (an unchanged
    folder changes nothing). The number of names recorded."""
    ids = {f.uri: f.content_id for f in ingest.names if f.content_id is not None}
    pending = {f.uri for f in ingest.names if f.content_id is None}
    if pending:
        ids.update(_stored_ids(db_uri, run_id, pending))
    rows = []
    for f in ingest.names:
        cid = ids.get(f.uri)
        row = {"uri": f.uri, "id": cid, "media_type": f.media_type, "size": f.size, "mtime_ns": f.mtime_ns}
        if cid is None or catalogue.names.get(f.uri) == row:
            continue
        rows.append({**row, "run_id": run_id})
    if rows:
        table = open_or_create_table(db_uri, FILES_TABLE, FILES_SCHEMA)
        table.merge_insert("uri").when_matched_update_all().when_not_matched_insert_all() \
            .execute(pa.Table.from_pylist(rows, schema=FILES_SCHEMA))
    return len(rows)


def _stored_ids(db_uri: str, run_id: str, uris: set[str]) -> dict[str, str]:
    """uri -> content id of the rows run ``run_id`` stored for ``uris`` (``images`` rows, ``videos`` rows)."""
    run = f"run_id = {sql_str(run_id)}"
    found: dict[str, str] = {}
    for name, column in ((TABLE_NAME, "id"), (VIDEOS_TABLE, "video_id")):
        try:
            table = open_table(db_uri, name)
        except FileNotFoundError:
            continue
        for r in table.search().where(run).select(["uri", column]).limit(None).to_list():
            if r["uri"] in uris:
                found[r["uri"]] = r[column]
    return found


def names_of(db_uri: str, ids: Iterable[str] | None = None) -> dict[str, list[str]]:
    """content id -> every name recorded for it, sorted (all contents, or those of ``ids``)."""
    wanted = set(ids) if ids is not None else None
    out: dict[str, list[str]] = {}
    files = _columns(db_uri, FILES_TABLE, ["uri", "id"])
    for r in files.to_pylist() if files is not None else []:
        if wanted is None or r["id"] in wanted:
            out.setdefault(r["id"], []).append(r["uri"])
    return {k: sorted(v) for k, v in out.items()}
