"""The curated set after a run's analysis (plain code, no ray): the catalogue's rows marked (who of the
``--person`` targets each shows, the new rows' duplicates against the whole catalogue, their faces'
identities), chosen by the gates over every stored row, exported to OUT, and the indexes kept up. Each step
reads and writes the DB; :func:`raycurate.run.curate` calls them in order.

New rows are those of the *pending* runs (:func:`pending_runs`): every run whose rows no finished run has
curated yet, this one and any killed before it could, so that a killed run's rows are grouped and indexed
by the next run, never skipped. A run is recorded as curated last (:func:`mark_curated`)."""
from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any, Sequence

from tqdm import tqdm

from .console import console
from .gates import Gate, kept_predicate
from .run_report import count_rows, error_list, mean_ms, stored_counts
from .settings import DedupSettings
from .store.table import sql_in

if TYPE_CHECKING:
    from .run import _Run


def catalogue_table(db_uri: str) -> Any:
    """The ``images`` table, or None when the DB holds none (no image was ever analysed)."""
    from .store.table import open_images_table

    try:
        return open_images_table(db_uri)
    except FileNotFoundError:
        return None


def pending_runs(db_uri: str) -> list[str]:
    """The runs with rows in ``images`` or ``frames`` that no finished run has curated, oldest first."""
    from .store.schema import CURATED_TABLE, FRAMES_TABLE, TABLE_NAME
    from .store.table import open_table

    def run_ids(name: str) -> set[str]:
        try:
            table = open_table(db_uri, name)
        except FileNotFoundError:
            return set()
        return set(table.search().select(["run_id"]).limit(None).to_arrow().column("run_id").unique().to_pylist())

    return sorted((run_ids(TABLE_NAME) | run_ids(FRAMES_TABLE)) - run_ids(CURATED_TABLE))


def mark_curated(db_uri: str, runs: Sequence[str], by: str) -> None:
    """``runs`` recorded as curated by run ``by`` (the last step of a run: a run killed before it leaves its
    rows pending for the next)."""
    if not runs:
        return
    from datetime import datetime, timezone

    import pyarrow as pa

    from .store.schema import CURATED_SCHEMA, CURATED_TABLE
    from .store.table import open_or_create_table

    now = datetime.now(timezone.utc)
    rows = [{"run_id": r, "curated_by": by, "curated_at": now} for r in runs]
    open_or_create_table(db_uri, CURATED_TABLE, CURATED_SCHEMA).add(pa.Table.from_pylist(rows, schema=CURATED_SCHEMA))


def select(ctx: "_Run", table: Any, counts: dict[str, Any], enabled: list[str], gates: Sequence[Gate],
           pending: Sequence[str]) -> str:
    """This run's counts and errors from its stored rows in ``table`` (``images``), the rows of the ``pending``
    runs marked with their duplicates in the whole catalogue; the SQL of the kept rows: the whole catalogue's,
    the web UI's manual labels applied."""
    from .gates import MANUAL_LABEL, with_manual_labels

    from .people.persons import clear_persons, mark_persons

    t = time.perf_counter()
    run = ctx.where
    if ctx.targets:   # every stored image: who of the run's targets it shows
        ctx.manifest["persons"] = mark_persons(table, "run_id IS NOT NULL", ctx.targets, ctx.db_uri)
    else:
        clear_persons(table)
    counts.update(stored_counts(table, run, enabled, gates))
    ctx.errors += error_list(table, run, enabled)
    keep = kept_predicate(gates, enabled)
    if MANUAL_LABEL in table.schema.names:
        keep = with_manual_labels(keep)
    if ctx.settings.dedup.enabled:
        if pending:
            _dedup(ctx, table, pending)
        keep += " AND duplicate_of IS NULL"
    counts["catalogue"] = count_rows(table, "run_id IS NOT NULL")
    counts["exact_duplicates"] = count_rows(table, "duplicate_column = 'id' AND duplicate_of IS NOT NULL")
    counts["near_duplicates"] = count_rows(table, "duplicate_of IS NOT NULL AND duplicate_column != 'id'")
    ctx.manifest["mean_ms_per_image"] = mean_ms(table, f"{run} AND error IS NULL", ["decode"] + enabled)
    ctx.timings["select"] = time.perf_counter() - t
    return keep


