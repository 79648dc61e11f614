"""Buckets: ``s3://`` and ``gs://`` locations for the input, the LanceDB and the export.

One place turns the configuration's ``storage:`` section plus the environment into

* a ``pyarrow.fs`` filesystem for a URI (:func:`filesystem`): listing and reading the input,
  writing the export, the manifest and the resume state (a scheme that pyarrow does not know, such as
  ``memory://``, through fsspec when it has one);
* LanceDB ``storage_options`` (:func:`lance_storage_options`): the table in a bucket.

The settings themselves (the config section, filled from the environment; :func:`configure`,
:func:`resolve`, :func:`resolved`, :func:`redact`) live in :mod:`raycurate.storage_settings`; their
names are importable from here too. This module builds the filesystems and options from them, and
writes output folders (:class:`OutputDir`).
"""
from __future__ import annotations

import io
import os
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Mapping
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from .storage_settings import (DEFAULTS, REDACTED, configure, configured, redact, redact_argv, resolve, resolved,
                               with_scheme)

S3_SCHEMES = ("s3",)
GCS_SCHEMES = ("gs", "gcs")


class SourceError(OSError):
    """The input location cannot be listed or read (or an output location cannot be written)."""


_lock = threading.Lock()
_filesystems: dict[tuple, pafs.FileSystem] = {}
_regions: dict[str, str | None] = {}


# -- URIs -----------------------------------------------------------------------------------------

def is_remote(uri: str) -> bool:
    return "://" in str(uri)


def split_uri(uri: str) -> tuple[str, str]:
    """("s3", "bucket/key") for ``s3://bucket/key``; ("", path) for a local path."""
    if not is_remote(uri):
        return "", uri
    scheme, rest = uri.split("://", 1)
    return scheme.lower(), rest


def bucket_of(uri: str) -> str:
    return split_uri(uri)[1].split("/", 1)[0]


def join(base: str, *parts: str) -> str:
    """``base/part/...``: with ``/`` for a URI, ``os.path.join`` for a local path."""
    if is_remote(base):
        out = base.rstrip("/")
        for p in parts:
            out = f"{out}/{p.strip('/')}" if p else out
        return out
    return os.path.join(base, *parts)


# -- pyarrow filesystems --------------------------------------------------------------------------

def s3_filesystem_kwargs(s3: Mapping[str, Any]) -> dict[str, Any]:
    """``pyarrow.fs.S3FileSystem`` arguments from a resolved ``storage.s3`` section."""
    kwargs: dict[str, Any] = {}
    if s3.get("endpoint_url"):
        parts = urlsplit(with_scheme(s3["endpoint_url"], s3.get("allow_http")))
        kwargs["endpoint_override"] = parts.netloc + parts.path.rstrip("/")
        kwargs["scheme"] = parts.scheme
    if s3.get("region"):
        kwargs["region"] = s3["region"]
    if s3.get("anonymous"):
        kwargs["anonymous"] = True
    elif s3.get("access_key_id") or s3.get("secret_access_key"):
        kwargs["access_key"] = s3.get("access_key_id") or ""
        kwargs["secret_key"] = s3.get("secret_access_key") or ""
        if s3.get("session_token"):
            kwargs["session_token"] = s3["session_token"]
    return kwargs


def gcs_filesystem_kwargs(gcs: Mapping[str, Any]) -> dict[str, Any]:
    """``pyarrow.fs.GcsFileSystem`` arguments from a resolved ``storage.gcs`` section.

    pyarrow takes no credentials file: :func:`filesystem` points ``GOOGLE_APPLICATION_CREDENTIALS``
    at ``credentials_file`` in this process before it builds the filesystem."""
    kwargs: dict[str, Any] = {}
    if gcs.get("endpoint_url"):
        parts = urlsplit(with_scheme(gcs["endpoint_url"], True))
        kwargs["endpoint_override"] = parts.netloc + parts.path.rstrip("/")
        kwargs["scheme"] = parts.scheme
    if gcs.get("anonymous"):
        kwargs["anonymous"] = True
    if gcs.get("project"):
        kwargs["project_id"] = gcs["project"]
    return kwargs


def _s3_region(bucket: str, s3: Mapping[str, Any]) -> str | None:
    """The bucket's region on AWS when none is configured (as ``FileSystem.from_uri`` does); None when it
    cannot be found (then the SDK's default applies)."""
    if s3.get("region") or s3.get("endpoint_url") or not bucket:
        return s3.get("region")
    with _lock:
        if bucket in _regions:
            return _regions[bucket]
    try:
        region = pafs.resolve_s3_region(bucket)
    except Exception:   # no network, no such bucket: the request itself will say what is wrong
        region = None
    with _lock:
        _regions[bucket] = region
    return region


