"""Identities in LanceDB: faces grouped by :func:`~raycurate.people.cluster.assign_identities` into the
``identities`` table, per embedding family, incrementally across runs; and what a user does to them
(rename, merge, split, list).

A face that joins no identity (not clearly nearer one identity than the others: see
:mod:`~raycurate.people.cluster`) is **unknown**: its ``identity_id`` stays null, it is in no identity and
no centroid, and the next run takes it again with the new faces (:func:`unknown_faces` lists them).

An identity id (``id-000001``) is numbered after the table's largest and never renumbered. After every
change the touched identities are recomputed from their faces (:func:`refresh`): centroid (unit mean),
face and image counts, best face, each face's distance; and the ``images`` rows of the faces that moved get
``identity_id`` (the main face's) and ``identity_ids`` (every face's, in face order).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa

from ..analyzers.face_embedders import VECTOR_COLUMNS
from ..schemas import FACES_SCHEMA
from ..store.people_schema import FACES_TABLE, IDENTITIES_SCHEMA, IDENTITIES_TABLE
from ..store.schema import TABLE_NAME
from ..store.table import open_or_create_table, open_table, sql_in, sql_str, write_columns
from .cluster import UNKNOWN, _unit, assign_identities

FRONTAL_YAW = 20.0      # |yaw| (degrees) of a face counted frontal when choosing an identity's best face
IN_CHUNK = 500          # values per SQL IN list
SAMPLES = 4             # sample image URIs listed per identity


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _read(table: Any, where: str | None, columns: Sequence[str]) -> list[dict[str, Any]]:
    q = table.search()
    if where:
        q = q.where(where)
    return q.select(list(columns)).limit(None).to_arrow().to_pylist()


def _read_in(table: Any, column: str, values: Iterable[str], columns: Sequence[str]) -> list[dict[str, Any]]:
    values = sorted(set(values))
    out: list[dict[str, Any]] = []
    for s in range(0, len(values), IN_CHUNK):
        out += _read(table, sql_in(column, values[s:s + IN_CHUNK]), columns)
    return out


def faces_table(db_uri: str) -> Any:
    return open_or_create_table(db_uri, FACES_TABLE, FACES_SCHEMA)


def identities_table(db_uri: str) -> Any:
    return open_or_create_table(db_uri, IDENTITIES_TABLE, IDENTITIES_SCHEMA)


def _next_number(table: Any) -> int:
    ids = [r["identity_id"] for r in _read(table, None, ["identity_id"])]
    return 1 + max((int(i.split("-", 1)[1]) for i in ids if i.startswith("id-") and i[3:].isdigit()), default=0)


def _people_settings(people: Any) -> Any:
    if people is None:
        from ..settings.people_sections import PeopleSettings

        return PeopleSettings()
    return people


def thresholds_of(people: Any = None) -> dict[str, float]:
    """Cosine distance to a centroid at or below which a face may join an identity, per family (``people``:
    the ``people`` settings section; None: its defaults)."""
    people = _people_settings(people)
    return {"arcface": float(people.threshold_arcface), "dlib": float(people.threshold_dlib)}


def margins_of(people: Any = None) -> dict[str, float]:
    """How much nearer its identity than the second-nearest one a face must be to join it, per family."""
    people = _people_settings(people)
    return {"arcface": float(people.margin_arcface), "dlib": float(people.margin_dlib)}


def assign_new_faces(db_uri: str, thresholds: Mapping[str, float], *, margins: Mapping[str, float] | None = None,
                     run_id: str | None = None) -> dict[str, Any]:
    """Every face not yet grouped (any run; the unknown faces of earlier runs too) assigned, per family, to the
    stored identities or new ones, or left unknown; sharpest faces first. Returns counts (``assigned``,
    ``unknown``: the faces with a vector and no identity after this), the touched identities and the image
    ids whose faces moved."""
    faces, idt = faces_table(db_uri), identities_table(db_uri)
    margins = margins or {}
    summary: dict[str, Any] = {"assigned": 0, "unknown": 0, "identities_new": 0, "identities_updated": 0,
                               "families": {}}
    touched: set[str] = set()
    image_ids: set[str] = set()
    for family, (col, _) in VECTOR_COLUMNS.items():
        new = _read(faces, f"identity_id IS NULL AND {col} IS NOT NULL", ["face_id", "image_id", col, "sharpness"])
        if not new:
            continue
        known = _read(idt, f"family = {sql_str(family)}", ["identity_id", "centroid", "face_count"])
        dim = VECTOR_COLUMNS[family][1]
        cents = np.array([k["centroid"] for k in known], dtype=np.float32).reshape(len(known), dim)
        counts = np.array([k["face_count"] or 0 for k in known], dtype=np.int64)
        vectors = np.array([f[col] for f in new], dtype=np.float32)
        order = np.argsort(-np.array([f["sharpness"] or 0.0 for f in new]), kind="stable")
        labels, dist, _, _ = assign_identities(vectors, cents, counts, thresholds[family],
                                               margin=margins.get(family, 0.0), order=order)
        first = _next_number(idt)
        ids = [k["identity_id"] for k in known] + \
            [f"id-{first + j:06d}" for j in range(int(labels.max(initial=-1)) + 1 - len(known))]
        fresh = ids[len(known):]
        if fresh:
            idt.add(pa.Table.from_pylist([{"identity_id": i, "family": family, "created_run": run_id,
                                           "updated_at": _now()} for i in fresh], schema=IDENTITIES_SCHEMA))
        on = np.flatnonzero(labels != UNKNOWN)
        _write_face_ids(faces, [new[i]["face_id"] for i in on], [ids[labels[i]] for i in on], dist[on].tolist())
        used = {ids[labels[i]] for i in on}
        touched |= used
        image_ids |= {new[i]["image_id"] for i in on if new[i]["image_id"]}
        fam = {"faces": len(new), "assigned": len(on), "unknown": len(new) - len(on), "identities_new": len(fresh),
               "identities_updated": len(used) - len(fresh)}
        summary["families"][family] = fam
        summary["assigned"] += len(on)
        summary["unknown"] += len(new) - len(on)
        summary["identities_new"] += fam["identities_new"]
        summary["identities_updated"] += fam["identities_updated"]
    refresh(db_uri, touched)
    summary["touched"], summary["image_ids"] = touched, image_ids
    return summary


def _write_face_ids(faces: Any, face_ids: Sequence[str], identity_ids: Sequence[str | None],
                    distances: Sequence[float | None]) -> None:
    rows = [{"face_id": f, "identity_id": i, "identity_distance": d}
            for f, i, d in zip(face_ids, identity_ids, distances)]
    write_columns(faces, rows, ("identity_id", "identity_distance"), key=("face_id",), schema=FACES_SCHEMA)


def _best_face(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """The sharpest frontal face (|yaw| <= FRONTAL_YAW), else the sharpest of the least turned."""
    def key(r: Mapping[str, Any]) -> tuple[int, float]:
        yaw = abs(r["pose"][1]) if r.get("pose") and r["pose"][1] is not None else None
        turn = 2 if yaw is None or yaw > 45 else (0 if yaw <= FRONTAL_YAW else 1)
        return turn, -(r.get("sharpness") or 0.0)

    return min(rows, key=key)["face_id"] if rows else None


def _image_key(r: Mapping[str, Any]) -> str:
    return r["image_id"] or f"{r['video_id']}@{r['frame_index']}"


def refresh(db_uri: str, identity_ids: Iterable[str]) -> None:
    """``identity_ids`` recomputed from their faces: centroid, counts, best face, each face's distance; an
    identity left without faces is deleted."""
    ids = sorted(set(identity_ids))
    if not ids:
        return
    faces, idt = faces_table(db_uri), identities_table(db_uri)
    rows = _read_in(faces, "identity_id", ids, ["face_id", "identity_id", "image_id", "video_id", "frame_index",
                                                   "sharpness", "pose", *[c for c, _ in VECTOR_COLUMNS.values()]])
    stored = {r["identity_id"]: r for r in _read_in(idt, "identity_id", ids, [f.name for f in IDENTITIES_SCHEMA])}
    by_id: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_id.setdefault(r["identity_id"], []).append(r)
    upserts, face_ids, dists = [], [], []
    for iid in ids:
        mine, row = by_id.get(iid, []), stored.get(iid)
        if row is None or not mine:
            continue
        col = VECTOR_COLUMNS[row["family"]][0]
        with_vec = [r for r in mine if r[col] is not None]
        x = _unit(np.array([r[col] for r in with_vec], dtype=np.float32).reshape(len(with_vec), -1))
        centroid = _unit(x.sum(axis=0, keepdims=True))[0] if len(x) else None
        if centroid is not None:
            face_ids += [r["face_id"] for r in with_vec]
            dists += np.maximum(1.0 - x @ centroid, 0.0).tolist()
        upserts.append({**row, "centroid": None if centroid is None else centroid.tolist(),
                        "face_count": len(mine), "image_count": len({_image_key(r) for r in mine}),
                        "best_face_id": _best_face(mine), "updated_at": _now()})
    if upserts:
        idt.merge_insert("identity_id").when_matched_update_all().when_not_matched_insert_all() \
            .execute(pa.Table.from_pylist(upserts, schema=IDENTITIES_SCHEMA))
    _write_face_ids(faces, face_ids, _ids_of(rows, face_ids), dists)
    empty = [i for i in ids if not by_id.get(i)]
    if empty:
        idt.delete(sql_in("identity_id", empty))


def _ids_of(rows: Sequence[Mapping[str, Any]], face_ids: Sequence[str]) -> list[str]:
    of = {r["face_id"]: r["identity_id"] for r in rows}
    return [of[f] for f in face_ids]


def write_image_identities(db_uri: str, image_ids: Iterable[str]) -> int:
    """``identity_id`` and ``identity_ids`` written on every ``images`` row of ``image_ids`` (the columns added
    to a table made before they existed); returns the image ids written."""
    image_ids = sorted(set(image_ids))
    if not image_ids:
        return 0
    images = open_table(db_uri, TABLE_NAME)
    faces = faces_table(db_uri)
    per: dict[str, dict[int, str | None]] = {i: {} for i in image_ids}
    for r in _read_in(faces, "image_id", image_ids, ["image_id", "face_index", "identity_id"]):
        per[r["image_id"]][r["face_index"]] = r["identity_id"]
    rows = []
    for iid, by_k in per.items():
        listed = [by_k.get(k) for k in range(max(by_k) + 1)] if by_k else None
        rows.append({"id": iid, "identity_id": listed[0] if listed else None,
                     "identity_ids": listed if listed and any(listed) else None})
    # every images row of the content id (the same bytes under two URIs) gets them; a table made before the
    # columns existed gets them added
    write_columns(images, rows, ("identity_id", "identity_ids"), key=("id",))
    return len(rows)


def _identity(idt: Any, identity_id: str) -> dict[str, Any]:
    found = _read(idt, f"identity_id = {sql_str(identity_id)}", [f.name for f in IDENTITIES_SCHEMA])
    if not found:
        raise KeyError(f"no identity {identity_id}")
    return found[0]


def rename(db_uri: str, identity_id: str, name: str | None) -> None:
    """Give ``identity_id`` a person's name (None or "" clears it)."""
    idt = identities_table(db_uri)
    _identity(idt, identity_id)
    idt.update(where=f"identity_id = {sql_str(identity_id)}", values={"name": name or None, "updated_at": _now()})


