"""``group_by_identity``: the kept images in one folder per stored identity.

The identities are made when a run stores its faces (:mod:`raycurate.people`: centroid assignment that does
not chain, stable across runs); here each kept image goes to its main face's identity, named by the name a
user gave it (``raycurate identities DB --rename``) or by its id, and ``unknown`` without one.
"""
from __future__ import annotations

from typing import Any

from .records import iter_rows


def _folder(identity_id: str, name: str | None) -> str:
    """A folder name for an identity: its given name when it makes a safe one, else its id."""
    if name and name[0] not in ". " and all(c.isalnum() or c in " ._-" for c in name):
        return name
    return identity_id


def identity_names(db_uri: str | None) -> dict[str, str | None]:
    """identity_id -> the name a user gave it (None: unnamed), from the ``identities`` table (empty without)."""
    if db_uri is None:
        return {}
    from ..store.people_schema import IDENTITIES_TABLE
    from ..store.table import open_table

    try:
        table = open_table(db_uri, IDENTITIES_TABLE)
    except (FileNotFoundError, ValueError):
        return {}
    return {r["identity_id"]: r["name"] for r in table.search().select(["identity_id", "name"]).limit(None).to_list()}


def identities(table: Any, where: str, names: dict[str, str | None] | None = None) -> dict[str, str]:
    """Content id -> the identity folder of the row's main face (``unknown``: no stored identity) for rows
    matching ``where``; ``names``: identity_id -> a user's name for it."""
    names = names or {}
    if "identity_id" not in table.schema.names:   # a table made before identities were stored
        return {row["id"]: "unknown" for row in iter_rows(table, where, ["id"], batch_size=4096)}
    out: dict[str, str] = {}
    for row in iter_rows(table, where, ["id", "identity_id"], batch_size=4096):
        ident = row["identity_id"]
        if out.get(row["id"], "unknown") == "unknown":
            out[row["id"]] = _folder(ident, names.get(ident)) if ident else "unknown"
    return out
