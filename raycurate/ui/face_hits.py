"""The Search tab's face queries, without gradio: "Find this face" (an uploaded picture) and an identity's faces,
answered by :meth:`raycurate.search.Curation.search` over the ``faces`` table."""
from __future__ import annotations

import os
from typing import Any

from .session import Session, UserError


def face_caption(row: dict[str, Any]) -> str:
    """``#rank d=distance · same person? · identity · file`` of one face hit."""
    dist = "d=-" if row["distance"] is None else f"d={row['distance']:.3f}"
    same = "same person" if row["same_person"] else "other"
    return f"#{row['rank']} {dist} · {same} · {row['identity_id'] or 'no identity'} · {os.path.basename(row['uri'] or '')}"


def face_search(session: Session, *, face: str | None = None, identity: str | None = None,
                k: int = 12) -> tuple[list[tuple[str, str]], str, list[str]]:
    """(face crop, caption) per hit, a line saying what was searched, and the hits' image ids (null for a
    face of a sampled video frame, which has no stored picture)."""
    from ..search import SearchError

    cur = session.curation()
    if cur is None:
        raise UserError("nothing to search yet: run a curation first")
    identity = (identity or "").strip() or None
    if (face is None) == (identity is None):
        raise UserError("give one face query: an uploaded picture with a face, or an identity id")
    try:
        hits = cur.search(face=face or None, identity=identity, k=int(k))
    except SearchError as exc:
        raise UserError(str(exc)) from None
    meta = {a.decode(): b.decode() for a, b in (hits.schema.metadata or {}).items()}
    shown = [r for r in hits.to_pylist() if r["thumbnail"]]
    items = [(r["thumbnail"], face_caption(r)) for r in shown]
    if identity is not None:
        name = f" ({meta['raycurate.identity_name']})" if meta.get("raycurate.identity_name") else ""
        said = (f"{hits.num_rows} faces of identity `{identity}`{name}, sharpest first; "
                f"distance is to the identity's centroid.")
    else:
        said = (f"{hits.num_rows} faces nearest to the largest face of {os.path.basename(face or '')} on "
                f"`{meta.get('raycurate.column')}` ({meta.get('raycurate.method')}); same person when the cosine "
                f"distance is <= {meta.get('raycurate.same_person')}.")
    return items, said, [r["image_id"] for r in shown]


__all__ = ["face_caption", "face_search"]
