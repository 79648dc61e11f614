"""Command line: ``raycurate run INPUT --out OUT [--config FILE] [--set key=value ...] [--db PATH]``.

Exit codes: 0 success (an empty input is a success with an empty result),
2 bad usage, missing input or bad config (one line on stderr, before any work), or OUT (its DB) held by
another live run (one line naming it; ``--wait`` waits instead),
1 a run that failed, 130 / 143 a run interrupted by Ctrl-C / SIGTERM (one line on stderr; the same command
resumes it: what was stored stays, the rest is done).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from .config import PRESETS, PROFILES, ConfigError, add_config_options, load_config, load_settings, parse_set
from .people import cli as people_cli
from .settings import Settings
from .store import cli as db_cli


def _run_args(run: argparse.ArgumentParser) -> None:
    run.add_argument("input", metavar="INPUT", help="a folder, a file, or s3:// / gs:// URI")
    run.add_argument("--out", required=True, metavar="OUT", help="output folder or s3:// / gs:// prefix (kept "
                     "images, metadata, manifest)")
    add_config_options(run, example="analyzers.face.min_neighbors=4 (repeatable)")
    run.add_argument("--db", metavar="PATH", help="LanceDB directory or s3:// / gs:// URI (default: OUT/db); the "
                     "table is 'images'")
    run.add_argument("--preset", choices=PRESETS, help="video sampling preset (configs/presets/); --config and "
                     "--set override it")
    run.add_argument("--profile", choices=PROFILES, help="use profile (configs/profiles/): fast-cpu, full-cpu, "
                     "full-gpu; the preset, --config and --set override it")
    run.add_argument("--models-dir", metavar="DIR", help="models directory (same as --set models.dir=DIR)")
    run.add_argument("--wait", action="store_true",
                     help="when another run holds OUT (or its DB), wait for it to end instead of exiting")
    run.add_argument("--verbose", action="store_true",
                     help="show Ray's and the libraries' log lines and Ray Data's progress bars (default: they go "
                     "to OUT/logs/raycurate.log; raycurate prints its own lines and progress)")
    run.add_argument("--strict-models", action="store_true",
                     help="fail when a model's weights are missing or unverified instead of falling back or "
                     "skipping the analyser (same as --set models.profile=strict)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raycurate", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="curate a folder (or bucket) of images into OUT and a LanceDB table")
    _run_args(run)
    run.add_argument("--person", dest="persons", action="append", default=[], metavar="NAME=REF[,REF...]",
                     help="keep only images and video frames showing this person, defined by reference photos "
                     "of them (one face each); repeatable for several people")
    submit = sub.add_parser("submit", help="the same run as a Ray job on a cluster (code and resolved config "
                            "shipped; logs streamed)")
    submit.add_argument("--address", default=os.environ.get("RAY_API_SERVER_ADDRESS"), metavar="URL",
                        help="the cluster's dashboard / job API, e.g. http://head:8265 (default: "
                        "$RAY_API_SERVER_ADDRESS)")
    submit.add_argument("--no-wait", action="store_true", help="return once the job is submitted")
    submit.add_argument("--job-id", metavar="ID", help="submission id (default: Ray makes one)")
    _run_args(submit)
    show = sub.add_parser("config", help="print the resolved configuration (defaults, or with a preset/profile)")
    show.add_argument("--preset", choices=PRESETS)
    show.add_argument("--profile", choices=PROFILES)
    show.add_argument("--keys", action="store_true",
                      help="print every key's type, default, allowed values and help (markdown tables)")
    models = sub.add_parser("models", help="model weights: list | path | verify | pull",
                            description="list: every model, its status, the package shipping it, and its licence; "
                                        "verify: check every file's sha256; pull: download (or, for weights "
                                        "that ship in a Python package, check that it is installed)")
    models.add_argument("action", choices=("list", "path", "verify", "pull"))
    models.add_argument("ids", nargs="*", metavar="ID", help="model ids (default: all)")
    models.add_argument("--models-dir", metavar="DIR",
                        help="models directory (default: $RAYCURATE_MODELS or ~/.cache/raycurate/models)")
    models.add_argument("--offline", action="store_true", help="never touch the network")
    models.add_argument("--record", action="store_true",
                        help="verify: trust the files present now and record their sha256 in the lock file")
    export = sub.add_parser("export", help="re-export kept rows of an existing DB (filters run in LanceDB; "
                            "no model is loaded)")
    export.add_argument("db", metavar="DB", help="LanceDB directory (OUT/db, or OUT)")
    export.add_argument("--out", required=True, metavar="DIR", help="output folder")
    export.add_argument("--where", metavar="SQL", help="SQL over stored columns, AND-ed with the filter spec")
    export.add_argument("--filter", metavar="FILE", help="YAML filter spec: the keys of the config's `filter:` "
                        "section (min_faces, max_nsfw_score, min_sharpness, max_abs_yaw, where ...)")
    add_config_options(export, uses=" (export: ...)", example="export.face_crops.enabled=true")
    search = sub.add_parser("search", help="similar images in a curated DB: by image, stored id or text (CLIP); "
                            "faces: by a face or an identity")
    search.add_argument("db", metavar="DB", help="LanceDB directory (OUT/db, or OUT)")
    query = search.add_mutually_exclusive_group(required=True)
    query.add_argument("--image", metavar="PATH", help="query image (path or URI)")
    query.add_argument("--id", metavar="ID", help="a stored row's content id (or a unique prefix)")
    query.add_argument("--text", metavar="TEXT", help="text query (needs CLIP vectors and weights)")
    query.add_argument("--face", metavar="IMG", help="faces nearest to the largest face of IMG (faces table)")
    query.add_argument("--identity", metavar="ID", help="the faces of identity ID, sharpest first (faces table)")
    search.add_argument("--where", metavar="SQL", help="SQL over stored columns, applied before the search")
    search.add_argument("-k", type=int, default=10, help="hits to return (default 10)")
    search.add_argument("--column", metavar="C", help="vector column (default: clip_embedding when usable, "
                        "else content_vector)")
    search.add_argument("--models-dir", metavar="DIR", help="models directory (CLIP weights)")
    search.add_argument("--json", action="store_true", help="one JSON object per hit")
    add_config_options(search, uses=" (storage: for a DB in a bucket)",
                       example="storage.s3.endpoint_url=http://minio:9000")
    report = sub.add_parser("report", help="the static HTML report of the curated set a DB holds, or of one run "
                            "(funnel, score histograms with thresholds, video timelines, kept and dropped images, "
                            "identities, models, errors)")
    report.add_argument("db", metavar="DB", help="LanceDB directory (OUT/db, or OUT)")
    report.add_argument("--out", metavar="FILE", help="the HTML file (default: report.html beside the DB, i.e. "
                        "OUT/report.html; report-RUN_ID.html for --run)")
    report.add_argument("--run", metavar="RUN_ID", help="report only the rows this run stored (default: the whole "
                        "curated set, with the manifest's run, else the newest)")
    people_cli.add_parser(sub)
    db_cli.add_parser(sub)
    _ui_args(sub.add_parser("ui", help="the web UI (Gradio): runs with live progress, results, filters, search, "
                            "export; needs pip install 'raycurate[ui]'"))
    return parser


def parser() -> argparse.ArgumentParser:
    """The command line's parser: the documentation's command-line reference is written from it
    (:mod:`raycurate.cli_docs`)."""
    return _parser()


def _ui_args(ui: argparse.ArgumentParser) -> None:
    ui.add_argument("--db", metavar="PATH", help="LanceDB the UI reads and its runs write (default: OUT/db)")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    ui.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    ui.add_argument("--root", dest="roots", action="append", metavar="DIR",
                    help="a folder (or s3:// / gs:// prefix) typed input paths may point into (repeatable; "
                    "default: the current directory)")
    ui.add_argument("--max-upload-mb", type=int, default=500, metavar="MB", help="largest uploaded file (default 500)")
    ui.add_argument("--out", default=os.path.join("out", "ui"), metavar="OUT",
                    help="work folder: runs/, uploads/, exports/, thumbnails/ and the default db/ (default out/ui)")
    ui.add_argument("--profile", choices=PROFILES, help="use profile selected in the Main tab (default: full-gpu "
                    "where nvidia-smi exists, else fast-cpu)")


def _fail(msg: str) -> int:
    print(f"raycurate: error: {msg}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; Ctrl-C anywhere a run does not handle it itself (another command, the summary) is one
    line and exit 130, never a traceback; output piped into a reader that stops early (``| head``) ends
    quietly."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        from .interrupts import say_interrupted

        say_interrupted()
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no second error when Python flushes
        return 141


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.command == "ui":
        from .ui import serve

        return serve(db=args.db, workdir=args.out, roots=args.roots or [os.getcwd()],
                     max_upload_mb=args.max_upload_mb, host=args.host, port=args.port, profile=args.profile)
    if args.command == "models":
        from .models.cli import run as models_run

        return models_run(args)
    if args.command == "identities":
        return people_cli.run(args)
    if args.command == "db":
        return db_cli.run(args)
    if args.command == "export":
        return _export(args)
    if args.command == "report":
        return _report(args)
    if args.command == "submit":
        return _submit(args, argv)
    if args.command == "search":
        return _search(args)
    if args.command == "config":
        import yaml

        if args.keys:
            from .settings import Settings
            from .settings.docs import tables

            print(tables(Settings), end="")
            return 0
        print(yaml.safe_dump(load_config(preset=args.preset, profile=args.profile), sort_keys=False), end="")
        return 0

    from .models import ModelError
    from .stages import check_runnable

    try:
        settings = _load_run_settings(args)   # the run's typed settings, built once here
        check_runnable(settings)
    except (ConfigError, ModelError) as exc:
        return _fail(str(exc))

    from .sources import SourceError, exists

    _use_storage(settings)

    try:
        if not exists(args.input):
            return _fail(f"input not found: {args.input}")
    except SourceError as exc:
        return _fail(str(exc))
    if "://" not in args.input and not os.access(args.input, os.R_OK):
        return _fail(f"input not readable: {args.input}")

    from .console import routed_output
    from .interrupts import Interrupted, interruptible, say_interrupted
    from .lock import LockHeld
    from .people.targets import ReferenceError, parse_person
    from .resources import ResourceError
    from .run import curate
    from .run_report import summary_table
    from .store.health import DamagedDB

    try:
        persons = dict(parse_person(spec) for spec in args.persons)
        with routed_output(_log_file(args.out), verbose=args.verbose), interruptible(_stop_ray, _hurry):
            own = not _ray_up()   # a Ray the caller started (a test session, a notebook) is left up
            report = curate(args.input, out_dir=args.out, settings=settings, db_uri=args.db,
                            argv=["raycurate", *argv], persons=persons, wait=args.wait)
            if own:   # the Ray this run started stops here: its last lines (flushed as it stops) go to the log
                _stop_ray()
    except (ModelError, ResourceError, SourceError, ReferenceError, LockHeld, DamagedDB) as exc:   # before any work
        return _fail(str(exc))
    except (Interrupted, KeyboardInterrupt) as exc:   # KeyboardInterrupt: Ctrl-C outside interruptible()
        say_interrupted()   # on the terminal: the output is no longer routed
        return exc.exit_code if isinstance(exc, Interrupted) else 130
    print(summary_table(report))
    if report.counts["catalogue"] == 0:
        print("no images found: the result is empty")
    return 0


def _ray_up() -> bool:
    return "ray" in sys.modules and sys.modules["ray"].is_initialized()


def _stop_ray() -> None:
    """An interrupted run's Ray shut down (the local Ray it started stops with its workers); nothing to do
    when Ray was never imported (interrupted while listing)."""
    if "ray" in sys.modules:
        from .engine.cluster import shutdown_ray

        shutdown_ray()


def _hurry() -> None:
    """A run about to leave at once (SIGTERM, a second signal): its locks released, its local Ray told to stop."""
    from .lock import release_held

    release_held()
    if "ray" in sys.modules:
        from .engine.cluster import signal_local_ray

        signal_local_ray()


def _log_file(out: str) -> str:
    """Where a run's Ray and library output goes: ``OUT/logs/raycurate.log``; for a bucket OUT, a local
    folder named after it under the temporary directory."""
    if "://" not in out:
        return os.path.join(out, "logs", "raycurate.log")
    import tempfile

    name = out.split("://", 1)[1].strip("/").replace("/", "_")
    return os.path.join(tempfile.gettempdir(), "raycurate-logs", name, "raycurate.log")


def _use_storage(settings: Settings) -> None:
    """Buckets in this process: the ``storage`` settings, else the environment."""
    from .storage import configure

    configure(settings.storage)


def _load_run_settings(args: argparse.Namespace) -> Settings:
    """The typed settings of ``run`` / ``submit``: defaults, profile, preset, ``--config``, ``--set`` and the
    options that stand for a key (``--models-dir``, ``--strict-models``)."""
    overrides = [parse_set(item) for item in args.overrides]
    if args.models_dir:
        overrides.append(("models.dir", args.models_dir))
    if args.strict_models:
        overrides.append(("models.profile", "strict"))
    return load_settings(args.config, overrides, preset=args.preset, profile=args.profile)


def _submit(args: argparse.Namespace, argv: list[str]) -> int:
    """Validate the config here (its structure; the weights are checked on the cluster's nodes), submit,
    stream the logs; the exit status is the job's."""
    if not args.address:
        return _fail("submit needs --address http://HEAD:8265 (or $RAY_API_SERVER_ADDRESS)")
    try:
        settings = _load_run_settings(args)
    except ConfigError as exc:
        return _fail(str(exc))
    from .engine.jobs import submit

    try:
        job, status = submit(args.address, args.input, args.out, settings, db=args.db, wait=not args.no_wait,
                             job_id=args.job_id, verbose=args.verbose, wait_lock=args.wait)
    except Exception as exc:   # connection refused, authentication, a bad runtime env: one line, exit 2
        if type(exc).__name__ == "AuthenticationError":
            return _fail(f"the cluster at {args.address} wants its authentication token: set RAY_AUTH_TOKEN "
                         "(or RAY_AUTH_TOKEN_PATH) to the token `ray get-auth-token` prints on the head node")
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return _fail(f"job submission to {args.address} failed: {first}")
    print(f"[raycurate] job {job}: {status}")
    ok = status == "SUCCEEDED" or (args.no_wait and status in ("PENDING", "RUNNING"))
    return 0 if ok else 1


def _export(args: argparse.Namespace) -> int:
    from .config import load_yaml

    try:
        overrides = [parse_set(item) for item in args.overrides]
        if args.filter:
            spec = load_yaml(args.filter)
            unknown = set(spec) - set(load_config()["filter"])
            if unknown:
                raise ConfigError(f"unknown filter keys in {args.filter}: {', '.join(sorted(unknown))}")
            overrides += [(f"filter.{k}", v) for k, v in spec.items()]
        settings = load_settings(args.config, overrides)
    except ConfigError as exc:
        return _fail(str(exc))
    from .export import export_filtered
    from .sources import SourceError
    from .store.health import DamagedDB, check_db
    from .store.table import resolve_db

    _use_storage(settings)
    try:
        db = resolve_db(args.db)
        check_db(db)
        result, where = export_filtered(db, args.out, settings=settings, where=args.where)
    except (ValueError, FileNotFoundError, SourceError, DamagedDB) as exc:
        return _fail(str(exc))
    print(f"exported {result.exported} of {result.kept} rows matching: {where}")
    print(f"-> {args.out} (metadata.jsonl" + (", metadata.parquet" if settings.export.parquet else "")
          + (f", {result.captions} captions" if result.captions else "")
          + (f", {result.face_crops} face crops" if result.face_crops else "")
          + (f", {result.body_crops} body crops" if result.body_crops else "") + ")")
    return 0


def _search(args: argparse.Namespace) -> int:
    """``raycurate search``: the hits of one query, with the command's typed settings (``--config``, ``--set``)."""
    from .search import SearchError, run_cli
    from .sources import SourceError
    from .store.health import DamagedDB

    try:
        settings = load_settings(args.config, [parse_set(item) for item in args.overrides])
        _use_storage(settings)
        return run_cli(args.db, image=args.image, id=args.id, text=args.text, where=args.where, k=args.k,
                       column=args.column, models_dir=args.models_dir, as_json=args.json,
                       face=args.face, identity=args.identity, settings=settings)
    except (SearchError, ConfigError, SourceError, DamagedDB) as exc:
        return _fail(str(exc))


def _report(args: argparse.Namespace) -> int:
    from .config import recorded_settings
    from .report import find_manifest, write_report
    from .report.data import latest_run
    from .sources import SourceError
    from .storage import join
    from .store.health import DamagedDB, check_db
    from .store.table import resolve_db

    try:
        db = resolve_db(args.db)
        check_db(db)
        manifest = find_manifest(db)
        run_id = args.run or (manifest or {}).get("run_id") or latest_run(db)
        if not run_id:
            return _fail(f"no run in the LanceDB at {args.db}")
        whole = args.run is None   # the whole curated set, as the run wrote it; --run: that run's own rows
        parent = db.rstrip("/").rsplit("/", 1)[0] if "://" in db else os.path.dirname(db)
        out = args.out or join(parent, "report.html" if whole else f"report-{run_id}.html")
        settings = recorded_settings(manifest)   # the settings the manifest's run recorded (thresholds, dedup)
        write_report(db, out, run_id=run_id, manifest=manifest, settings=settings, catalogue=whole)
    except (FileNotFoundError, LookupError, SourceError, DamagedDB) as exc:
        return _fail(str(exc))
    print(f"report of {'the catalogue after run' if whole else 'run'} {run_id} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