def filesystem(uri: str, storage: Mapping[str, Any] | None = None) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and the path inside it for a local path or a URI (cached per settings)."""
    if not is_remote(uri):
        return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(uri))
    scheme, rest = split_uri(uri)
    if "?" in rest or scheme not in S3_SCHEMES + GCS_SCHEMES:   # pyarrow's own URI options, other schemes
        try:
            return pafs.FileSystem.from_uri(uri)
        except ValueError:   # a scheme pyarrow does not know (ArrowInvalid): fsspec's, when it has one
            fsspec_fs = _fsspec_filesystem(uri)
            if fsspec_fs is None:
                raise
            return fsspec_fs
    path = rest.rstrip("/") or rest
    settings = resolve(storage)
    if scheme in S3_SCHEMES:
        s3 = dict(settings["s3"])
        s3["region"] = _s3_region(path.split("/", 1)[0], s3)
        kwargs = s3_filesystem_kwargs(s3)
        key: tuple = ("s3", tuple(sorted(kwargs.items())))
        factory: Any = pafs.S3FileSystem
    else:
        gcs = settings["gcs"]
        if gcs.get("credentials_file"):
            os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = gcs["credentials_file"]
        kwargs = gcs_filesystem_kwargs(gcs)
        key = ("gcs", tuple(sorted(kwargs.items())), gcs.get("credentials_file"))
        factory = pafs.GcsFileSystem
    with _lock:
        fs = _filesystems.get(key)
    if fs is None:
        fs = factory(**kwargs)
        with _lock:
            fs = _filesystems.setdefault(key, fs)
    return fs, path


def _fsspec_filesystem(uri: str) -> tuple[pafs.FileSystem, str] | None:
    """An fsspec filesystem (``memory://``, a plugin's scheme) seen through ``pyarrow.fs``; None
    when fsspec has no implementation for the scheme (or lacks the package it needs)."""
    try:
        import fsspec

        fs, path = fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError):
        return None
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


# -- LanceDB --------------------------------------------------------------------------------------

def lance_uri(uri: str) -> str:
    """The URI as LanceDB spells it (``gcs://`` is ``gs://`` there)."""
    scheme, rest = split_uri(uri)
    return f"gs://{rest}" if scheme == "gcs" else uri


def lance_storage_options(uri: str, storage: Mapping[str, Any] | None = None) -> dict[str, str]:
    """LanceDB ``storage_options`` for the DB at ``uri`` (empty for a local path or another scheme)."""
    scheme, rest = split_uri(uri)
    settings = resolve(storage)
    opts: dict[str, str] = {}
    if scheme in S3_SCHEMES:
        s3 = settings["s3"]
        region = _s3_region(rest.split("/", 1)[0], s3)
        if s3["endpoint_url"]:
            opts["aws_endpoint"] = s3["endpoint_url"]
        if region:
            opts["aws_region"] = region
        if s3["allow_http"]:
            opts["allow_http"] = "true"
        if s3["anonymous"]:
            opts["aws_skip_signature"] = "true"
        elif s3["access_key_id"] or s3["secret_access_key"]:
            opts["aws_access_key_id"] = s3["access_key_id"] or ""
            opts["aws_secret_access_key"] = s3["secret_access_key"] or ""
            if s3["session_token"]:
                opts["aws_session_token"] = s3["session_token"]
    elif scheme in GCS_SCHEMES:
        gcs = settings["gcs"]
        if gcs["endpoint_url"]:
            opts["google_base_url"] = gcs["endpoint_url"]
            if gcs["endpoint_url"].lower().startswith("http://"):
                opts["allow_http"] = "true"
        if gcs["anonymous"]:
            opts["google_skip_signature"] = "true"
        if gcs["credentials_file"]:
            opts["google_application_credentials"] = gcs["credentials_file"]
    return opts


# -- errors ---------------------------------------------------------------------------------------

_DENIED = ("ACCESS_DENIED", "SIGNATURE_DOES_NOT_MATCH", "INVALID_ACCESS_KEY_ID", "AccessDenied",
           "SignatureDoesNotMatch", "InvalidAccessKeyId", "PERMISSION_DENIED", "403 Forbidden", "Unauthorized")


def describe_error(uri: str, exc: BaseException, action: str = "access") -> str:
    """One line saying why ``uri`` cannot be used, without any secret."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    scheme = split_uri(uri)[0]
    hint = ""
    if any(marker in text for marker in _DENIED):
        if scheme in S3_SCHEMES:
            hint = (" (access denied: check the credentials, storage.s3.* in the config or AWS_ACCESS_KEY_ID / "
                    "AWS_SECRET_ACCESS_KEY, and the endpoint)")
        elif scheme in GCS_SCHEMES:
            hint = " (access denied: check storage.gcs.credentials_file or GOOGLE_APPLICATION_CREDENTIALS)"
    elif "NO_SUCH_BUCKET" in text or "NoSuchBucket" in text:
        hint = f" (no bucket named '{bucket_of(uri)}')"
    if len(text) > 300:
        text = text[:300] + "..."
    return f"cannot {action} {uri}: {text}{hint}"


def check_bucket(uri: str) -> None:
    """Raise :class:`SourceError` when the bucket of ``uri`` does not exist or cannot be reached."""
    fs, path = filesystem(uri)
    bucket = path.split("/", 1)[0]
    try:
        info = fs.get_file_info(bucket)
    except OSError as exc:
        raise SourceError(describe_error(uri, exc)) from None
    if info.type == pafs.FileType.NotFound:
        raise SourceError(f"cannot access {uri}: no bucket named '{bucket}'")


# -- writing --------------------------------------------------------------------------------------

class OutputDir:
    """A folder that a run or an export writes into: a local folder, or a prefix in a bucket.

    Paths given to the methods are relative, with ``/``. In a bucket there are no folders (``makedirs``
    does nothing) and no links (:meth:`place` copies on the server side instead).
    """

    def __init__(self, root: str) -> None:
        self.remote = is_remote(root)
        self.root = root.rstrip("/") if self.remote else os.path.abspath(os.path.expanduser(root))
        self.fs: pafs.FileSystem | None = None
        self.base = self.root
        if self.remote:
            try:
                self.fs, self.base = filesystem(self.root)
            except (OSError, ValueError) as exc:
                raise SourceError(describe_error(self.root, exc, "open")) from None

    def uri(self, rel: str = "") -> str:
        """Where ``rel`` is, as a user would write it."""
        return join(self.root, rel) if rel else self.root

    def local(self, rel: str) -> str:
        return os.path.join(self.root, *rel.split("/"))

    def _remote(self, rel: str) -> str:
        return f"{self.base}/{rel}" if rel else self.base

    def makedirs(self, rel: str = "") -> None:
        if not self.remote:
            os.makedirs(self.local(rel) if rel else self.root, exist_ok=True)

    def write_bytes(self, rel: str, data: bytes) -> None:
        if not self.remote:
            with open(self.local(rel), "wb") as f:
                f.write(data)
            return
        assert self.fs is not None
        with self.fs.open_output_stream(self._remote(rel)) as f:
            f.write(data)

    def read_bytes(self, rel: str) -> bytes:
        if not self.remote:
            with open(self.local(rel), "rb") as f:
                return f.read()
        assert self.fs is not None
        with self.fs.open_input_stream(self._remote(rel)) as f:
            return f.read()

    def size(self, rel: str) -> int | None:
        """The size of the file ``rel``, None when there is none."""
        if not self.remote:
            try:
                return os.stat(self.local(rel)).st_size
            except OSError:
                return None
        assert self.fs is not None
        info = self.fs.get_file_info(self._remote(rel))
        return info.size if info.type == pafs.FileType.File else None

    def delete(self, rel: str) -> None:
        """Remove the file ``rel`` when it is there; a local folder it leaves empty goes too (up to the root)."""
        if self.remote:
            assert self.fs is not None
            if self.fs.get_file_info(self._remote(rel)).type == pafs.FileType.File:
                self.fs.delete_file(self._remote(rel))
            return
        path = self.local(rel)
        if os.path.lexists(path):
            os.remove(path)
        folder = os.path.dirname(path)
        while folder != self.root and folder.startswith(self.root) and not os.listdir(folder):
            os.rmdir(folder)
            folder = os.path.dirname(folder)

    @contextmanager
    def open_text(self, rel: str) -> Iterator[io.TextIOBase]:
        """A text file to write (UTF-8), streamed to the bucket for a remote folder."""
        if not self.remote:
            with open(self.local(rel), "w", encoding="utf-8") as f:
                yield f
            return
        assert self.fs is not None
        with self.fs.open_output_stream(self._remote(rel)) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8")   # type: ignore[arg-type]
            try:
                yield text
            finally:
                text.flush()
                text.detach()

    def sink(self, rel: str) -> tuple[Any, pafs.FileSystem | None]:
        """(where, filesystem) for writers that take both (``pyarrow.parquet.ParquetWriter``)."""
        return (self._remote(rel), self.fs) if self.remote else (self.local(rel), None)

    def place(self, src_rel: str | None, data: bytes, dest_rel: str) -> None:
        """``dest_rel`` holding ``data``: a hard link to ``src_rel`` where possible (local), a server-side
        copy of it in a bucket, else the bytes written."""
        if not self.remote:
            dest = self.local(dest_rel)
            if os.path.lexists(dest):
                os.remove(dest)
            if src_rel is not None:
                try:
                    os.link(self.local(src_rel), dest)
                    return
                except OSError:
                    pass
            with open(dest, "wb") as f:
                f.write(data)
            return
        assert self.fs is not None
        if src_rel is not None:
            try:
                self.fs.copy_file(self._remote(src_rel), self._remote(dest_rel))
                return
            except OSError:
                pass
        self.write_bytes(dest_rel, data)


__all__ = ["DEFAULTS", "GCS_SCHEMES", "REDACTED", "S3_SCHEMES", "OutputDir", "SourceError", "bucket_of",
           "check_bucket", "configure", "configured", "describe_error", "filesystem", "gcs_filesystem_kwargs",
           "is_remote", "join", "lance_storage_options", "lance_uri", "redact", "redact_argv", "resolve",
           "resolved", "s3_filesystem_kwargs", "split_uri"]
