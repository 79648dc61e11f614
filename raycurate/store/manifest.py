"""Reading a Lance table's version files (``T.lance/_versions/*.manifest``) without reading its data.

pylance is not a dependency (LanceDB's Python API does not list a version's files), so this reads the
few protobuf fields it needs from the manifest itself (``protos/table.proto`` of the Lance format):

- the file ends with ``i64 position | u16 major | u16 minor | "LANC"``; at ``position``, a ``u32`` length
  and the ``Manifest`` message; ``Manifest.index_section``, when present, is the position of the
  ``IndexSection`` message (``u32`` length first too);
- ``Manifest.fragments`` (2): ``DataFragment`` with ``files`` (2, ``DataFile.path`` relative to ``data/``,
  ``DataFile.file_size_bytes``: 0 when unknown), ``deletion_file`` (3: ``_deletions/{fragment id}-
  {read_version}-{id}.arrow|bin``), ``physical_rows`` (4), external row-id / version sequences
  (6, 8, 10: ``ExternalFile.path`` relative to the table);
- ``IndexSection.indices``: ``IndexMetadata.uuid`` (the folder ``_indices/{uuid}``) and ``files``
  (``IndexFile.path`` inside it and its size; empty for older indices: then only the folder is known).

Files kept outside the table folder (``base_id``: shallow clones, imported files) are not listed.

Version file names: ``{version}.manifest`` (V1) or ``{2**64 - 1 - version:020}.manifest`` (V2).
"""
from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field

MAGIC = b"LANC"
FOOTER = 16   # i64 position, u16 major, u16 minor, magic
_U64_MAX = 2**64 - 1


class ManifestError(ValueError):
    """A version file that does not parse (truncated, garbled, not a Lance manifest)."""


@dataclass(frozen=True)
class VersionFiles:
    """What one version of a table references: ``files`` maps each path (relative to the table folder) to
    its expected size in bytes (0: unknown); ``folders``: index folders whose file list is not recorded."""

    version: int
    rows: int
    files: dict[str, int] = field(default_factory=dict)
    folders: tuple[str, ...] = ()


def version_of(name: str) -> int | None:
    """The version a file name of ``_versions/`` holds, or None for anything else (hints, temporary files)."""
    stem, dot, ext = name.partition(".")
    if ext != "manifest" or not stem.isdigit():
        return None
    number = int(stem)
    return _U64_MAX - number if len(stem) == 20 and number > _U64_MAX // 2 else number


def parse_manifest(data: bytes) -> VersionFiles:
    """The files and live rows of the version ``data`` (a ``.manifest`` file's bytes) describes;
    :class:`ManifestError` when it does not parse."""
    try:
        return _parse(data)
    except (ValueError, struct.error, IndexError, UnicodeDecodeError) as exc:
        raise ManifestError(str(exc) or type(exc).__name__) from None


def _parse(data: bytes) -> VersionFiles:
    if len(data) < FOOTER + 4 or data[-4:] != MAGIC:
        raise ManifestError(f"no Lance footer in its {len(data)} bytes")
    (position,) = struct.unpack("<q", data[-FOOTER:-FOOTER + 8])
    manifest = _fields(_section(data, position))
    version = rows = 0
    files: dict[str, int] = {}
    folders: list[str] = []
    index_at = None
    for number, value in manifest:
        if number == 3:
            version = value
        elif number == 6:
            index_at = value
        elif number == 2:
            rows += _fragment(_fields(value), files)
    if index_at is not None:
        for number, value in _fields(_section(data, index_at)):
            if number == 1:
                _index(_fields(value), files, folders)
    return VersionFiles(version=version, rows=rows, files=files, folders=tuple(folders))


def _section(data: bytes, position: int) -> bytes:
    end = len(data) - FOOTER
    if not 0 <= position <= end - 4:
        raise ManifestError(f"section position {position} outside the file ({len(data)} bytes)")
    (length,) = struct.unpack("<I", data[position:position + 4])
    if position + 4 + length > end:
        raise ManifestError(f"section at {position} runs past the end of the file")
    return data[position + 4:position + 4 + length]


def _fragment(fragment: list[tuple[int, object]], files: dict[str, int]) -> int:
    """Adds the fragment's files to ``files``; its live rows (physical minus deleted)."""
    fid = physical = deleted = 0
    deletion = None
    for number, value in fragment:
        if number == 1:
            fid = value
        elif number == 4:
            physical = value
        elif number == 2:
            _data_file(_fields(value), files)
        elif number == 3:
            deletion = dict(_fields(value))
            deleted = deletion.get(4, 0)
        elif number in (6, 8, 10):   # row ids / versions kept in a file of their own
            path = dict(_fields(value)).get(1, b"")
            if path:
                files[_text(path)] = 0
        elif number == 11:   # data overlay files
            overlay = dict(_fields(value)).get(1)
            if overlay:
                _data_file(_fields(overlay), files)
    if deletion is not None and 7 not in deletion:   # base_id: a file outside the table, not checked
        ext = "bin" if deletion.get(1, 0) == 1 else "arrow"
        files[f"_deletions/{fid}-{deletion.get(2, 0)}-{deletion.get(3, 0)}.{ext}"] = 0
    return int(physical) - int(deleted)


def _data_file(fields: list[tuple[int, object]], files: dict[str, int]) -> None:
    values = dict(fields)
    path = _text(values.get(1, b""))
    if not path:
        raise ManifestError("a data file without a path")
    if 7 not in values:   # base_id: a file of another dataset (shallow clone, import), not checked
        files[f"data/{path}"] = int(values.get(6, 0))


def _index(index: list[tuple[int, object]], files: dict[str, int], folders: list[str]) -> None:
    if any(number == 9 for number, _ in index):   # base_id: an index kept outside the table, not checked
        return
    raw = dict(_fields(dict(index).get(1, b""))).get(1, b"")
    if len(raw) != 16:
        raise ManifestError("an index without a 16-byte uuid")
    folder = f"_indices/{uuid.UUID(bytes=bytes(raw))}"
    listed = [dict(_fields(value)) for number, value in index if number == 10]
    if not listed:
        folders.append(folder)
    for entry in listed:
        files[f"{folder}/{_text(entry.get(1, b''))}"] = int(entry.get(2, 0))


def _text(value: object) -> str:
    if not isinstance(value, (bytes, memoryview)):
        raise ManifestError("a string field holds a number")
    return bytes(value).decode("utf-8")


def _fields(buf: object) -> list[tuple[int, object]]:
    """The (field number, value) pairs of one protobuf message: ints for varints, bytes for the rest."""
    if not isinstance(buf, (bytes, memoryview)):
        raise ManifestError("a message field holds a number")
    buf = memoryview(buf)
    out: list[tuple[int, object]] = []
    i, n = 0, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ManifestError("field number 0")
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            length, i = _varint(buf, i)
            if i + length > n:
                raise ManifestError("a field runs past its message")
            value, i = bytes(buf[i:i + length]), i + length
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if i + width > n:
                raise ManifestError("a field runs past its message")
            value, i = bytes(buf[i:i + width]), i + width
        else:
            raise ManifestError(f"bad protobuf wire type {wire}")
        out.append((number, value))
    return out


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ManifestError("a bad varint")
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, i
