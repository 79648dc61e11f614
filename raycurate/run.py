"""One curation run: list -> Ray pipeline (:mod:`raycurate.engine`) -> gates -> export -> manifest.

Called by the CLI with a validated config; also usable from Python::

    from raycurate.config import load_config
    from raycurate.run import curate
    report = curate("photos/", out_dir="out", cfg=load_config())

What the run reports (counts, errors, the end-of-run summary) is :mod:`raycurate.run_report`'s.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

from tqdm import tqdm

from . import storage
from .console import console, say
from .analyzers import active_analyzers, build_analyzer
from .config import Settings, typed
from .gates import Gate, build_gates, kept_predicate
from .lock import hold
from .people.targets import load_targets
from .run_report import (MAX_LISTED, RunReport, count_rows, error_list, mean_ms, start_manifest, stored_counts,
                         video_report)
from .run_state import RUN_STATE, read_state, state_digest, write_state
from .sources import IMAGE, OTHER, VIDEO, FileRef, SourceError, exists, list_media

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


@dataclass
class _Run:
    """One run under way: where it writes, its state file, and what its manifest gathers."""
    run_id: str
    out_dir: str
    db_uri: str
    cfg: Mapping[str, Any]
    log: Callable[[str], None]
    out: storage.OutputDir
    state: dict[str, Any]
    resumed: dict[str, Any] | None
    manifest: dict[str, Any] = field(default_factory=dict)
    targets: Sequence[Any] = ()           # --person targets (raycurate.people.targets.PersonTarget)
    timings: dict[str, float] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)

    @cached_property
    def settings(self) -> Settings:
        """The run's typed settings (made once from ``cfg``)."""
        return typed(self.cfg)

    @property
    def where(self) -> str:
        """The SQL that picks this run's rows."""
        return f"run_id = '{self.run_id}'"


def curate(input_uri: str, *, out_dir: str, cfg: Mapping[str, Any], db_uri: str | None = None,
           argv: list[str] | None = None, log: Any = None, resume: bool = True,
           persons: Mapping[str, Sequence[str]] | None = None, wait: bool = False) -> RunReport:
    """Curate the images under ``input_uri`` into ``out_dir`` and the LanceDB at ``db_uri``.

    ``input_uri``, ``out_dir`` and ``db_uri`` may be ``s3://`` / ``gs://`` URIs (``cfg["storage"]``, else the
    environment, says how to reach them); with a bucket OUT, everything below is written there.

    Resume: while a run works, ``OUT/.raycurate-run.json`` names it (in the bucket, for a bucket OUT). A run
    started again with the same input, output, DB and configuration after a crash or a kill takes the killed
    run's id and skips the images whose rows it already stored (LanceDB appends are atomic: a row is stored
    whole or not at all); in the video path it skips the videos it had finished (their frames are stored)
    and does the others again, after deleting what it had stored of them.
    ``resume=False`` starts afresh.

    ``persons`` (name -> reference photos, ``--person``): only images and video frames showing one of them
    are kept (the gate ``person.target``); in the video path a target must be the main face and the winners
    spread across head-pose bins. A reference photo that cannot define its person raises
    :class:`~raycurate.people.targets.ReferenceError` before any work.

    One writer per OUT (:mod:`raycurate.lock`): OUT and the DB locked by another live run raise
    :class:`~raycurate.lock.LockHeld`; ``wait=True`` waits for that run instead.
    """
    log = log or say   # the console: the terminal even while Ray's and the libraries' output goes to OUT/logs/
    t_start = time.perf_counter()
    started_at = datetime.now(timezone.utc)
    run_id = f"{started_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    storage.configure(cfg.get("storage"))   # this process; Ray tasks get storage.resolved() from the engine
    out_dir = os.path.abspath(out_dir) if "://" not in out_dir else out_dir.rstrip("/")
    db_uri = db_uri or storage.join(out_dir, "db")
    if not exists(input_uri):
        raise SourceError(f"input not found: {input_uri}")
    targets = load_targets(persons or {}, typed(cfg), log)   # before any work: a bad reference photo fails
    out = _prepare_output(out_dir, db_uri)
    with hold(out_dir, db_uri, wait=wait, log=log, argv=argv) as lock:
        ctx = _start_state(out, out_dir, run_id, input_uri, db_uri, cfg, started_at, resume, log, persons)
        ctx.targets = targets

        files, by_type, do_video = _list_input(ctx, input_uri)
        enabled, skipped, analyzers, gates = _analysers(ctx, bool(targets))
        ctx.manifest = start_manifest(ctx.run_id, input_uri, ctx.out_dir, db_uri, cfg, files, by_type, do_video,
                                      started_at=started_at, argv=argv, analyzers=analyzers, skipped=skipped,
                                      gates=gates)
        if lock.notes:   # stale locks of dead runs taken over
            ctx.manifest["lock"] = {"took_over": lock.notes}
        images = list(by_type[IMAGE])
        lineage: dict[str, dict[str, Any]] = {}
        if images or do_video:
            _check_models(ctx, analyzers, do_video)
            _size_pools(ctx)
        if do_video:
            frame_files, lineage = _video_path(ctx, by_type[VIDEO])
            images += frame_files

        counts: dict[str, Any] = {"images": len(images), "photos": len(by_type[IMAGE]),
                                  "video_frames": len(images) - len(by_type[IMAGE]), "rows_written": 0,
                                  "decode_errors": 0, "analyzers": {}, "gates": {}, "kept": 0, "exact_duplicates": 0,
                                  "exported": 0}
        if images:
            _analyse_images(ctx, images, lineage)
            table, keep = _select(ctx, counts, enabled, gates)
            _people(ctx)
            _export(ctx, table, keep, counts)
            _maintain_indexes(ctx, table)
        else:
            out.write_bytes("metadata.jsonl", b"")
            log("[raycurate] no images to analyse: empty result")
        return _finish(ctx, counts, t_start)


