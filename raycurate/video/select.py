"""Stage 3: the ensemble score of each frame that passed Stages 1-2, and the final choice per video.

Computed from stored scores only (no model runs): re-selecting with other
weights or thresholds reads the ``frames`` table again and nothing else.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..people.targets import PersonTarget, persons_in
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


YAW_BINS = ((20.0, "frontal"), (50.0, "three-quarter"), (float("inf"), "profile"))   # |yaw| below the bound
PITCH_LEVEL = 10.0   # degrees: |pitch| within this is level; above, up (pitch > 0: looks up), below, down


def pose_bin(row: Mapping[str, Any]) -> str:
    """The main face's head-pose bin and expression: ``three-quarter/level/happy`` (``unknown`` parts where a
    measure is missing)."""
    poses = row.get("face_pose") or []
    pose = poses[0] if poses else None
    if pose is None:
        yaw_bin = pitch_bin = "unknown"
    else:
        pitch, yaw = float(pose[0]), float(pose[1])
        yaw_bin = next(name for bound, name in YAW_BINS if abs(yaw) < bound)
        pitch_bin = "level" if abs(pitch) <= PITCH_LEVEL else ("up" if pitch > 0 else "down")
    return f"{yaw_bin}/{pitch_bin}/{row.get('emotion_dominant') or 'unknown'}"


def stage3_rows(frames: Sequence[Mapping[str, Any]], *, weights: Mapping[str, float], threshold: float,
                scene_bonus: float, min_separation: int, max_frames: int | None, per_scene: bool,
                targets: Sequence[PersonTarget] = ()) -> list[dict[str, Any]]:
    """One Stage 3 row per frame of one video that passed Stage 2; ``selected`` marks the winners.

    With ``targets`` (``--person``), a frame passes only when its main face is one of them
    (``stage3_target``), and the winners spread across head-pose and expression bins (``stage3_bin``)."""
    total = sum(weights.values()) or 1.0
    rows = []
    for f in frames:
        parts = ensemble_parts(f)
        base = sum(weights.get(k, 0.0) * parts[k] for k in PARTS) / total
        score = base * (1.0 + scene_bonus) if f["near_cut"] else base
        shown = persons_in(f.get("face_embeddings"), f.get("face_embedding_model"), targets, main_only=True) \
            if targets else []
        rows.append({"video_id": f["video_id"], "frame_index": f["frame_index"], "stage3_base": base,
                     "stage3_score": score, "stage3_passed": score >= threshold and (bool(shown) or not targets),
                     "selected": False, "stage3_target": ",".join(shown) or None,
                     "stage3_bin": pose_bin(f) if targets else None,
                     **{f"stage3_{k}": v for k, v in parts.items()}, "_scene": f["scene_index"]})
    passed = [Candidate(r["frame_index"], r["stage3_score"], r["_scene"], r["stage3_bin"] or "")
              for r in rows if r["stage3_passed"]]
    chosen = {c.index for c in select_frames(passed, min_separation=min_separation, max_frames=max_frames,
                                              per_scene=per_scene, spread=bool(targets))}
    for r in rows:
        r["selected"] = r["frame_index"] in chosen
        del r["_scene"]
    return rows
