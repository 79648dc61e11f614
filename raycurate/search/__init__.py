"""Search over a curated DB, one module a job, each importing only those listed before it:

- :mod:`~raycurate.search.inputs`: :class:`SearchError`, the DB's place, the query picture decoded the
  pipeline's way;
- :mod:`~raycurate.search.results`: the hits' table, thumbnails (face crops) and the printed text tables;
- :mod:`~raycurate.search.index`: how a query uses the searched column's vector index (``search.nprobes``,
  ``search.refine_factor``); the index itself is read by :mod:`raycurate.store.indexes`;
- :mod:`~raycurate.search.faces`: by face and by identity over the ``faces`` table (:class:`FaceSearch`);
- :mod:`~raycurate.search.images`: :class:`Curation`, by image, stored id or text over the ``images`` table,
  handing face and identity queries to :class:`FaceSearch`;
- :mod:`~raycurate.search.cli`: ``raycurate search``.

``raycurate.open(db)`` returns a :class:`Curation`.
"""
from __future__ import annotations

from .cli import run_cli
from .images import Curation
from .inputs import SearchError
from .results import HIT_COLUMNS, THUMB_SIDE, format_face_hits, format_hits, where_shown

__all__ = ["Curation", "HIT_COLUMNS", "SearchError", "THUMB_SIDE", "format_face_hits", "format_hits", "run_cli",
           "where_shown"]