def _dedup(ctx: "_Run", table: Any, pending: Sequence[str]) -> None:
    """The ``pending`` runs' rows grouped with their duplicates in the images table (the whole catalogue), then
    in the frames table, alike."""
    from .store import FRAMES_TABLE, open_table
    from .store.dedup import dedup_frames, dedup_table

    options = dedup_options(ctx.settings.dedup)
    t_dedup = time.perf_counter()
    dres = dedup_table(table, run_id=pending, progress=ctx.log, **options)
    ctx.timings["dedup"] = time.perf_counter() - t_dedup
    ctx.manifest["dedup"] = dres.as_dict()
    t_dedup = time.perf_counter()
    try:
        frames = open_table(ctx.db_uri, FRAMES_TABLE)
    except FileNotFoundError:       # no video got as far as its frames
        return
    if frames.count_rows(sql_in("run_id", pending)):
        ctx.manifest["dedup_frames"] = dedup_frames(frames, run_id=pending, progress=ctx.log, **options).as_dict()
        ctx.timings["dedup_frames"] = time.perf_counter() - t_dedup


def _thresholds(dedup: DedupSettings) -> dict[str, float | None]:
    """Vector column -> the largest distance of a duplicate (null: the column is not used)."""
    return {f.name: getattr(dedup.columns, f.name) for f in dataclasses.fields(dedup.columns)}


def dedup_options(dedup: DedupSettings) -> dict[str, Any]:
    """The keywords of :func:`raycurate.store.dedup.dedup_table` from the typed ``dedup`` settings."""
    return {"columns": _thresholds(dedup), "keep_by": list(dedup.keep_by), "k": dedup.k,
            "index_min_rows": dedup.index_min_rows, "index_type": dedup.index_type, "nprobes": dedup.nprobes,
            "refine_factor": dedup.refine_factor, "method": dedup.method, "block_min_rows": dedup.block_min_rows}


def people(ctx: "_Run", pending: Sequence[str]) -> None:
    """The ``pending`` runs' faces to the faces table, grouped into identities (:mod:`raycurate.people`); the
    summary in the manifest (``people``: this run's, or the last pending one's; ``people_of_earlier_runs``)."""
    people = ctx.settings.people
    if people.enabled and pending:
        from .people import index_run

        t = time.perf_counter()
        summaries = {run: index_run(ctx.db_uri, run, people, ctx.targets, ctx.settings.dedup) for run in pending}
        ctx.manifest["people"] = summaries.pop(ctx.run_id if ctx.run_id in summaries else pending[-1])
        if summaries:
            ctx.manifest["people_of_earlier_runs"] = summaries
        ctx.timings["people"] = time.perf_counter() - t


def export(ctx: "_Run", table: Any, keep: str, counts: dict[str, Any]) -> None:
    """The kept rows exported to OUT (or, export off, only counted)."""
    export_settings = ctx.settings.export
    table.checkout_latest()   # the people and dedup marks were written through other handles
    if export_settings.enabled:
        from .export import export_kept, export_options

        t = time.perf_counter()
        with tqdm(total=count_rows(table, keep), desc="export", unit="img", file=console(),
                  disable=not console().isatty()) as bar:
            exp = export_kept(table, keep, ctx.out_dir, copy_images=export_settings.copy_images,
                              threads=export_settings.copy_threads, progress=bar,
                              db_uri=ctx.db_uri, **export_options(export_settings))
        ctx.timings["export"] = time.perf_counter() - t
        counts.update(kept=exp.kept, exported=exp.exported, export_errors=exp.copy_errors)
        if not ctx.settings.dedup.enabled:
            counts["exact_duplicates"] = exp.exact_duplicates
    else:
        counts["kept"] = count_rows(table, keep)
    ctx.manifest["keep_sql"] = keep


def maintain_indexes(ctx: "_Run", table: Any) -> None:
    from .store.dedup import maintain

    dedup = ctx.settings.dedup
    t = time.perf_counter()
    used = [column for column, limit in _thresholds(dedup).items() if limit is not None]
    ctx.manifest["indexes"] = maintain(table, vector_columns=used, index_min_rows=dedup.index_min_rows,
                                       index_type=dedup.index_type)
    ctx.timings["indexes"] = time.perf_counter() - t
