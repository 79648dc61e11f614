"""The static HTML report (``OUT/report.html``): the whole curated set the DB holds after a run (or one run's
own rows), and why each frame won, in one file that opens from disk with no server and no network. :mod:`.data` reads the manifest and the tables, :mod:`.svg` draws,
:mod:`.html` lays out the page, :mod:`.thumbs` embeds the pictures.

Every run writes it (:func:`report_run`, after its manifest is complete); ``raycurate report DB`` writes it
again for any run a DB holds (:func:`write_report`)."""
from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Mapping

from ..settings import Settings

REPORT_FILE = "report.html"


def render_report(db_uri: str, run_id: str, manifest: Mapping[str, Any] | None = None, *,
                  settings: Settings | None = None, catalogue: bool = False) -> str:
    """The report of run ``run_id`` (with ``catalogue``: of the whole curated set after it) as one HTML
    string; ``settings``: the run's typed settings (:func:`raycurate.report.data.read_report`)."""
    from .data import read_report
    from .html import render

    return render(read_report(db_uri, run_id, manifest, settings=settings, catalogue=catalogue))


def find_manifest(db_uri: str) -> dict[str, Any] | None:
    """The manifest of the run whose OUT holds the DB (``OUT/db`` -> ``OUT/manifest.json``); None when there
    is none."""
    from ..sources import read_bytes
    from ..storage import join

    parent = db_uri.rstrip("/").rsplit("/", 1)[0] if "://" in db_uri else os.path.dirname(os.path.abspath(db_uri))
    try:
        return json.loads(read_bytes(join(parent, "manifest.json")))
    except (OSError, ValueError):
        return None


def write_report(db_uri: str, out_file: str, run_id: str | None = None, manifest: Mapping[str, Any] | None = None,
                 *, settings: Settings | None = None, catalogue: bool = False) -> str:
    """The report of ``run_id`` (default: the manifest's run, else the newest run in the DB; with
    ``catalogue``, of the whole curated set after it) written to ``out_file`` (a path or a bucket URI);
    returns the run id. :class:`LookupError` when the DB holds no such run."""
    from .data import has_run, latest_run

    run_id = run_id or (manifest or {}).get("run_id") or latest_run(db_uri)
    if not run_id or not (catalogue and latest_run(db_uri)) and not has_run(db_uri, run_id):
        raise LookupError(f"no run {run_id or ''} in the LanceDB at {db_uri}".replace("  ", " "))
    page = render_report(db_uri, run_id, manifest, settings=settings, catalogue=catalogue).encode("utf-8")
    if "://" in out_file:
        from ..storage import OutputDir

        base, name = out_file.rsplit("/", 1)
        OutputDir(base).write_bytes(name, page)
    else:
        with open(out_file, "wb") as f:
            f.write(page)
    return run_id


def report_run(out: Any, db_uri: str, manifest: Mapping[str, Any], settings: Settings,
               log: Callable[[str], None]) -> dict[str, Any]:
    """A finished run's report, of the whole curated set it leaves, written to ``OUT/report.html`` (``out``: the run's
    :class:`~raycurate.storage.OutputDir`; ``settings``: its typed settings); what the manifest records of it:
    where, its size and the seconds it took, or the error that stopped it (the run's results stand either way)."""
    t = time.perf_counter()
    try:
        page = render_report(db_uri, manifest["run_id"], manifest, settings=settings,
                             catalogue=True).encode("utf-8")
        out.write_bytes(REPORT_FILE, page)
    except Exception as exc:   # a report that fails must not fail a run whose results are stored
        log(f"[raycurate] report not written: {type(exc).__name__}: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}", "seconds": round(time.perf_counter() - t, 3)}
    seconds = round(time.perf_counter() - t, 3)
    log(f"[raycurate] report {out.uri(REPORT_FILE)} ({len(page) / 1024:.0f} KiB, {seconds:.2f} s)")
    return {"file": out.uri(REPORT_FILE), "bytes": len(page), "seconds": seconds}


__all__ = ["REPORT_FILE", "find_manifest", "render_report", "report_run", "write_report"]
