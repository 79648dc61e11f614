"""What the report says about the people in a run's images: how many faces showed each expression (the emotion
analyser's ``emotion_faces``, every face), and of the largest person in each image the body's shot (full body,
upper body, from ``pose_full_body`` and ``pose_keypoints`` as the captions read them) and orientation
(``pose_orientation``). Counts only; a column the table lacks (an analyser that never ran) gives no tally."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping

from ..export.caption_parts import upper_body
from ..store.schema import TABLE_NAME

COLUMNS = ("emotion_faces", "pose_count", "pose_full_body", "pose_keypoints", "pose_orientation")


@dataclass
class Tally:
    title: str
    counts: list[tuple[str, int]]   # label, count; most first


def body_shot(row: Mapping[str, Any]) -> str:
    """full body | upper body | partial (a body is seen, not down to its hips) | no body."""
    if not row.get("pose_count"):
        return "no body"
    if (row.get("pose_full_body") or [None])[0] is True:
        return "full body"
    return "upper body" if upper_body(row) else "partial"


def people_tallies(tables: Mapping[str, Any], run: str) -> list[Tally]:
    """The expression, body-shot and orientation counts over the run's rows of ``images`` (see the module)."""
    images = tables.get(TABLE_NAME)
    if images is None:
        return []
    have = [c for c in COLUMNS if c in images.schema.names]
    if not have:
        return []
    rows = images.search().where(run).select(have).limit(None).to_list()
    out = []
    if "emotion_faces" in have:
        faces = Counter(label for r in rows for label in r.get("emotion_faces") or [] if label)
        if faces:
            out.append(Tally("Expression of every face (emotion_faces)", faces.most_common()))
    if "pose_count" in have:
        seen = [r for r in rows if r.get("pose_count") is not None]
        if seen:
            out.append(Tally("Body shot of the largest person (pose)", Counter(map(body_shot, seen)).most_common()))
            sides = Counter((r.get("pose_orientation") or [None])[0] for r in seen if r.get("pose_count"))
            out.append(Tally("Body orientation of the largest person (pose_orientation)",
                             [(str(k), n) for k, n in sides.most_common()]))
    return [t for t in out if t.counts]
