"""Gates: decisions over stored scores, as LanceDB SQL predicates.

Analysers score; gates decide. Every gate is a SQL predicate over columns in
the ``images`` table, so changing a threshold and re-selecting never runs a
model again. A gate belongs to the analyser whose columns it reads and only
applies when that analyser ran.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .settings import FilterSettings


@dataclass(frozen=True)
class Gate:
    name: str        # e.g. "face.min_faces"
    analyzer: str    # the analyser whose columns it reads ("" for core columns / user SQL)
    predicate: str   # SQL that is true for rows that pass


def build_gates(spec: FilterSettings, analyzers: Sequence[str]) -> list[Gate]:
    """The gates of the ``filter`` settings, for the analysers that ran."""
    gates: list[Gate] = []
    if spec.min_side is not None:
        n = int(spec.min_side)
        gates.append(Gate("min_side", "", f"width >= {n} AND height >= {n}"))
    if "quality" in analyzers and spec.drop_blurry:
        gates.append(Gate("quality.drop_blurry", "quality", "quality_is_blurry = false"))
    if "quality" in analyzers and spec.min_sharpness is not None:
        gates.append(Gate("quality.min_sharpness", "quality", f"quality_sharpness >= {float(spec.min_sharpness)!r}"))
    if "face" in analyzers:
        if spec.min_faces is not None:
            gates.append(Gate("face.min_faces", "face", f"face_count >= {int(spec.min_faces)}"))
        if spec.max_faces is not None:
            gates.append(Gate("face.max_faces", "face", f"face_count <= {int(spec.max_faces)}"))
    if "face_features" in analyzers and spec.max_abs_yaw is not None:
        # the largest face's yaw: InsightFace's 3D head pose, else the 5-point estimate (face_pose_source)
        gates.append(Gate("face_features.max_abs_yaw", "face_features",
                          f"abs(face_pose[1][2]) <= {float(spec.max_abs_yaw)!r}"))
    if "nsfw" in analyzers and spec.max_nsfw_score is not None:
        gates.append(Gate("nsfw.max_score", "nsfw", f"nsfw_score <= {float(spec.max_nsfw_score)!r}"))
    if spec.where:
        gates.append(Gate("where", "", f"({spec.where})"))
    return gates


def ok_predicate(analyzers: Sequence[str]) -> str:
    """Rows that decoded and that every analyser handled without error."""
    return " AND ".join(["error IS NULL"] + [f"{name}_error IS NULL" for name in analyzers])


def kept_predicate(gates: Sequence[Gate], analyzers: Sequence[str]) -> str:
    return " AND ".join([ok_predicate(analyzers)] + [f"({g.predicate})" for g in gates])


MANUAL_LABEL = "manual_label"   # the images table's column of manual decisions (keep / reject / null)


def with_manual_labels(predicate: str) -> str:
    """``predicate`` with the manual labels applied: ``keep`` brings in a row that decoded whatever the
    gates say, ``reject`` takes a row out. Only for tables that hold the :data:`MANUAL_LABEL` column."""
    return (f"(({predicate}) OR ({MANUAL_LABEL} = 'keep' AND error IS NULL)) "
            f"AND ({MANUAL_LABEL} IS NULL OR {MANUAL_LABEL} != 'reject')")
