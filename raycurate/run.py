"""One curation run: list -> ingest -> Ray pipeline (:mod:`raycurate.engine`) -> gates -> export -> manifest.

Called by the CLI with the typed settings it built once; also usable from Python::

    from raycurate.config import load_settings
    from raycurate.run import curate
    report = curate("photos/", out_dir="out", settings=load_settings())

The DB is a catalogue: a run analyses only the contents it does not hold yet (:mod:`raycurate.ingest`), then
OUT describes the whole curated set the DB holds (the gates and the export run over every stored row). What
the run reports (counts, errors, the end-of-run summary) is :mod:`raycurate.run_report`'s.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

from . import curated_set, storage
from .console import say
from .analyzers import active_analyzers, build_analyzer
from .gates import Gate, build_gates
from .ingest import Catalogue, Ingest, plan_ingest, record_names
from .lock import hold
from .people.targets import load_targets
from .run_report import MAX_LISTED, RunReport, record_funnel, start_manifest, video_report
from .run_state import RUN_STATE, write_state
from .listing import Listing, lies_under, list_input
from .settings import Settings
from .sources import IMAGE, OTHER, VIDEO, FileRef, SourceError, exists
from .store.health import check_db

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
    """One run under way: where it writes, its settings (typed; replaced once by the sized ones when the
    pools are sized), its state file, and what its manifest gathers."""
    run_id: str
    out_dir: str
    db_uri: str
    settings: Settings
    log: Callable[[str], None]
    out: storage.OutputDir
    state: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)
    targets: Sequence[Any] = ()           # --person targets (raycurate.people.targets.PersonTarget)
    timings: dict[str, float] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def where(self) -> str:
        """The SQL that picks this run's rows."""
        from .store.table import sql_str

        return f"run_id = {sql_str(self.run_id)}"


