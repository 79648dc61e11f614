"""What the web UI does, without gradio: start / watch / cancel runs, query results, label, search,
export, plot data. :mod:`raycurate.ui.app` lays it out and turns the answers into components.

One :class:`Session` serves the whole server (a local, single-user tool): one run at a time, one
LanceDB (``Settings.db``) that every run started here appends to.
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

import numpy as np

from ..config import ConfigError
from . import params, plots, progress
from .paths import CONFINED, PathRefused, Roots
from .results import Filters, Results, caption, jsonable, lineage
from .runner import RunProcess, RunRequest, Runner, readable

GALLERY_LIMIT = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class UserError(ValueError):
    """Something the user asked that cannot be done; the message is shown as is."""


@dataclass(frozen=True)
class Settings:
    db: str                     # the LanceDB folder runs write to and the tabs read
    workdir: str                # runs/, uploads/, exports/, thumbnails/ and gradio's upload cache live here
    roots: Roots                # what typed input paths may point into
    max_upload_mb: int = 500
    host: str = "127.0.0.1"
    port: int = 7860
    profile: str | None = None  # the use profile the Main tab starts with (None: by the machine)

    def folder(self, name: str) -> str:
        return os.path.join(self.workdir, name)


@dataclass
class RunContext:
    """The run the UI started, and the last counts per step it showed of it (kept when a file is being
    replaced as it is read, or the run ended without a funnel)."""

    process: RunProcess
    rows: list[list[Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Poll:
    status: str                 # markdown
    rows: list[list[Any]]       # progress.COLUMNS
    log: str
    running: bool
    run_id: str | None


def stage_uploads(paths: Sequence[str], dest: str) -> str:
    """Copy uploaded files into ``dest`` under safe, unique names; returns ``dest``."""
    os.makedirs(dest, exist_ok=True)
    for i, src in enumerate(paths):
        if not os.path.isfile(src):
            raise UserError(f"upload not found on the server: {os.path.basename(src)}")
        name = _UNSAFE.sub("_", os.path.basename(src)).lstrip("._-") or "file"
        shutil.copyfile(src, os.path.join(dest, f"{i:04d}-{name}"))
    return dest


class Session:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        for name in ("runs", "uploads", "exports", "thumbnails"):
            os.makedirs(settings.folder(name), exist_ok=True)
        self.runner = Runner(settings.folder("runs"), settings.db)
        self.results = Results(settings.db)
        self.run: RunContext | None = None
        self._curation: Any = None
        self._manifests: dict[str, dict[str, Any]] = {}

    # -- runs ------------------------------------------------------------------------------------
    def resolve_input(self, uploads: Sequence[str] | None, path: str | None) -> str:
        """The run's input: the staged uploads or a path confined to the roots (PathRefused otherwise)."""
        uploads = [u for u in (uploads or []) if u]
        path = (path or "").strip()
        if uploads and path:
            raise UserError("give either uploaded files or a folder path, not both (clear one of them)")
        if uploads:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
            return stage_uploads(uploads, os.path.join(self.settings.folder("uploads"), stamp))
        if not path:
            raise UserError("nothing to curate: upload files or type a folder path inside the roots")
        return self.settings.roots.resolve(path)

    def person(self, name: str | None, refs: Sequence[str] | None) -> list[tuple[str, list[str]]]:
        """The target person of a run (``--person``): a name and uploaded reference photos, staged; or none."""
        from ..people.targets import ReferenceError, parse_person

        name, refs = (name or "").strip(), [r for r in (refs or []) if r]
        if not name and not refs:
            return []
        if not (name and refs):
            raise UserError("a target person needs both a name and at least one reference photo")
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        folder = stage_uploads(refs, os.path.join(self.settings.folder("uploads"), f"references-{stamp}"))
        try:
            return [parse_person(f"{name}={','.join(sorted(os.path.join(folder, f) for f in os.listdir(folder)))}")]
        except ReferenceError as exc:
            raise UserError(str(exc)) from None

    def start(self, uploads: Sequence[str] | None, path: str | None, preset: str, profile: str | None,
              values: Mapping[str, Any], person: tuple[str | None, Sequence[str] | None] = (None, None)
              ) -> RunContext:
        """Validate everything, then start the run; raises PathRefused / UserError with the reason.
        ``person``: a target's name and reference photos (optional)."""
        from ..models import ModelError

        if self.runner.busy():
            raise UserError("a run is already going: wait for it or cancel it")
        input_uri = self.resolve_input(uploads, path)
        persons = self.person(*person)
        try:
            req = RunRequest(input_uri=input_uri, out_dir=self.runner.new_out_dir(), db=self.settings.db,
                             preset=preset, profile=profile or None,
                             overrides=params.overrides(values) + list(CONFINED), persons=persons)
            req.settings()   # checked here, as the CLI checks them, before a process starts
        except (ConfigError, ModelError, KeyError) as exc:
            raise UserError(f"bad settings: {exc}") from None
        try:
            process = self.runner.start(req)
        except RuntimeError as exc:
            raise UserError(str(exc)) from None
        self.run = RunContext(process)
        return self.run

    def poll(self) -> Poll:
        """The run's status and counts per step, from the files it writes (its state file and live progress
        while it goes, its manifest's funnel once finished); the log is only shown."""
        ctx = self.run
        if ctx is None:
            return Poll("No run started yet.", [], "", False, None)
        proc = ctx.process
        state = proc.status
        tail = proc.log_tail(400)
        run_state = proc.state()
        run_id = (run_state or {}).get("run_id")
        live = progress.live_snapshots(proc.request.out_dir)
        m = proc.manifest() if state == "finished" else None
        rows = progress.funnel_rows(m) if m else progress.live_rows(run_state, live)
        ctx.rows = rows or ctx.rows
        secs = proc.elapsed()
        stored = progress.stored_of(live)
        done = f" · images stored {stored[0]}/{stored[1]}" if stored else ""
        run_txt = f"run `{run_id}`" if run_id else "starting (local Ray)"
        if state == "running":
            text = progress.live_text(proc.request.out_dir)   # the counts the workers report, per batch
            status = f"**Running** {secs:.0f} s · {run_txt}{done}" + (f"\n\n```\n{text}\n```" if text else "")
        elif state == "finished":
            m = m or {}
            c = m.get("counts", {})
            kept = c.get("kept", "?")
            status = (f"**Finished** in {secs:.0f} s · {run_txt} · kept **{kept}** of {c.get('images', '?')} "
                      f"images and frames · open the Results tab")
            if m.get("run_id"):
                self._manifests[m["run_id"]] = m
        elif state == "cancelled":
            status = (f"**Cancelled** after {secs:.0f} s · {run_txt}: the rows stored so far stay in the table "
                      "under this run id")
        else:   # the error its state file records; one raised before the run began is in the log shown below
            error = (run_state or {}).get("error") if (run_state or {}).get("state") == "failed" else None
            status = (f"**Failed** (exit {proc.returncode}) after {secs:.0f} s · {run_txt}: "
                      + (f"`{error[:300]}`" if error else "the log below says why"))
        if state != "running":
            self.results.forget(run_id)
        shown = readable(tail)[-40:]
        return Poll(status, ctx.rows, "\n".join(shown + [f"(full log: {proc.log_path})"]), state == "running",
                    run_id)

    def cancel(self) -> str:
        if not self.runner.cancel():
            return "No run is going."
        return self.poll().status

    # -- manifests ---------------------------------------------------------------------------------
    def manifest(self, run_id: str | None) -> dict[str, Any] | None:
        """The manifest of a run: one the UI started, or OUT/manifest.json next to the DB."""
        if not run_id:
            return None
        if run_id not in self._manifests:
            candidates = glob.glob(os.path.join(self.settings.folder("runs"), "*", "manifest.json"))
            candidates.append(os.path.join(os.path.dirname(os.path.abspath(self.settings.db)), "manifest.json"))
            for path in candidates:
                try:
                    with open(path, encoding="utf-8") as f:
                        m = json.load(f)
                except (OSError, ValueError):
                    continue
                if m.get("run_id"):
                    self._manifests.setdefault(m["run_id"], m)
        return self._manifests.get(run_id)

    def default_filters(self, run_id: str | None) -> Filters:
        """The filters a run kept with (the settings its manifest recorded), else the default settings'."""
        settings = params.recorded(self.manifest(run_id)) or params.settings_for()
        return Filters.from_filter(settings.filter, run_id=run_id)

    # -- results ---------------------------------------------------------------------------------
    def db_summary(self) -> str:
        runs = self.results.runs()
        if not runs:
            return (f"No curated table yet at `{self.settings.db}`: start a run in the **Main** tab "
                    "(the bundled sample is prefilled when the server can read it).")
        total = sum(n for _, n in runs)
        return f"Table `images` at `{self.settings.db}`: {total} rows from {len(runs)} run(s)."

    def curation(self) -> Any:
        """The DB opened for search and thumbnails (None while there is no images table)."""
        from ..search import Curation, SearchError
        from .params import settings_for

        if self._curation is None:
            try:
                self._curation = Curation(self.settings.db, thumbs_dir=self.settings.folder("thumbnails"),
                                          settings=settings_for(profile=self.settings.profile))
            except SearchError:
                return None
        return self._curation

    def thumbnails(self, rows: Sequence[Mapping[str, Any]]) -> list[str | None]:
        from concurrent.futures import ThreadPoolExecutor

        cur = self.curation()
        if cur is None:
            return [None] * len(rows)
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda r: cur.thumbnail(r["id"], r["uri"]), rows))

    def gallery(self, f: Filters, sort: str) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]], int]:
        """(thumbnail, caption) items, their (id, uri, run_id) keys, and the number of matching rows."""
        n = self.results.count(f)
        rows = self.results.page(f, sort=sort, limit=GALLERY_LIMIT)
        items, keys = [], []
        for row, thumb in zip(rows, self.thumbnails(rows)):
            if thumb is None:
                continue
            items.append((thumb, caption(row)))
            keys.append((row["id"], row["uri"], row["run_id"]))
        return items, keys, n

    def detail(self, key: Sequence[str]) -> tuple[np.ndarray | None, str, dict[str, Any]]:
        """The annotated picture, its lineage line and every stored attribute of one row."""
        from . import draw

        row = self.results.row(*key)
        if row is None:
            raise UserError("that row is no longer in the table")
        try:
            picture = draw.annotate(draw.load_rgb(row["uri"]), row)
        except Exception as exc:   # an original that moved or no longer decodes: the attributes still show
            picture = None
            row = {**row, "ui_note": f"original not readable: {exc}"}
        return picture, lineage(row), jsonable(row)

    # -- search ------------------------------------------------------------------------------------
    def text_search(self) -> tuple[bool, str]:
        cur = self.curation()
        if cur is None:
            return False, "Text search needs a curated table with CLIP vectors; there is no table yet."
        model, why = cur.usable_clip()
        if model is None:
            return False, f"Text search is off: {why}. Image search uses the content vector (no model)."
        return True, f"Text search uses CLIP ({model})."

    def search(self, *, image: str | None = None, content_id: str | None = None, text: str | None = None,
               k: int = 12, where: str | None = None) -> tuple[list[tuple[str, str]], str, list[str]]:
        """(thumbnail, caption) per hit, a line saying what was searched, and the hits' content ids."""
        from ..search import SearchError, where_shown

        cur = self.curation()
        if cur is None:
            raise UserError("nothing to search yet: run a curation first")
        given = {"image": image or None, "id": (content_id or "").strip() or None, "text": (text or "").strip() or None}
        if sum(v is not None for v in given.values()) != 1:
            raise UserError("give one query: an uploaded image, a stored id (Find similar in Results) or text")
        try:
            hits = cur.search(**given, k=int(k), where=where)
        except SearchError as exc:
            raise UserError(str(exc)) from None
        meta = {a.decode(): b.decode() for a, b in (hits.schema.metadata or {}).items()}
        shown = [r for r in hits.to_pylist() if r["thumbnail"]]
        items = [(r["thumbnail"], f"#{r['rank']} d={r['distance']:.3f} · {os.path.basename(where_shown(r))}")
                 for r in shown]
        query = (f"the uploaded {os.path.basename(image)}" if image else
                 f"row {given['id'][:12]}" if given["id"] else f"“{given['text']}”")
        said = (f"{hits.num_rows} nearest to {query} on `{meta.get('raycurate.column')}` "
                f"({meta.get('raycurate.method')}); distance is cosine (0 = same picture).")
        return items, said, [r["id"] for r in shown]

    # -- plots -------------------------------------------------------------------------------------
    def funnel_rows(self, run_id: str | None) -> list[list[Any]]:
        """The funnel of a run's own rows, as its manifest holds it (the run computed it once, as it ended);
        [] for a run whose manifest the UI does not find."""
        return progress.funnel_rows(self.manifest(run_id)) if run_id else []

    def histograms(self, f: Filters) -> list[tuple[str, Any, list[str]]]:
        """(title, frame, bin order) per score in :data:`plots.SCORES`, kept vs not kept in ``f``'s scope."""
        out = []
        for column, title in plots.SCORES:
            kept = self.results.values(f.with_(show="kept"), column)
            other = self.results.values(f.with_(show="dropped"), column)
            frame, order = plots.histogram({"kept": kept, "not kept": other},
                                           integer=column in plots.INTEGER_COLUMNS)
            out.append((title, frame, order))
        return out


__all__ = ["GALLERY_LIMIT", "PathRefused", "Poll", "RunContext", "Session", "Settings", "UserError",
           "stage_uploads"]