def _start_state(out: storage.OutputDir, out_dir: str, run_id: str, input_uri: str, db_uri: str,
                 cfg: Mapping[str, Any], started_at: datetime, resume: bool, log: Callable[[str], None],
                 persons: Mapping[str, Sequence[str]] | None = None) -> _Run:
    """The run, its state file written: a killed run in OUT with the same input, DB and configuration is
    resumed (its id and its start are taken)."""
    digest = state_digest(input_uri, db_uri, {**cfg, "persons": dict(persons or {})})
    previous = read_state(out_dir) if resume else None
    resumed = previous if previous and previous.get("state") == "running" and previous.get("digest") == digest \
        else None
    if previous and previous.get("state") == "running" and not resumed and resume:
        log(f"[raycurate] an unfinished run {previous.get('run_id')} is in {out_dir} with another input or "
            "configuration: starting a new run")
    state = {"run_id": run_id, "digest": digest, "state": "running", "started_at": started_at.isoformat()}
    if resumed:
        run_id = resumed["run_id"]
        state.update(run_id=run_id, started_at=resumed["started_at"])
        log(f"[raycurate] resuming run {run_id} (started {resumed['started_at']})")
    try:
        write_state(out_dir, state)
    except OSError as exc:
        raise SourceError(storage.describe_error(out.uri(RUN_STATE), exc, "write")) from None
    return _Run(run_id=run_id, out_dir=out_dir, db_uri=db_uri, cfg=cfg, log=log, out=out, state=state,
                resumed=resumed)


def _list_input(ctx: _Run, input_uri: str) -> tuple[list[FileRef], dict[str, list[FileRef]], bool]:
    """The files under ``input_uri``, by media type, and whether the video path runs."""
    t = time.perf_counter()
    ctx.log(f"[raycurate] listing {input_uri}")
    cfg = ctx.cfg
    files = list_media(input_uri, max_files=cfg["input"]["max_files"], threads=cfg["input"]["read_threads"])
    ctx.timings["list"] = time.perf_counter() - t
    by_type = {kind: [f for f in files if f.media_type == kind] for kind in (IMAGE, VIDEO, OTHER)}
    ctx.log(f"[raycurate] {len(files)} files: {len(by_type[IMAGE])} images, {len(by_type[VIDEO])} videos, "
            f"{len(by_type[OTHER])} other")
    do_video = bool(by_type[VIDEO]) and cfg["video"]["enabled"]
    if by_type[VIDEO] and not do_video:
        ctx.log(f"[raycurate] video.enabled is false: {len(by_type[VIDEO])} videos listed and counted, not analysed")
    return files, by_type, do_video


