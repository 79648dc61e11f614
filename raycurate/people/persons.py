"""Which target people (``--person``) each stored image shows, and the gate that keeps only those images."""
from __future__ import annotations

from typing import Any, Sequence

from ..gates import Gate
from ..store.table import write_columns
from .targets import PersonTarget, persons_in

PERSON_GATE = Gate("person.target", "face_features", "persons IS NOT NULL")   # dropped: shows no target


def _identity_centroids(db_uri: str | None) -> list[dict[str, Any]]:
    """The stored identities' family and centroid (none: no DB or no identities table yet)."""
    if db_uri is None:
        return []
    from ..store.people_schema import IDENTITIES_TABLE
    from ..store.table import open_table

    try:
        table = open_table(db_uri, IDENTITIES_TABLE)
    except (FileNotFoundError, ValueError):
        return []
    return [r for r in table.search().select(["identity_id", "family", "name", "centroid"]).limit(None).to_list()
            if r["centroid"]]


def rivals_of(targets: Sequence[PersonTarget], identities: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per target: the centroids of the stored identities of its family that are not its own (farther than its
    threshold from its mean): the known people a face must be clearly nearer the target than."""
    import numpy as np

    out = {}
    for t in targets:
        cents = np.asarray([r["centroid"] for r in identities if r["family"] == t.family],
                           dtype=np.float32).reshape(-1, t.centroid.shape[0])
        out[t.name] = cents[t.distance(cents) > t.threshold] if len(cents) else cents
    return out


def mark_persons(table: Any, where: str, targets: Sequence[PersonTarget], db_uri: str | None = None
                 ) -> dict[str, Any]:
    """Write ``persons`` (the targets any face of the image shows; null: none) on the rows ``where`` picks;
    how many images show each target. With ``db_uri``, a face must also be clearly nearer the target than
    any stored identity not the target's own (:func:`~raycurate.people.targets.persons_in`)."""
    rows = table.search().where(f"{where} AND error IS NULL") \
        .select(["id", "uri", "run_id", "face_embeddings", "face_embedding_model"]).limit(None).to_list()
    marks = []
    shown: dict[str, int] = {t.name: 0 for t in targets}
    rivals = rivals_of(targets, _identity_centroids(db_uri))
    for r in rows:
        names = persons_in(r["face_embeddings"], r["face_embedding_model"], targets, others=rivals)
        for n in names:
            shown[n] += 1
        marks.append({"id": r["id"], "uri": r["uri"], "run_id": r["run_id"], "persons": names or None})
    write_columns(table, marks, ("persons",))
    return {"targets": {t.name: t.manifest() for t in targets}, "images_showing": shown,
            "images_showing_any": sum(1 for m in marks if m["persons"])}


def clear_persons(table: Any) -> int:
    """A run without ``--person`` targets: the ``persons`` marks an earlier run wrote are cleared, so that the
    export (its per-person folders) follows the run's own targets; the rows cleared."""
    if "persons" not in table.schema.names or not table.count_rows("persons IS NOT NULL"):
        return 0
    rows = table.search().where("persons IS NOT NULL").select(["id", "uri", "run_id"]).limit(None).to_list()
    write_columns(table, [{**r, "persons": None} for r in rows], ("persons",))
    return len(rows)


def name_identities(db_uri: str, targets: Sequence[PersonTarget]) -> dict[str, str]:
    """Each target's name given to the stored identity nearest its reference faces, when within its threshold
    and at least its margin nearer than the second-nearest identity, unless that identity already has a name;
    target -> identity id named (or already named so)."""
    import numpy as np

    from .identities import rename

    rows = _identity_centroids(db_uri)
    named: dict[str, str] = {}
    for t in targets:
        mine = [r for r in rows if r["family"] == t.family and r["centroid"]]
        if not mine:
            continue
        dist = t.distance(np.asarray([r["centroid"] for r in mine], dtype=np.float32))
        best = int(np.argmin(dist))
        second = float(np.partition(dist, 1)[1]) if len(dist) > 1 else np.inf
        if dist[best] <= t.threshold and second - dist[best] >= t.margin and mine[best]["name"] in (None, t.name):
            rename(db_uri, mine[best]["identity_id"], t.name)
            mine[best]["name"] = t.name
            named[t.name] = mine[best]["identity_id"]
    return named
