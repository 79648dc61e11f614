"""raycurate."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .search import Curation
    from .settings import Settings

__version__ = "0.1.0"


def open(db_uri: str, *, models_dir: str | None = None, thumbs_dir: str | None = None,  # noqa: A001
         max_side: int | None = None, device: str = "cpu", settings: Settings | None = None) -> Curation:
    """The curated DB at ``db_uri`` (a LanceDB folder, or a run's OUT folder holding ``db/``), opened
    for search: ``raycurate.open("out/sample/db").search(image="query.jpg", k=10)``. See
    :mod:`raycurate.search`; lancedb is imported here, not when raycurate is. ``settings``: typed settings
    (:func:`raycurate.config.typed`; ``search.nprobes`` ...), default: the configuration's defaults."""
    from .config import load_settings
    from .search import Curation

    return Curation(db_uri, models_dir=models_dir, thumbs_dir=thumbs_dir, max_side=max_side, device=device,
                    settings=settings or load_settings())