def _analysers(ctx: _Run, person_gate: bool = False
               ) -> tuple[list[str], dict[str, str], dict[str, Any], list[Gate]]:
    """The analysers that run (built on the driver: no model loaded), those skipped and why, the gates."""
    settings, cfg = ctx.settings, ctx.cfg
    enabled, skipped = active_analyzers(settings.analyzers, settings.models)
    for name, why in skipped.items():
        ctx.log(f"[raycurate] analyser {name} skipped: {why}")
    analyzers = {name: build_analyzer(name, getattr(settings.analyzers, name), settings.models)  # no model loaded
                 for name in enabled}
    gates = build_gates(cfg["filter"], enabled)
    if person_gate:
        from .people.persons import PERSON_GATE

        gates.append(PERSON_GATE)
    return enabled, skipped, analyzers, gates


def _check_models(ctx: _Run, analyzers: Mapping[str, Any], do_video: bool) -> None:
    """Ray up, and the weights of every model the run needs verified on every node."""
    # ray is imported only when there is work for it
    from .engine import ensure_models_on_nodes, init_ray
    from .stages import STAGES

    cfg = ctx.cfg
    needed = [mid for a in analyzers.values() for mid in a.required_models()]
    if do_video:
        needed += [mid for cls in STAGES.values() for a in cls.build(ctx.settings).analyzers
                   for mid in a.required_models()]
    init_ray(cfg["ray"])
    t = time.perf_counter()
    ctx.manifest["model_check"] = ensure_models_on_nodes(needed, cfg["models"])
    ctx.timings["model_check"] = time.perf_counter() - t
    ctx.log(f"[raycurate] weights verified on {len(ctx.manifest['model_check'])} Ray node(s): "
            f"{', '.join(sorted(set(needed)))}")


def _size_pools(ctx: _Run) -> None:
    """Every ``auto`` batch size and ``ray.gpu_memory_gb`` resolved once, on the driver, from the cards Ray's
    nodes hold (:mod:`raycurate.gpu_sizing`): the run goes on with numbers; the manifest says why."""
    from .engine import sized_config

    ctx.cfg, sizing = sized_config(ctx.cfg)
    ctx.__dict__.pop("settings", None)   # the typed settings follow the sized config
    if sizing:
        ctx.manifest["gpu_sizing"] = sizing
        gpu = [f"{pool.split('.')[-1]} {r['batch_size']} ({r['gpu_fraction']:g} GPU)"
               for pool, r in sizing["pools"].items() if r["gpu_fraction"]]
        ctx.log(f"[raycurate] GPU sizing: {sizing['gpu_memory_gb']}" + (f"; batch sizes {', '.join(gpu)}" if gpu
                                                                         else "; every pool on the CPU"))


def _video_path(ctx: _Run, videos: Sequence[FileRef]) -> tuple[list[FileRef], dict[str, dict[str, Any]]]:
    """The cascade over ``videos``, each finished (Stage 3, its winners written to OUT/frames) as soon as its
    frames are scored; resumed, the videos finished before the interruption are skipped and their stored
    winners taken. The winners' files and their lineage, for the image path."""
    from .engine import run_video_pipeline
    from .video.frames import winner_files
    from .video.stage3 import finished_videos, forget_unfinished_videos, stored_winners

    cfg, manifest = ctx.cfg, ctx.manifest
    t = time.perf_counter()
    todo, winners, vres = list(videos), [], None
    if ctx.resumed:
        done = finished_videos(ctx.db_uri, ctx.run_id)
        forget_unfinished_videos(ctx.db_uri, ctx.run_id, set(done.values()))
        todo = [v for v in videos if v.uri not in done]
        winners = stored_winners(ctx.db_uri, ctx.run_id)
        manifest.setdefault("resumed", {})["videos_skipped"] = len(videos) - len(todo)
        ctx.log(f"[raycurate] video path: {len(videos) - len(todo)} videos finished before the interruption "
                f"(their {len(winners)} winners kept); {len(todo)} to go")
    if todo:
        ctx.log(f"[raycurate] video path: {len(todo)} videos through the cascade")
        vres = run_video_pipeline(todo, cfg, db_uri=ctx.db_uri, run_id=ctx.run_id,
                                  frames_dir=storage.join(ctx.out_dir, "frames"), targets=ctx.targets,
                                  progress_file=_progress_file(ctx, "videos"))
        winners += vres.winners
        manifest.setdefault("faults", {})["video"] = vres.faults
    ctx.timings["video_path"] = time.perf_counter() - t
    frame_files, lineage = winner_files(winners)
    manifest["video"] = video_report(ctx.db_uri, ctx.run_id, cfg, frame_files=len(frame_files),
                                     people=bool(ctx.targets))
    manifest["video"]["counts"]["winners_read_again"] = sum(1 for w in winners if w.get("read_again"))
    manifest["ray_video"] = {name: {"num_cpus": r.num_cpus, "num_gpus": r.num_gpus, "min_actors": r.min_actors,
                                    "max_actors": r.max_actors} for name, r in (vres.actors if vres else {}).items()}
    ctx.errors += [{"uri": v["uri"], "stage": "video", "error": v["error"]}
                   for v in manifest["video"]["videos"] if v["error"]]
    return frame_files, lineage


