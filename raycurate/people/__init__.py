"""People: faces exploded into the ``faces`` table (:mod:`.faces`) and grouped into identities that do not
chain (:mod:`.cluster`), stored in the ``identities`` table and on the ``images`` rows (:mod:`.identities`).
No Ray: a run calls :func:`index_run` after dedup. Imports are lazy (the CLI registers :mod:`.cli` from
here without numpy or LanceDB)."""
from __future__ import annotations

import importlib
import time
from typing import Any

_LAZY = {"assign_identities": "cluster", "cluster_embeddings": "cluster", "pair_precision_recall": "cluster",
         "write_faces": "faces", "assign_new_faces": "identities", "list_identities": "identities",
         "margins_of": "identities", "merge": "identities", "pair_scores": "cluster", "refresh": "identities",
         "rename": "identities", "split": "identities", "thresholds_of": "identities", "unknown_faces": "identities",
         "write_image_identities": "identities", "UNKNOWN": "cluster"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def index_run(db_uri: str, run_id: str, people: Any = None, targets: Any = (), dedup: Any = None
              ) -> dict[str, Any]:
    """The run's faces written to ``faces``, every ungrouped face assigned to an identity or left unknown
    (``unknown``: how many faces have a vector and no identity), the images rows given their identities; each
    ``--person`` target's name given to the identity its reference faces fall in (``named``); the ``faces``
    table's indexes (a vector index per family once ``dedup.index_min_rows`` faces have one). ``people``: the
    ``people`` settings section (thresholds, margins). Returns the manifest's ``people`` summary."""
    from .faces import write_faces
    from .identities import assign_new_faces, margins_of, thresholds_of, write_image_identities

    t = time.perf_counter()
    written = write_faces(db_uri, run_id)
    assigned = assign_new_faces(db_uri, thresholds_of(people), margins=margins_of(people), run_id=run_id)
    images = write_image_identities(db_uri, written.image_ids | assigned.pop("image_ids"))
    assigned.pop("touched")
    summary = {**written.as_dict(), **assigned, "images_written": images}
    if targets:
        from .persons import name_identities

        summary["named"] = name_identities(db_uri, targets)
    if dedup is not None and any(written.written.values()):
        summary["indexes"] = _index_faces(db_uri, dedup)
    return {**summary, "seconds": round(time.perf_counter() - t, 3)}


def _index_faces(db_uri: str, dedup: Any) -> dict[str, Any]:
    from ..analyzers.face_embedders import FACE_VECTOR_COLUMNS
    from ..store.dedup import maintain
    from ..store.people_schema import FACES_TABLE
    from ..store.table import open_table

    return maintain(open_table(db_uri, FACES_TABLE), vector_columns=FACE_VECTOR_COLUMNS,
                    index_min_rows=dedup.index_min_rows, index_type=dedup.index_type)


__all__ = ["index_run", *sorted(_LAZY)]
