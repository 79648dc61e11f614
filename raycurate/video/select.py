"""Stage 3: the ensemble score of each frame that passed Stages 1-2, and the final choice per video.

Computed from stored scores only (no model runs): re-selecting with other
weights or thresholds reads the ``frames`` table again and nothing else.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..stages import contrast_part, face_area_part, face_sharpness_part, sharpness_part
from .sampling import Candidate, select_frames

PARTS = ("face_sharpness", "sharpness", "exposure", "face_area", "one_face", "contrast", "nsfw_safe")


def ensemble_parts(row: Mapping[str, Any]) -> dict[str, float]:
    """The parts of the Stage 3 score, each in [0, 1]."""
    return {
        "face_sharpness": face_sharpness_part(row),
        "sharpness": sharpness_part(row["quality_sharpness"]),
        "exposure": float(row["quality_exposure"]),
        "face_area": face_area_part(row),
        "one_face": 1.0 if row["face_count"] == 1 else 0.0,
        "contrast": contrast_part(row["quality_contrast"]),
        "nsfw_safe": 1.0 - float(row["nsfw_score"]),
    }


def stage3_rows(frames: Sequence[Mapping[str, Any]], *, weights: Mapping[str, float], threshold: float,
                scene_bonus: float, min_separation: int, max_frames: int | None, per_scene: bool
                ) -> list[dict[str, Any]]:
    """One Stage 3 row per frame of one video that passed Stage 2; ``selected`` marks the winners."""
    total = sum(weights.values()) or 1.0
    rows = []
    for f in frames:
        parts = ensemble_parts(f)
        base = sum(weights.get(k, 0.0) * parts[k] for k in PARTS) / total
        score = base * (1.0 + scene_bonus) if f["near_cut"] else base
        rows.append({"video_id": f["video_id"], "frame_index": f["frame_index"], "stage3_base": base,
                     "stage3_score": score, "stage3_passed": score >= threshold, "selected": False,
                     **{f"stage3_{k}": v for k, v in parts.items()}, "_scene": f["scene_index"]})
    passed = [Candidate(r["frame_index"], r["stage3_score"], r["_scene"]) for r in rows if r["stage3_passed"]]
    chosen = {c.index for c in select_frames(passed, min_separation=min_separation, max_frames=max_frames,
                                              per_scene=per_scene)}
    for r in rows:
        r["selected"] = r["frame_index"] in chosen
        del r["_scene"]
    return rows
