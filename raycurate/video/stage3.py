"""Stage 3 of a run's videos on their stored scores (plain code, no ray, no model): re-selection with other
weights or thresholds, and what a later run takes from the tables (what killed runs left of unfinished videos
is forgotten; the winners of finished videos not analysed yet join the image path). A run's own Stage 3
happens per video while it streams (:mod:`raycurate.video.finisher`); the scoring and the choice per video are
:mod:`raycurate.video.select`'s."""
from __future__ import annotations

from typing import Any, Sequence

from ..people.targets import PersonTarget
from ..settings import Stage3Settings, VideoSettings, as_dict
from ..store.schema import FRAMES_TABLE, STAGE3_TABLE, TABLE_NAME, VIDEOS_TABLE
from ..store.table import open_table, sql_in
from .scenes import scene_of
from .select import stage3_rows


def compute_stage3(db_uri: str, run_id: str, stage3: Stage3Settings, video: VideoSettings,
                   targets: Sequence[PersonTarget] = ()) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Stage 3 rows and winners from the ``frames`` and ``videos`` tables of a run, with the stage's own
    section (weights, threshold) and the video section's selection rules (scene bonus, separation, most
    frames, one per scene); with ``targets`` (``--person``) the main face must be one of them and the winners
    spread across head-pose bins. Reads stored scores only: no model is loaded."""
    frames = open_table(db_uri, FRAMES_TABLE)
    columns = ["video_id", "video_uri", "frame_index", "timestamp", "scene_index", "near_cut", "quality_sharpness",
               "quality_exposure", "quality_contrast", "face_count", "face_largest_area", "face_sharpness", "nsfw_score",
               "stage1_score", "stage2_score"]
    if targets:   # who is the main face, and its pose and expression
        columns += [c for c in ("face_embeddings", "face_embedding_model", "face_pose", "emotion_dominant")
                    if c in frames.schema.names]
    rows = frames.search().where(f"run_id = '{run_id}' AND stage2_passed = true").select(columns) \
        .limit(None).to_list()
    # scene numbers across the whole video (a split video's segments each saw only their own cuts)
    cuts: dict[str, set[int]] = {}
    for v in open_table(db_uri, VIDEOS_TABLE).search().where(f"run_id = '{run_id}'") \
            .select(["video_id", "cuts"]).limit(None).to_list():
        cuts.setdefault(v["video_id"], set()).update(v["cuts"] or [])
    by_video: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        r["scene_index"] = scene_of(r["frame_index"], sorted(cuts.get(r["video_id"], ())))
        by_video.setdefault(r["video_id"], []).append(r)
    out_rows: list[dict[str, Any]] = []
    winners: list[dict[str, Any]] = []
    for video_rows in by_video.values():
        video_rows.sort(key=lambda r: r["frame_index"])
        scored = stage3_rows(video_rows, weights=as_dict(stage3.weights), threshold=stage3.threshold,
                             scene_bonus=video.scene_bonus, min_separation=video.min_separation,
                             max_frames=video.max_frames, per_scene=video.scene_detection, targets=targets)
        by_index = {r["frame_index"]: r for r in video_rows}
        for r in scored:
            out_rows.append({**r, "run_id": run_id})
            if r["selected"]:
                f = by_index[r["frame_index"]]
                winners.append({"video_id": f["video_id"], "video_uri": f["video_uri"],
                                "frame_index": f["frame_index"], "timestamp": f["timestamp"],
                                "scene_index": f["scene_index"], "stage1_score": f["stage1_score"],
                                "stage2_score": f["stage2_score"], "stage3_score": r["stage3_score"]})
    return out_rows, winners


def forget_unfinished_videos(db_uri: str, finished: set[str]) -> int:
    """Forget what killed runs stored of the videos they had not finished (not in ``finished``: no
    ``videos_done`` row): their ``videos``, ``frames`` and ``stage3`` rows, of any run, so that a later run does
    them again from the start and nothing of them is stored twice. The number of videos forgotten."""
    tables = {}
    for name in (VIDEOS_TABLE, FRAMES_TABLE, STAGE3_TABLE):
        try:
            tables[name] = open_table(db_uri, name)
        except FileNotFoundError:
            continue
    seen: set[str] = set()
    for table in tables.values():
        seen.update(table.search().select(["video_id"]).limit(None).to_arrow().column("video_id").to_pylist())
    gone = sorted(seen - set(finished))
    if gone:
        where = sql_in("video_id", gone)
        for table in tables.values():
            table.delete(where)
    return len(gone)


def pending_winners(db_uri: str, finished: set[str]) -> list[dict[str, Any]]:
    """The winners (path, size, lineage, as the Stage 3 step returns them) of the ``finished`` videos whose file
    is not an ``images`` row yet: a run killed between a video's end and its winners' analysis left them."""
    import os

    try:
        stage3, frames = open_table(db_uri, STAGE3_TABLE), open_table(db_uri, FRAMES_TABLE)
    except FileNotFoundError:
        return []
    try:
        analysed = set(open_table(db_uri, TABLE_NAME).search().where("source_video_id IS NOT NULL").select(["uri"])
                       .limit(None).to_arrow().column("uri").to_pylist())
    except FileNotFoundError:
        analysed = set()
    chosen = [r for r in stage3.search().where("selected = true AND frame_path IS NOT NULL")
              .select(["video_id", "frame_index", "stage3_score", "frame_path"]).limit(None).to_list()
              if r["video_id"] in finished and r["frame_path"] not in analysed]
    if not chosen:
        return []
    vids = sql_in("video_id", sorted({c["video_id"] for c in chosen}))
    rows = {(r["video_id"], r["frame_index"]): r for r in frames.search().where(vids)
            .select(["video_id", "video_uri", "frame_index", "timestamp", "scene_index", "stage1_score",
                     "stage2_score"]).limit(None).to_list()}
    out = []
    for c in chosen:
        f = rows.get((c["video_id"], c["frame_index"]))
        path = c["frame_path"]
        if f is None or ("://" not in path and not os.path.exists(path)):
            continue
        size = os.path.getsize(path) if "://" not in path else 0
        out.append({**f, "stage3_score": c["stage3_score"], "path": path, "size": size})
    return out