def merge(db_uri: str, keep_id: str, other_id: str) -> int:
    """Every face of ``other_id`` moved to ``keep_id`` (one family); ``other_id`` deleted. Returns faces moved."""
    idt, faces = identities_table(db_uri), faces_table(db_uri)
    keep, other = _identity(idt, keep_id), _identity(idt, other_id)
    if keep_id == other_id:
        raise ValueError("merge: the two identities are the same")
    if keep["family"] != other["family"]:
        raise ValueError(f"merge: {keep_id} is {keep['family']}, {other_id} is {other['family']}: vectors of two "
                         "models are never compared")
    moved = _read(faces, f"identity_id = {sql_str(other_id)}", ["face_id", "image_id"])
    faces.update(where=f"identity_id = {sql_str(other_id)}", values={"identity_id": keep_id})
    if not keep["name"] and other["name"]:
        idt.update(where=f"identity_id = {sql_str(keep_id)}", values={"name": other["name"]})
    refresh(db_uri, [keep_id, other_id])
    write_image_identities(db_uri, [f["image_id"] for f in moved if f["image_id"]])
    return len(moved)


def split(db_uri: str, face_ids: Sequence[str], name: str | None = None) -> str:
    """``face_ids`` (faces of one family: grouped, or unknown) made a new identity; returns its id. This is how
    a user gives unknown faces an identity: the rule never does."""
    idt, faces = identities_table(db_uri), faces_table(db_uri)
    cols = {fam: col for fam, (col, _) in VECTOR_COLUMNS.items()}
    rows = _read_in(faces, "face_id", face_ids, ["face_id", "image_id", "identity_id", *cols.values()])
    missing = set(face_ids) - {r["face_id"] for r in rows}
    if missing:
        raise KeyError(f"no face {', '.join(sorted(missing))}")
    ungrouped = [r for r in rows if r["identity_id"] is None]
    if any(all(r[c] is None for c in cols.values()) for r in ungrouped):
        raise ValueError("split: a face without a vector (too small or too blurred to embed) cannot be grouped")
    old = {r["identity_id"] for r in rows} - {None}
    families = {r["family"] for r in _read_in(idt, "identity_id", old, ["family"])}
    families |= {fam for r in ungrouped for fam, c in cols.items() if r[c] is not None}
    if len(families) != 1:
        raise ValueError("split: the faces belong to identities of different embedding families")
    new_id = f"id-{_next_number(idt):06d}"
    idt.add(pa.Table.from_pylist([{"identity_id": new_id, "family": families.pop(), "name": name or None,
                                   "created_run": None, "updated_at": _now()}], schema=IDENTITIES_SCHEMA))
    _write_face_ids(faces, [r["face_id"] for r in rows], [new_id] * len(rows), [None] * len(rows))
    refresh(db_uri, old | {new_id})
    write_image_identities(db_uri, [r["image_id"] for r in rows if r["image_id"]])
    return new_id


