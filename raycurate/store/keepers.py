"""Keeper-first grouping: near-duplicate groups that never chain.

The rule (dedup's, for the ``images`` and the ``frames`` table alike):

    Take the content ids best first. An id that no keeper has claimed becomes a keeper, and claims every
    unclaimed id it has a pair with (a pair: the two are within a vector column's threshold).

Invariant: **every claimed id has a pair with its own keeper**, so it lies within that column's threshold of
the keeper itself, never merely of some other member. A slow zoom or pan, whose frames each lie near the
next, cannot walk a group from one shot to another: a frame beyond the threshold of the keeper is not
claimed by it, and starts (or joins) a group of its own. Keepers are never claimed, so no keeper is marked.

Only pairs that were found count: pairs are searched for the new rows (their ``k`` nearest per column) and
remembered from earlier marks. Where two rows were never compared the rule keeps both: a group can be split,
never stretched beyond the threshold.
"""
from __future__ import annotations

from typing import Mapping, Sequence

Pair = tuple[str, str]
Claim = tuple[str, float, str]      # (keeper, distance to it, the column of the pair)


def keeper_first(order: Sequence[str], pairs: Mapping[Pair, tuple[float, str]]) -> dict[str, Claim | None]:
    """Each id of ``order`` (best first) -> ``None`` for a keeper, else (its keeper, the pair's distance, the
    pair's column). ``pairs`` maps (a, b) to (distance, column); pairs naming an id outside ``order`` are
    ignored. A claimed id joins the first keeper (the best) it has a pair with."""
    members = set(order)
    near: dict[str, list[tuple[float, str, str]]] = {}
    for (a, b), (dist, column) in pairs.items():
        if a in members and b in members and a != b:
            near.setdefault(a, []).append((dist, b, column))
            near.setdefault(b, []).append((dist, a, column))
    owner: dict[str, Claim | None] = {}
    for cid in order:
        if cid in owner:
            continue
        owner[cid] = None
        for dist, other, column in sorted(near.get(cid, ())):
            if other not in owner:
                owner[other] = (cid, dist, column)
    return owner
