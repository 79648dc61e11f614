"""Where files come from: opening a folder or bucket (listing one: :mod:`raycurate.listing`), sniffing
types, reading (whole, by ranges, or streamed to a local file in chunks), content ids.

Every location goes through :func:`open_filesystem`, which uses ``pyarrow.fs``: local paths,
``s3://`` and ``gs://`` by the same calls, with the endpoint and credentials of
:mod:`raycurate.storage` (the config's ``storage`` section, else the environment); other fsspec
schemes (``memory://``) through fsspec.
"""
from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import pyarrow as pa
import pyarrow.fs as pafs

from . import storage
from .storage import SourceError

IMAGE, VIDEO, OTHER = "image", "video", "other"

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".bmp", ".dib", ".tif", ".tiff",
                    ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".jp2", ".j2k", ".heic", ".heif", ".avif"}
VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".flv", ".wmv", ".asf",
                    ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".3gp", ".3g2", ".ogv"}
SNIFF_BYTES = 64
SPOOL_CHUNK = 8 << 20   # bytes per read when a remote file is copied to a local one (copy_to)

# ISO base media ("ftyp") brands that hold still images rather than video.
_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}


@dataclass(frozen=True)
class FileRef:
    uri: str          # the location as the user would write it (local path or s3://...)
    path: str         # the path inside its filesystem
    size: int
    media_type: str   # image | video | other, from content (magic bytes), else extension
    mtime_ns: int | None = None   # last modification (the listing's FileInfo); None where the store has none
    content_id: str | None = None    # the sha256 of its bytes, when known before it is read (raycurate.ingest)


def sniff_media_type(head: bytes) -> str | None:
    """The media type that the first bytes of a file declare, or None when unknown."""
    if head.startswith(b"\xff\xd8\xff"):
        return IMAGE
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return IMAGE
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return IMAGE
    if head.startswith(b"BM") and len(head) >= 14:
        return IMAGE
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return IMAGE
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return IMAGE
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return VIDEO
    if head[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or head[:4] == b"\xff\x4f\xff\x51":
        return IMAGE  # JPEG 2000
    if len(head) >= 3 and head[0:1] == b"P" and head[1:2] in b"123456" and head[2:3] in b" \t\r\n":
        return IMAGE  # netpbm
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return IMAGE if brand in _IMAGE_BRANDS else VIDEO
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return VIDEO  # QuickTime without a leading ftyp
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return VIDEO  # Matroska / WebM
    if head.startswith(b"FLV"):
        return VIDEO
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return VIDEO  # ASF / WMV
    if head.startswith(b"\x00\x00\x01\xba") or head.startswith(b"\x00\x00\x01\xb3"):
        return VIDEO  # MPEG program stream / elementary video
    if head.startswith(b"OggS"):
        return VIDEO
    if len(head) >= 1 and head[0] == 0x47 and (len(head) < 189 or head[188] == 0x47):
        # MPEG transport stream sync byte; only trusted with a .ts-like extension (see classify)
        return None
    return None


def classify(name: str, head: bytes) -> str:
    """Content first; the extension only decides when the content says nothing."""
    kind = sniff_media_type(head)
    if kind is not None:
        return kind
    ext = os.path.splitext(name)[1].lower()
    if ext in IMAGE_EXTENSIONS:
        return IMAGE   # decoding will tell (a zero-byte or corrupt file becomes an error row)
    if ext in VIDEO_EXTENSIONS:
        return VIDEO
    return OTHER


def open_filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and the path inside it for a local path or a URI (``s3://``, ``gs://``: with
    the settings of :mod:`raycurate.storage`)."""
    if "://" not in uri:
        return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(uri))
    try:
        return storage.filesystem(uri)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError with its own message
        raise SourceError(storage.describe_error(uri, exc, "open")) from None


def _info(fs: pafs.FileSystem, path: str, uri: str) -> pafs.FileInfo:
    """``fs.get_file_info(path)``; a refusal (credentials, endpoint) becomes one :class:`SourceError` line."""
    try:
        return fs.get_file_info(path)
    except OSError as exc:
        raise SourceError(storage.describe_error(uri, exc)) from None


def _not_found(uri: str) -> SourceError:
    """Input not found; in a bucket, says when the bucket itself is missing."""
    if "://" in uri:
        storage.check_bucket(uri)
    return SourceError(f"input not found: {uri}")


def _to_uri(root_uri: str, root_path: str, path: str) -> str:
    if "://" not in root_uri:
        return path
    scheme = root_uri.split("://", 1)[0]
    return f"{scheme}://{path}"


def exists(uri: str) -> bool:
    """Whether ``uri`` is there; raises :class:`SourceError` when it cannot be asked (credentials, a bucket
    that does not exist, an endpoint that does not answer)."""
    fs, path = open_filesystem(uri)
    if _info(fs, path, uri).type != pafs.FileType.NotFound:
        return True
    if "://" in uri:
        storage.check_bucket(uri)
    return False


def read_bytes(uri: str, length: int | None = None) -> bytes:
    """The whole file, or its first ``length`` bytes."""
    fs, path = open_filesystem(uri)
    with fs.open_input_file(path) as f:
        return f.read(length) if length is not None else f.read()


@contextmanager
def open_input(uri: str) -> Iterator[pa.NativeFile]:
    """``uri`` as a seekable file object: each read fetches only the bytes asked for (a range request in a
    bucket), so a reader that needs a file's header, or its end, does not download the rest."""
    fs, path = open_filesystem(uri)
    with fs.open_input_file(path) as f:
        yield f


def copy_to(uri: str, out: BinaryIO, chunk: int = SPOOL_CHUNK) -> int:
    """Stream ``uri`` into the binary file ``out``, ``chunk`` bytes at a time, so memory holds about one
    chunk whatever the file's size; the number of bytes copied."""
    fs, path = open_filesystem(uri)
    copied = 0
    with fs.open_input_stream(path) as f:
        while True:
            block = f.read(chunk)
            if not block:
                return copied
            out.write(block)
            copied += len(block)
            del block   # before the next read, so two chunks are never held at once


def content_id(data: bytes) -> str:
    """A stable id for these bytes: the same content under two names gets one id."""
    return hashlib.sha256(data).hexdigest()


def file_content_id(uri: str, chunk: int = 1 << 20) -> str:
    """:func:`content_id` of the file at ``uri`` (a local path or a bucket URI), read ``chunk`` bytes at a time:
    memory holds one chunk whatever the file's size."""
    h = hashlib.sha256()
    fs, path = open_filesystem(uri)
    with fs.open_input_stream(path) as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def list_media(uri: str, *, max_files: int | None = None, threads: int = 16) -> list[FileRef]:
    """List every file under ``uri`` and classify it by its first bytes: the files of
    :func:`raycurate.listing.list_input` (its rules: loops, links, FIFOs, exclusions), without the skips."""
    from .listing import list_input   # listing builds on this module

    return list_input(uri, max_files=max_files, threads=threads).files
