"""The report's identities gallery: the identities the run's faces were grouped into (:mod:`raycurate.people`),
largest first, each with a crop of one of its faces; and the run's unknown faces (a vector, no identity)."""
from __future__ import annotations

from typing import Any, Mapping

from ..analyzers.face_embedders import FACE_VECTOR_COLUMNS
from ..store.people_schema import FACES_TABLE, IDENTITIES_TABLE
from ..store.table import sql_in
from .records import Card, read_rows, show
from .thumbs import data_uri

MAX_IDENTITIES = 40
MAX_UNKNOWN = 8         # unknown faces shown (the sharpest)


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


def unknown_faces(tables: Mapping[str, Any], run: str) -> tuple[int, list[Card]]:
    """How many of the run's faces are unknown (a vector, no identity: not clearly nearer one identity than
    another), and crops of the sharpest of them."""
    faces = tables.get(FACES_TABLE)
    if faces is None:
        return 0, []
    has_vector = " OR ".join(f"{c} IS NOT NULL" for c in FACE_VECTOR_COLUMNS if c in faces.schema.names)
    if not has_vector:
        return 0, []
    rows = read_rows(faces, f"{run} AND identity_id IS NULL AND ({has_vector})",
                     ["face_id", "image_id", "uri", "box", "sharpness"])
    rows.sort(key=lambda f: -(f["sharpness"] or 0))
    shown = [f for f in rows if f["image_id"] and f["uri"] and f["box"]][:MAX_UNKNOWN]
    return len(rows), [Card(f["face_id"], {"sharpness": show(f["sharpness"])}, data_uri(f["uri"], f["box"]), f["uri"])
                       for f in shown]


__all__ = ["MAX_IDENTITIES", "MAX_UNKNOWN", "identities", "unknown_faces"]
