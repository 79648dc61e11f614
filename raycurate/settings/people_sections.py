"""Settings of the people index: faces stored in LanceDB and grouped into identities (raycurate/people)."""
from __future__ import annotations

from dataclasses import dataclass

from .schema import DISTANCE, Section, setting


@dataclass(frozen=True)
class PeopleSettings(Section):
    enabled: bool = setting(True, "after dedup, every face goes to the faces table and is grouped into identities "
                            "(identities table; images get identity_id / identity_ids)")
    threshold_arcface: float = setting(0.5, "cosine distance to an identity's centroid at or below which an "
                                       "ArcFace face may join it (not measured here: no ArcFace weights)", DISTANCE)
    threshold_dlib: float = setting(0.06, "the same for dlib vectors (chosen on tuning data only by "
                                    "scripts/tune_identities.py's rule)", DISTANCE)
    margin_arcface: float = setting(0.15, "an ArcFace face joins its nearest identity only when at least this much "
                                    "closer to it than to the second-nearest, else it stays unknown (not measured: "
                                    "dlib's margin/threshold ratio)", DISTANCE)
    margin_dlib: float = setting(0.0175, "the same for dlib vectors (scripts/tune_identities.py); a face seeds a "
                                 "new identity only beyond threshold + margin of every identity", DISTANCE)
