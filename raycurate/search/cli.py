"""``raycurate search``: open the DB, run one query, print the hits (a text table, or one JSON object a line)."""
from __future__ import annotations

import json

from ..settings import Settings
from .images import Curation
from .inputs import resolve_db
from .results import format_face_hits, format_hits


def run_cli(db: str, *, image: str | None, id: str | None, text: str | None,  # noqa: A002
            where: str | None, k: int, column: str | None, models_dir: str | None, as_json: bool,
            face: str | None = None, identity: str | None = None, settings: Settings | None = None) -> int:
    """``raycurate search``: print the hits; raises :class:`~raycurate.search.inputs.SearchError` on bad input,
    :class:`~raycurate.store.health.DamagedDB` on a damaged DB (exit 2). ``settings``: the command's typed
    settings (default: the configuration's defaults)."""
    from ..store.health import check_db

    db = resolve_db(db)
    check_db(db)
    hits = Curation(db, models_dir=models_dir, settings=settings).search(
        image=image, id=id, text=text, face=face, identity=identity, where=where, k=k, column=column)
    if as_json:
        for row in hits.to_pylist():
            print(json.dumps(row, default=str))
    elif face is not None or identity is not None:
        print(format_face_hits(hits))
    else:
        print(format_hits(hits))
    return 0


__all__ = ["run_cli"]
