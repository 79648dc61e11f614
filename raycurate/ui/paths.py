"""Where the web UI may read: input paths typed by a user are confined to configured roots.

A root is a local folder (resolved with :func:`os.path.realpath`, so symlinks cannot lead out
of it) or a bucket prefix (``s3://bucket/prefix``, ``gs://bucket``). A typed path is accepted
only when its resolved real path lies inside one of them; anything else raises :class:`PathRefused`
with a message that can be shown to the user as is. What the UI lists itself (:meth:`Roots.sample`)
is checked the same way, and a run it starts gets :data:`CONFINED`: its listing follows no symlink
that leads outside the input (:mod:`raycurate.listing`), so it reads nothing outside the roots.
"""
from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from typing import Iterable, Sequence

BUCKET_SCHEMES = ("s3", "gs")
# Folders looked for under each local root to prefill the input box (the bundled sample first).
SAMPLE_CANDIDATES = ("tests/data", "sample", "samples", "data/sample")
# Settings every UI run gets whatever the config says: the listing of a confined input stays inside it.
CONFINED: tuple[tuple[str, object], ...] = (("input.follow_links", False),)


class PathRefused(ValueError):
    """A path outside the roots the server was configured to read, or not a usable path at all."""


def _bucket_parts(uri: str) -> tuple[str, str]:
    """(scheme, normalised 'bucket/key...') of a bucket URI; refuses '..' and other schemes."""
    scheme, _, rest = uri.partition("://")
    scheme = scheme.lower()
    if scheme not in BUCKET_SCHEMES:
        raise PathRefused(f"only local paths and {', '.join(s + '://' for s in BUCKET_SCHEMES)} "
                          f"URIs are read (got {scheme}://)")
    parts = [p for p in rest.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise PathRefused(f"{uri!r} is not a plain bucket path (no '.' or '..' segments)")
    return scheme, posixpath.join(*parts)


@dataclass(frozen=True)
class Roots:
    """The folders and bucket prefixes the UI may read. ``local`` are real paths, ``buckets`` are
    ``(scheme, 'bucket/prefix')`` pairs."""

    local: tuple[str, ...]
    buckets: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_list(cls, roots: Iterable[str]) -> "Roots":
        local: list[str] = []
        buckets: list[tuple[str, str]] = []
        for root in roots:
            if "://" in root:
                buckets.append(_bucket_parts(root))
                continue
            real = os.path.realpath(os.path.expanduser(root))
            if not os.path.isdir(real):
                raise PathRefused(f"root {root!r} is not a folder")
            local.append(real)
        if not local and not buckets:
            raise PathRefused("no roots configured: give at least one --root")
        return cls(tuple(dict.fromkeys(local)), tuple(dict.fromkeys(buckets)))

    def describe(self) -> list[str]:
        return list(self.local) + [f"{s}://{p}" for s, p in self.buckets]

    def resolve(self, path: str) -> str:
        """The path to read: a real local path inside a local root, or a bucket URI under a bucket root.

        A relative path is taken relative to the first local root. Refused: empty paths, NUL bytes,
        ``~``, anything that resolves outside every root (``../../etc/passwd``, ``/etc``, a symlink
        pointing out), bucket URIs with ``..`` or outside the configured prefixes, other schemes.
        """
        path = (path or "").strip()
        if not path:
            raise PathRefused("no path given")
        if "\x00" in path:
            raise PathRefused("the path holds a NUL byte")
        if "://" in path:
            scheme, rest = _bucket_parts(path)
            for s, prefix in self.buckets:
                if s == scheme and (rest == prefix or rest.startswith(prefix + "/")):
                    return f"{scheme}://{rest}"
            raise PathRefused(f"{path} is outside the roots this server reads ({self._shown()})")
        if path.startswith("~"):
            raise PathRefused("'~' is not expanded; give a path inside the roots")
        if not self.local:
            raise PathRefused(f"this server reads no local folders ({self._shown()})")
        joined = path if os.path.isabs(path) else os.path.join(self.local[0], path)
        real = os.path.realpath(joined)
        if not self.contains(real):
            raise PathRefused(f"{path} is outside the roots this server reads ({self._shown()})")
        if not os.path.exists(real):
            raise PathRefused(f"not found: {path}")
        return real

    def contains(self, path: str) -> bool:
        """Whether the local ``path``, resolved to its real path (every symlink followed), lies in a local root:
        a link inside a root that leads outside is not contained."""
        real = os.path.realpath(path)
        return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in self.local)

    def _shown(self) -> str:
        return ", ".join(self.describe())

    def sample(self, candidates: Sequence[str] = SAMPLE_CANDIDATES) -> str | None:
        """A sample folder under a local root to prefill the input box, or None; only one whose real path is
        inside the roots (a candidate that is a symlink leading out is passed over)."""
        for root in self.local:
            for rel in candidates:
                folder = os.path.join(root, rel)
                if os.path.isdir(folder) and self.contains(folder) and any(os.scandir(folder)):
                    return folder
        return None


__all__ = ["CONFINED", "PathRefused", "Roots", "SAMPLE_CANDIDATES"]
