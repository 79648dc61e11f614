"""Data for the Plots tab: score histograms (kept vs dropped) and the per-stage funnel of a run,
as pandas frames for gradio's native bar plots. No gradio here."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

# (column, title); integer-valued columns get one bar per value
SCORES: list[tuple[str, str]] = [
    ("quality_sharpness", "Sharpness (variance of the Laplacian)"),
    ("quality_exposure", "Exposure score"),
    ("face_count", "Faces per image"),
    ("face_largest_area", "Largest face (fraction of the image)"),
    ("nsfw_score", "NSFW score"),
    ("stage3_score", "Video Stage 3 score (frames only)"),
    ("quality_contrast", "Contrast"),
    ("clip_aesthetic", "Aesthetic score (CLIP)"),
]
INTEGER_COLUMNS = {"face_count", "pose_count"}
FUNNEL_MEASURES = ["kept", "dropped", "errors", "pending"]
FUNNEL_COLOURS = {"kept": "#2ca02c", "dropped": "#9e9e9e", "errors": "#d62728", "pending": "#d9d9d9"}
HIST_COLOURS = {"kept": "#2ca02c", "not kept": "#9e9e9e"}
HIST_COLUMNS = ["bin", "count", "rows"]


def _label(lo: float) -> str:
    """A bin's label: its lower edge, short (``≥ 0.25``)."""
    return f"≥ {lo:.3g}"


def histogram(groups: dict[str, Sequence[float]], *, integer: bool = False, bins: int = 12
              ) -> tuple[pd.DataFrame, list[str]]:
    """Counts per bin for each group (e.g. kept / not kept) over common bins; returns the long frame
    (bin, count, rows) and the bins' order."""
    values = [v for vs in groups.values() for v in vs if v is not None and math.isfinite(v)]
    if not values:
        return pd.DataFrame({c: [] for c in HIST_COLUMNS}), []
    lo, hi = min(values), max(values)
    if integer:
        edges = np.arange(math.floor(lo), math.floor(hi) + 2, dtype=float)
        labels = [f"{int(e)}" for e in edges[:-1]]
    else:
        if hi <= lo:
            hi = lo + 1e-6
        edges = np.linspace(lo, hi, bins + 1)
        labels = [_label(a) for a in edges[:-1]]
    records = []
    for name, vs in groups.items():
        counts, _ = np.histogram([v for v in vs if v is not None and math.isfinite(v)], bins=edges)
        records += [{"bin": label, "count": int(c), "rows": name} for label, c in zip(labels, counts)]
    return pd.DataFrame.from_records(records, columns=HIST_COLUMNS), labels


def funnel(rows: Sequence[Sequence[Any]]) -> tuple[pd.DataFrame, list[str]]:
    """Rows of :data:`raycurate.ui.progress.COLUMNS` (a run's funnel, or its live counts) as a stacked-bar frame
    (stage, count, measure): each bar's height is the stage's input, split into kept, dropped,
    errors and (while a run goes) pending."""
    records = []
    order = []
    for stage, n_in, kept, dropped, errors in rows:
        order.append(stage)
        pending = max(0, int(n_in) - int(kept) - int(dropped) - int(errors))
        for measure, value in zip(FUNNEL_MEASURES, (kept, dropped, errors, pending)):
            records.append({"stage": stage, "count": int(value), "measure": measure})
    return pd.DataFrame.from_records(records, columns=["stage", "count", "measure"]), order


__all__ = ["FUNNEL_COLOURS", "FUNNEL_MEASURES", "HIST_COLOURS", "INTEGER_COLUMNS", "SCORES", "funnel",
           "histogram"]