def _progress_file(ctx: _Run, what: str) -> str | None:
    """``OUT/logs/progress-{what}.json``, the live progress the UI reads (a local OUT only)."""
    return None if ctx.out.remote else os.path.join(ctx.out_dir, "logs", f"progress-{what}.json")


def _analyse_images(ctx: _Run, images: Sequence[FileRef], lineage: Mapping[str, Mapping[str, Any]]) -> None:
    """The image path on Ray over ``images`` (resumed: those this run has not stored yet)."""
    from .engine import run_pipeline
    from .store.table import open_or_create_images_table

    cfg, manifest = ctx.cfg, ctx.manifest
    todo = images
    if ctx.resumed:   # rows this run stored before it was killed
        stored = open_or_create_images_table(ctx.db_uri).search().where(ctx.where) \
            .select(["uri"]).limit(None).to_arrow().column("uri").to_pylist()
        done = set(stored)
        todo = [f for f in images if f.uri not in done]
        manifest.setdefault("resumed", {}).update(run_started_at=ctx.state["started_at"],
                                                  rows_already_stored=len(stored),
                                                  images_skipped=len(images) - len(todo))
        ctx.log(f"[raycurate] {len(images) - len(todo)} images already stored by this run: skipped; "
                f"{len(todo)} to go")
    t = time.perf_counter()
    if todo:
        result = run_pipeline(todo, cfg, db_uri=ctx.db_uri, run_id=ctx.run_id, lineage=lineage,
                              progress_file=_progress_file(ctx, "images"))
        manifest.setdefault("faults", {})["images"] = result.faults
        manifest["ray"] = result.pools   # each analyser's pool: resources, batch size, the analysers sharing it
    ctx.timings["pipeline"] = time.perf_counter() - t


def _select(ctx: _Run, counts: dict[str, Any], enabled: list[str], gates: Sequence[Gate]) -> tuple[Any, str]:
    """Counts and errors from the stored rows, duplicates marked; the images table and the SQL of the kept rows."""
    from .store.table import open_images_table

    t = time.perf_counter()
    table = open_images_table(ctx.db_uri)
    run = ctx.where
    if ctx.targets:
        from .people.persons import mark_persons

        ctx.manifest["persons"] = mark_persons(table, run, ctx.targets)
    counts.update(stored_counts(table, run, enabled, gates))
    ctx.errors += error_list(table, run, enabled)
    keep = f"{run} AND {kept_predicate(gates, enabled)}"
    if ctx.cfg["dedup"]["enabled"]:
        _dedup(ctx, table, counts)
        keep += " AND duplicate_of IS NULL"
    ctx.manifest["mean_ms_per_image"] = mean_ms(table, f"{run} AND error IS NULL", ["decode"] + enabled)
    ctx.timings["select"] = time.perf_counter() - t
    return table, keep


