"""The report's identities gallery: the identities the run's faces were grouped into (:mod:`raycurate.people`),
largest first, each with a crop of one of its faces."""
from __future__ import annotations

from typing import Any, Mapping

from ..store.people_schema import FACES_TABLE, IDENTITIES_TABLE
from ..store.table import sql_in
from .records import Card, read_rows, show
from .thumbs import data_uri

MAX_IDENTITIES = 40


def identities(tables: Mapping[str, Any], run: str) -> list[Card]:
    """The identities the run's faces fall in, largest first, each with a crop of a face it holds."""
    faces, idt = tables.get(FACES_TABLE), tables.get(IDENTITIES_TABLE)
    if faces is None or idt is None:
        return []
    faces_of_run = read_rows(faces, f"{run} AND identity_id IS NOT NULL",
                      ["face_id", "identity_id", "image_id", "uri", "box", "sharpness", "source"])
    by_id: dict[str, list[dict[str, Any]]] = {}
    for f in faces_of_run:
        by_id.setdefault(f["identity_id"], []).append(f)
    if not by_id:
        return []
    found = read_rows(idt, sql_in("identity_id", sorted(by_id)),
                 ["identity_id", "family", "name", "face_count", "image_count", "best_face_id"])
    found.sort(key=lambda r: (-(r["face_count"] or 0), r["identity_id"]))
    cards = []
    for r in found[:MAX_IDENTITIES]:
        shown = [f for f in by_id[r["identity_id"]] if f["image_id"] and f["uri"] and f["box"]]
        shown.sort(key=lambda f: (f["face_id"] != r["best_face_id"], -(f["sharpness"] or 0)))
        face = shown[0] if shown else None
        title = f"{r['name']} ({r['identity_id']})" if r["name"] else r["identity_id"]
        values = {"family": r["family"], "faces": show(r["face_count"]), "images": show(r["image_count"]),
                  "faces in this run": str(len(by_id[r["identity_id"]]))}
        if face is None:
            values["picture"] = "its faces are in sampled video frames (not stored)"
        cards.append(Card(title, values, data_uri(face["uri"], face["box"]) if face else None,
                          face["uri"] if face else None))
    return cards


__all__ = ["MAX_IDENTITIES", "identities"]
