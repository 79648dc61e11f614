"""Settings of the people index: faces stored in LanceDB and grouped into identities (raycurate/people)."""
from __future__ import annotations

from dataclasses import dataclass

from .schema import DISTANCE, Section, setting


@dataclass(frozen=True)
class PeopleSettings(Section):
    enabled: bool = setting(True, "after dedup, every face goes to the faces table and is grouped into identities "
                            "(identities table; images get identity_id / identity_ids)")
    threshold_arcface: float = setting(0.5, "cosine distance to an identity's centroid at or below which an "
                                       "ArcFace face joins it", DISTANCE)
    threshold_dlib: float = setting(0.095, "the same for dlib vectors (measured: scripts/eval_identities.py; "
                                    "its published Euclidean 0.6 is ~0.09)", DISTANCE)