def _dedup(ctx: _Run, table: Any, counts: dict[str, Any]) -> None:
    """Duplicates marked in the images table, then (the video path ran) in the frames table, alike."""
    from .store.dedup import dedup_frames, dedup_table

    dcfg, run = ctx.cfg["dedup"], ctx.where
    options = {k: dcfg[k] for k in ("columns", "keep_by", "k", "index_min_rows", "index_type", "nprobes",
                                    "refine_factor", "method", "block_min_rows")}
    t_dedup = time.perf_counter()
    dres = dedup_table(table, run_id=ctx.run_id, progress=ctx.log, **options)
    ctx.timings["dedup"] = time.perf_counter() - t_dedup
    ctx.manifest["dedup"] = dres.as_dict()
    counts["exact_duplicates"] = count_rows(table, f"{run} AND duplicate_column = 'id' AND duplicate_of IS NOT NULL")
    counts["near_duplicates"] = count_rows(table, f"{run} AND duplicate_of IS NOT NULL AND duplicate_column != 'id'")
    if "video" in ctx.manifest:
        from .store import FRAMES_TABLE, open_table

        t_dedup = time.perf_counter()
        try:
            frames = open_table(ctx.db_uri, FRAMES_TABLE)
        except FileNotFoundError:       # no video got as far as its frames
            return
        ctx.manifest["dedup_frames"] = dedup_frames(frames, run_id=ctx.run_id, progress=ctx.log, **options).as_dict()
        ctx.timings["dedup_frames"] = time.perf_counter() - t_dedup


def _people(ctx: _Run) -> None:
    """Faces to the faces table, grouped into identities (:mod:`raycurate.people`); its summary in the manifest."""
    people = ctx.settings.people
    if people.enabled:
        from .people import index_run

        t = time.perf_counter()
        ctx.manifest["people"] = index_run(ctx.db_uri, ctx.run_id, people, ctx.targets, ctx.settings.dedup)
        ctx.timings["people"] = time.perf_counter() - t


def _export(ctx: _Run, table: Any, keep: str, counts: dict[str, Any]) -> None:
    """The kept rows exported to OUT (or, export off, only counted)."""
    cfg = ctx.cfg
    if cfg["export"]["enabled"]:
        from .export import export_kept, export_options

        t = time.perf_counter()
        with tqdm(total=count_rows(table, keep), desc="export", unit="img", file=console(),
                  disable=not console().isatty()) as bar:
            exp = export_kept(table, keep, ctx.out_dir, copy_images=cfg["export"]["copy_images"],
                              threads=cfg["export"]["copy_threads"], progress=bar,
                              db_uri=ctx.db_uri, **export_options(ctx.settings.export))
        ctx.timings["export"] = time.perf_counter() - t
        counts.update(kept=exp.kept, exported=exp.exported, export_errors=exp.copy_errors)
        if not cfg["dedup"]["enabled"]:
            counts["exact_duplicates"] = exp.exact_duplicates
    else:
        counts["kept"] = count_rows(table, keep)
    ctx.manifest["keep_sql"] = keep


def _maintain_indexes(ctx: _Run, table: Any) -> None:
    from .store.dedup import maintain

    dcfg = ctx.cfg["dedup"]
    t = time.perf_counter()
    ctx.manifest["indexes"] = maintain(table, vector_columns=[c for c, v in dcfg["columns"].items() if v is not None],
                                       index_min_rows=dcfg["index_min_rows"], index_type=dcfg["index_type"])
    ctx.timings["indexes"] = time.perf_counter() - t


def _finish(ctx: _Run, counts: dict[str, Any], t_start: float) -> RunReport:
    """manifest.json written, the state file marked finished; the report."""
    manifest = ctx.manifest
    ctx.timings["total"] = time.perf_counter() - t_start
    errors_total = counts["decode_errors"] + sum(a["errored"] for a in counts["analyzers"].values()) + \
        (manifest["video"]["counts"]["video_errors"] if "video" in manifest else 0)
    manifest.update(counts=counts, errors=ctx.errors[:MAX_LISTED], errors_total=errors_total,
                    timings_s={k: round(v, 3) for k, v in ctx.timings.items()},
                    finished_at=datetime.now(timezone.utc).isoformat())
    from .report import report_run

    manifest["report"] = report_run(ctx.out, ctx.db_uri, manifest, ctx.log)   # OUT/report.html, from the above
    manifest["timings_s"]["report"] = manifest["report"]["seconds"]
    ctx.out.write_bytes("manifest.json", json.dumps(manifest, indent=2, default=str).encode("utf-8"))
    write_state(ctx.out_dir, {**ctx.state, "state": "finished", "finished_at": manifest["finished_at"]})
    return RunReport(run_id=ctx.run_id, out_dir=ctx.out_dir, db_uri=ctx.db_uri, manifest=manifest)
