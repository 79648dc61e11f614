"""Settings of search over a curated DB (raycurate/search): how a query uses a column's vector index."""
from __future__ import annotations

from dataclasses import dataclass

from .schema import Section, positive, setting


@dataclass(frozen=True)
class SearchSettings(Section):
    nprobes: int = setting(32, "IVF partitions probed at least per query (more when a narrow where leaves too "
                           "few candidates); dedup's are dedup.nprobes", positive())
    refine_factor: int = setting(10, "k x this ANN candidates re-ranked on the stored vectors, so the distances "
                                 "returned are exact", positive())