def curate(input_uri: str, *, out_dir: str, settings: Settings, db_uri: str | None = None,
           argv: list[str] | None = None, log: Any = None,
           persons: Mapping[str, Sequence[str]] | None = None, wait: bool = False) -> RunReport:
    """Curate the images and videos under ``input_uri`` into the catalogue at ``db_uri`` (default ``OUT/db``),
    then export the whole curated set it holds to ``out_dir``.

    ``input_uri``, ``out_dir`` and ``db_uri`` may be ``s3://`` / ``gs://`` URIs (``settings.storage``, else the
    environment, says how to reach them); with a bucket OUT, everything below is written there.

    Only new content is analysed (:mod:`raycurate.ingest`): the same bytes under several names are read and
    analysed once, and what the catalogue already holds is skipped. A run killed half-way is resumed by
    running it again: the rows it stored stay (LanceDB appends are atomic, and a content's row is written
    once), the videos it had not finished are forgotten and done again. While it works,
    ``OUT/.raycurate-run.json`` names the run.

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
    storage.configure(settings.storage)   # this process; Ray tasks get storage.resolved() from the engine
    out_dir = os.path.abspath(out_dir) if "://" not in out_dir else out_dir.rstrip("/")
    db_uri = db_uri or storage.join(out_dir, "db")
    if not exists(input_uri):
        raise SourceError(f"input not found: {input_uri}")
    _check_apart(input_uri, out_dir)
    targets = load_targets(persons or {}, settings, log)   # before any work: a bad reference photo fails
    out = _prepare_output(out_dir, db_uri)
    with hold(out_dir, db_uri, wait=wait, log=log, argv=argv) as lock:   # one writer per OUT and DB
        check_db(db_uri)   # a damaged DB: one line (raycurate db recover), before any work
        ctx = _start_state(out, out_dir, run_id, db_uri, settings, started_at, log)
        ctx.targets = targets
        try:
            return _curate(ctx, input_uri, argv, started_at, t_start, lock.notes)
        except Exception as exc:
            _mark_failed(ctx, exc)
            raise


def _curate(ctx: _Run, input_uri: str, argv: list[str] | None, started_at: datetime, t_start: float,
            lock_notes: Sequence[str]) -> RunReport:
    """The run, OUT and its DB held: list, ingest, the video and image paths, the curated set, the manifest."""
    log, db_uri = ctx.log, ctx.db_uri
    listing, by_type, do_video = _list_input(ctx, input_uri)
    enabled, skipped, analyzers, gates = _analysers(ctx, bool(ctx.targets))
    ctx.manifest = start_manifest(ctx.run_id, input_uri, ctx.out_dir, db_uri, ctx.settings, listing, by_type,
                                  do_video, started_at=started_at, argv=argv, analyzers=analyzers, skipped=skipped,
                                  gates=gates)
    if lock_notes:   # stale locks of dead runs taken over
        ctx.manifest["lock"] = {"took_over": list(lock_notes)}
    work, catalogue, pending = _ingest(ctx, by_type[IMAGE] + (by_type[VIDEO] if do_video else []), do_video, enabled)
    frames = 0
    if work.images or work.videos or pending:
        _check_models(ctx, analyzers, do_video)
        _size_pools(ctx)
        frames = _analyse(ctx, work.images, work.videos, pending)

    counts: dict[str, Any] = {"images": len(work.images) + frames, "photos": len(work.images),
                              "video_frames": frames, "rows_written": 0,
                              "decode_errors": 0, "analyzers": {}, "gates": {}, "kept": 0, "exact_duplicates": 0,
                              "exported": 0, "catalogue": 0, "duplicate_files": work.duplicate_files}
    ctx.manifest["ingest"]["names_recorded"] = record_names(work, catalogue, db_uri, ctx.run_id)
    table = curated_set.catalogue_table(db_uri)
    pending = ctx.manifest["curated_runs"] = curated_set.pending_runs(db_uri)   # this run's, a killed one's
    if table is not None:
        keep = curated_set.select(ctx, table, counts, enabled, gates, pending)
        curated_set.people(ctx, pending)
        curated_set.export(ctx, table, keep, counts)
        if pending:
            curated_set.maintain_indexes(ctx, table)
    else:
        ctx.out.write_bytes("metadata.jsonl", b"")
        log("[raycurate] no images to analyse: empty result")
    return _finish(ctx, counts, t_start)


def _check_apart(input_uri: str, out_dir: str) -> None:
    """INPUT must not lie inside OUT (OUT inside INPUT is fine: it is never listed)."""
    if storage.is_remote(input_uri) != storage.is_remote(out_dir):
        return
    inp = input_uri.rstrip("/") if storage.is_remote(input_uri) else os.path.realpath(input_uri)
    out = out_dir if storage.is_remote(out_dir) else os.path.realpath(out_dir)
    if lies_under(inp, [out]):
        raise SourceError(f"INPUT {input_uri} lies inside OUT {out_dir}: raycurate writes there; choose an OUT "
                          "outside INPUT (one inside INPUT is fine: it is never listed)")


def _start_state(out: storage.OutputDir, out_dir: str, run_id: str, db_uri: str, settings: Settings,
                 started_at: datetime, log: Callable[[str], None]) -> _Run:
    """The run, its state file written (``OUT/.raycurate-run.json``: which run works in OUT, for the web UI)."""
    state = {"run_id": run_id, "state": "running", "started_at": started_at.isoformat()}
    try:
        write_state(out_dir, state)
    except OSError as exc:
        raise SourceError(storage.describe_error(out.uri(RUN_STATE), exc, "write")) from None
    return _Run(run_id=run_id, out_dir=out_dir, db_uri=db_uri, settings=settings, log=log, out=out, state=state)


def _mark_failed(ctx: _Run, exc: Exception) -> None:
    """The state file marked failed with the error's line, which the web UI shows (it reads the run's files,
    never its log); the error itself goes on to the caller."""
    try:
        write_state(ctx.out_dir, {**ctx.state, "state": "failed", "error": f"{type(exc).__name__}: {exc}"[:500]})
    except OSError:   # OUT no longer takes writes: the error still reaches the caller
        pass


def _ingest(ctx: _Run, media: Sequence[FileRef], do_video: bool, enabled: Sequence[str]
            ) -> tuple[Ingest, Catalogue, list[dict[str, Any]]]:
    """What this run analyses (:mod:`raycurate.ingest`): one file per content the catalogue does not hold;
    what killed runs left of unfinished videos forgotten; the winners of finished videos not analysed yet."""
    from .video.stage3 import forget_unfinished_videos, pending_winners

    t = time.perf_counter()
    catalogue = Catalogue.read(ctx.db_uri, enabled)
    work = plan_ingest(media, catalogue, threads=ctx.settings.input.read_threads, log=ctx.log)
    report = ctx.manifest["ingest"] = work.manifest()
    pending: list[dict[str, Any]] = []
    if do_video:
        report["videos_forgotten"] = forget_unfinished_videos(ctx.db_uri, catalogue.video_ids)
        pending = pending_winners(ctx.db_uri, catalogue.video_ids)
        report["winners_pending"] = len(pending)
    ctx.timings["ingest"] = time.perf_counter() - t
    stored = work.stored[IMAGE] + work.stored[VIDEO]
    ctx.log(f"[raycurate] {len(work.images)} images and {len(work.videos)} videos to analyse; "
            f"{stored} already in the catalogue, {work.duplicate_files} duplicate files (same bytes as another)"
            + (f"; {work.reanalysed} stored images analysed again (an analyser was enabled since)"
               if work.reanalysed else "")
            + (f"; {len(pending)} winning frames of finished videos to analyse" if pending else ""))
    return work, catalogue, pending


def _list_input(ctx: _Run, input_uri: str) -> tuple[Listing, dict[str, list[FileRef]], bool]:
    """The files under ``input_uri`` (:mod:`raycurate.listing`: OUT and the DB are never listed), by media type,
    and whether the video path runs."""
    t = time.perf_counter()
    ctx.log(f"[raycurate] listing {input_uri}")
    inp = ctx.settings.input
    listing = list_input(input_uri, max_files=inp.max_files, threads=inp.read_threads,
                         exclude=[ctx.out_dir, ctx.db_uri], follow_links=inp.follow_links)
    files = listing.files
    ctx.timings["list"] = time.perf_counter() - t
    by_type = {kind: [f for f in files if f.media_type == kind] for kind in (IMAGE, VIDEO, OTHER)}
    # the state file says what was listed, for the web UI's live progress (it reads files, never the log)
    ctx.state["input"] = {"files": len(files), "images": len(by_type[IMAGE]), "videos": len(by_type[VIDEO]),
                          "other": len(by_type[OTHER])}
    write_state(ctx.out_dir, ctx.state)
    ctx.log(f"[raycurate] {len(files)} files: {len(by_type[IMAGE])} images, {len(by_type[VIDEO])} videos, "
            f"{len(by_type[OTHER])} other")
    if listing.skipped:
        ctx.log(f"[raycurate] {len(listing.skipped)} skipped (the manifest lists them): "
                + "; ".join(f"{s.uri}: {s.reason}" for s in listing.skipped[:3])
                + ("; ..." if len(listing.skipped) > 3 else ""))
    if listing.excluded:
        ctx.log(f"[raycurate] not listed (the output inside INPUT): {', '.join(listing.excluded)}")
    do_video = bool(by_type[VIDEO]) and ctx.settings.video.enabled
    if by_type[VIDEO] and not do_video:
        ctx.log(f"[raycurate] video.enabled is false: {len(by_type[VIDEO])} videos listed and counted, not analysed")
    return listing, by_type, do_video


def _analysers(ctx: _Run, person_gate: bool = False
               ) -> tuple[list[str], dict[str, str], dict[str, Any], list[Gate]]:
    """The analysers that run (built on the driver: no model loaded), those skipped and why, the gates."""
    settings = ctx.settings
    enabled, skipped = active_analyzers(settings.analyzers, settings.models)
    for name, why in skipped.items():
        ctx.log(f"[raycurate] analyser {name} skipped: {why}")
    analyzers = {name: build_analyzer(name, getattr(settings.analyzers, name), settings.models)  # no model loaded
                 for name in enabled}
    gates = build_gates(settings.filter, enabled)
    if person_gate:
        from .people.persons import PERSON_GATE

        gates.append(PERSON_GATE)
    return enabled, skipped, analyzers, gates


def _check_models(ctx: _Run, analyzers: Mapping[str, Any], do_video: bool) -> None:
    """Ray up, and the weights of every model the run needs verified on every node."""
    # ray is imported only when there is work for it
    from .engine import ensure_models_on_nodes, init_ray
    from .stages import STAGES

    needed = [mid for a in analyzers.values() for mid in a.required_models()]
    if do_video:
        needed += [mid for cls in STAGES.values() for a in cls.build(ctx.settings).analyzers
                   for mid in a.required_models()]
    t = time.perf_counter()
    init_ray(ctx.settings.ray)
    ctx.timings["ray_start"] = time.perf_counter() - t
    t = time.perf_counter()
    ctx.manifest["model_check"] = ensure_models_on_nodes(needed, ctx.settings.models)
    ctx.timings["model_check"] = time.perf_counter() - t
    ctx.log(f"[raycurate] weights verified on {len(ctx.manifest['model_check'])} Ray node(s): "
            f"{', '.join(sorted(set(needed)))}")


def _size_pools(ctx: _Run) -> None:
    """Every ``auto`` batch size and ``ray.gpu_memory_gb`` resolved once, on the driver, from the cards Ray's
    nodes hold (:mod:`raycurate.gpu_sizing`): the run goes on with the sized settings, which the pipelines take
    as they are; the manifest says why."""
    from .engine import sized_settings

    t = time.perf_counter()
    ctx.settings, sizing = sized_settings(ctx.settings)
    ctx.timings["sizing"] = time.perf_counter() - t
    if sizing:
        ctx.manifest["gpu_sizing"] = sizing
        gpu = [f"{pool.split('.')[-1]} {r['batch_size']} ({r['gpu_fraction']:g} GPU)"
               for pool, r in sizing["pools"].items() if r["gpu_fraction"]]
        ctx.log(f"[raycurate] GPU sizing: {sizing['gpu_memory_gb']}" + (f"; batch sizes {', '.join(gpu)}" if gpu
                                                                         else "; every pool on the CPU"))


def _analyse(ctx: _Run, photos: Sequence[FileRef], videos: Sequence[FileRef], pending: Sequence[Mapping[str, Any]]
             ) -> int:
    """The run's one graph (:func:`raycurate.engine.run_graph`): the photos, and the videos through the cascade,
    their winners (written to OUT/frames) going on into the same analysers' pools; the winners' files of
    videos a killed run finished (``pending``) join the photos with their lineage. The video frames analysed."""
    from .engine import photo_items, run_graph
    from .video.frames import winner_files

    manifest = ctx.manifest
    t = time.perf_counter()
    frame_files, lineage = winner_files(pending)
    if videos:
        ctx.log(f"[raycurate] {len(photos)} images and {len(videos)} videos in one graph: the videos through the "
                "cascade, their winners on into the image analysers")
    res = run_graph(photo_items(list(photos) + frame_files, lineage), videos, ctx.settings, db_uri=ctx.db_uri,
                    run_id=ctx.run_id, frames_dir=storage.join(ctx.out_dir, "frames"), targets=ctx.targets,
                    progress_files={what: _progress_file(ctx, what) for what in ("videos", "images")})
    ctx.timings["pipeline"] = time.perf_counter() - t
    manifest["faults"] = res.faults
    manifest["ray"] = res.pools   # each analyser's pool: resources, batch size, the analysers sharing it
    if res.cpu_scale < 1.0:
        manifest["ray_cpu_share"] = round(res.cpu_scale, 3)
        ctx.log(f"[raycurate] the video and image pools share the cluster's CPUs: each asks "
                f"{res.cpu_scale:.2f} of its num_cpus")
    frames = res.video_frames
    if videos or pending:
        manifest["video"] = video_report(ctx.db_uri, ctx.run_id, ctx.settings, frame_files=frames,
                                         people=bool(ctx.targets))
        manifest["video"]["counts"]["winners_read_again"] = res.winners_read_again
        manifest["ray_video"] = {name: {"num_cpus": r.num_cpus, "num_gpus": r.num_gpus, "min_actors": r.min_actors,
                                        "max_actors": r.max_actors} for name, r in res.video_actors.items()}
        ctx.errors += [{"uri": v["uri"], "stage": "video", "error": v["error"]}
                       for v in manifest["video"]["videos"] if v["error"]]
    return frames


def _progress_file(ctx: _Run, what: str) -> str | None:
    """``OUT/logs/progress-{what}.json``, the live progress the UI reads (a local OUT only)."""
    return None if ctx.out.remote else os.path.join(ctx.out_dir, "logs", f"progress-{what}.json")


def _finish(ctx: _Run, counts: dict[str, Any], t_start: float) -> RunReport:
    """manifest.json written, the state file marked finished; the report."""
    manifest = ctx.manifest
    ctx.timings["total"] = time.perf_counter() - t_start
    errors_total = counts["decode_errors"] + sum(a["errored"] for a in counts["analyzers"].values()) + \
        (manifest["video"]["counts"]["video_errors"] if "video" in manifest else 0)
    manifest.update(counts=counts, errors=ctx.errors[:MAX_LISTED], errors_total=errors_total,
                    timings_s={k: round(v, 3) for k, v in ctx.timings.items()},
                    finished_at=datetime.now(timezone.utc).isoformat())
    record_funnel(manifest, ctx.db_uri, ctx.settings)   # once: the report and the web UI read it from here
    from .report import report_run

    manifest["report"] = report_run(ctx.out, ctx.db_uri, manifest, ctx.settings, ctx.log)   # OUT/report.html
    manifest["timings_s"]["report"] = manifest["report"]["seconds"]
    ctx.out.write_bytes("manifest.json", json.dumps(manifest, indent=2, default=str).encode("utf-8"))
    curated_set.mark_curated(ctx.db_uri, manifest.get("curated_runs", []), ctx.run_id)   # last: all is done
    write_state(ctx.out_dir, {**ctx.state, "state": "finished", "finished_at": manifest["finished_at"]})
    return RunReport(run_id=ctx.run_id, out_dir=ctx.out_dir, db_uri=ctx.db_uri, manifest=manifest)