def unknown_faces(db_uri: str, family: str | None = None) -> list[dict[str, Any]]:
    """The faces that have a vector (of ``family``) and no identity: unknown, sharpest first: face id, family,
    image or video URI, frame index, sharpness."""
    faces = faces_table(db_uri)
    out: list[dict[str, Any]] = []
    for fam, (col, _) in VECTOR_COLUMNS.items():
        if family in (None, fam):
            rows = _read(faces, f"identity_id IS NULL AND {col} IS NOT NULL",
                         ["face_id", "uri", "frame_index", "sharpness"])
            out += [{**r, "family": fam} for r in rows]
    return sorted(out, key=lambda r: (-(r["sharpness"] or 0.0), r["face_id"]))


def list_identities(db_uri: str, family: str | None = None) -> list[dict[str, Any]]:
    """Every identity (of ``family``), most faces first: id, family, name, counts, its best face (id, image
    URI, box) and a few sample image URIs."""
    idt, faces = identities_table(db_uri), faces_table(db_uri)
    where = f"family = {sql_str(family)}" if family else None
    rows = _read(idt, where, ["identity_id", "family", "name", "face_count", "image_count", "best_face_id",
                              "created_run", "updated_at"])
    if not rows:
        return []
    best = {r["face_id"]: r for r in _read_in(faces, "face_id", [r["best_face_id"] for r in rows if r["best_face_id"]],
                                               ["face_id", "uri", "box", "frame_index", "source"])}
    samples: dict[str, list[str]] = {}
    for f in _read_in(faces, "identity_id", [r["identity_id"] for r in rows], ["identity_id", "uri"]):
        got = samples.setdefault(f["identity_id"], [])
        if len(got) < SAMPLES and f["uri"] not in got:
            got.append(f["uri"])
    for r in rows:
        b = best.get(r["best_face_id"] or "", {})
        r.update(best_uri=b.get("uri"), best_box=b.get("box"), best_frame_index=b.get("frame_index"),
                 sample_uris=samples.get(r["identity_id"], []))
    return sorted(rows, key=lambda r: (-(r["face_count"] or 0), r["identity_id"]))
