"""The Ray actors: one pool per analyser (image path) or one per group of analysers fused on a small machine
(``ray.fuse_cpu_analyzers``), one per cascade stage (video path). Each wraps plain classes, built once per
actor, runs its batches under the crash ledger and gives the heap it freed back to the system after each."""
from __future__ import annotations

from functools import partial
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..analyzers import ANALYZERS, build_analyzer
from ..faults import crash_message
from ..heap import trim
from ..rows import PIXEL_FIELDS, images_of, read_and_decode
from ..settings import AnalyzerSettings, ModelsSettings
from ..stages import STAGES, StagePlan
from .ledger import guarded_columns, worker_ledger
from .progress import report, report_many


class AnalyzerActor:
    """Ray actor around one plain analyser: builds it and loads its model once."""

    name: str
    section: AnalyzerSettings
    models: ModelsSettings
    ledger: str | None = None
    progress: str | None = None   # the pipeline's progress counter (engine/progress.py): rows per batch
    last: bool = False   # the image path's last pool: the pixels go no further (the sink drops them anyway)

    def __init__(self) -> None:
        self.analyzer = build_analyzer(self.name, self.section, self.models)
        self.analyzer.setup()
        self.fields = type(self.analyzer).fields()

    def _analyze(self, batch: pa.Table) -> dict[str, list[Any]]:
        columns = {k: batch.column(k).to_pylist() for k in self.analyzer.uses}
        return self.analyzer({"image": images_of(batch), "error": batch.column("error").to_pylist(), **columns})

    def run(self, batch: pa.Table) -> pa.Table:
        """``batch`` with this analyser's columns, under the crash ledger (scope: the analyser's name);
        its rows counted as this analyser's on the progress counter. Where the batch has them already (a
        video's winner carries them from the cascade: :func:`raycurate.stages.carried_analyzers`; its
        ``*_model`` is set), they are kept and only the other rows are analysed."""
        model = f"{self.name}_model"
        if model not in batch.column_names:
            out = self._guarded(batch)
        else:
            names = batch.column_names
            have = batch.column(model).is_valid()
            carried = pc.sum(have).as_py() or 0
            if carried == batch.num_rows:
                out = batch
            else:
                todo = batch if not carried else batch.filter(pc.invert(have))
                out = self._guarded(todo.drop_columns([f.name for f in self.fields])).select(names)
                if carried:
                    out = pa.concat_tables([out, batch.filter(have)])
        report(self.progress, self.name, out.num_rows)
        return out

    def _guarded(self, batch: pa.Table) -> pa.Table:
        return guarded_columns(batch, self.fields, self._analyze, ledger=self.ledger, scope=self.name,
                               keys=[str(u) for u in batch.column("uri").to_pylist()],
                               crashed={f"{self.name}_model": self.analyzer.model_ref,
                                        f"{self.name}_error": crash_message("analysing")})

    def __call__(self, batch: pa.Table) -> pa.Table:
        batch = self.run(batch)
        if self.last:
            batch = without_pixels(batch)
        trim()
        return batch


class FusedAnalyzerActor:
    """Ray actor around several plain analysers, run in turn on each batch in pipeline order; each is built
    and guarded exactly as in a pool of its own (its own section, its own crash-ledger scope). The first
    pool may decode too (``decode``: :func:`~raycurate.rows.read_and_decode`'s keywords): its batches are
    then files, read and decoded here under the crash ledger's ``decode`` scope, as a decode task would."""

    members: tuple[type[AnalyzerActor], ...]
    last: bool = False
    decode: dict[str, Any] | None = None
    ledger: str | None = None
    progress: str | None = None

    def __init__(self) -> None:
        self.actors = [member() for member in self.members]

    def __call__(self, batch: pa.Table) -> pa.Table:
        counts: dict[str, int] = {}
        if self.decode is not None:
            batch = read_and_decode(batch, ledger=partial(worker_ledger, self.ledger), **self.decode)
            counts["decoded"] = batch.num_rows
        for actor in self.actors:
            batch = actor.run(batch)
            counts[actor.name] = batch.num_rows
        report_many(self.progress, counts)   # one call to the book per batch, not one per member
        if self.last:
            batch = without_pixels(batch)
        trim()
        return batch


def without_pixels(batch: pa.Table) -> pa.Table:
    """``batch`` without its decoded pixels: what the last pool hands on is stored in Ray's object store, and
    the write task would only drop them."""
    return batch.drop_columns([f.name for f in PIXEL_FIELDS if f.name in batch.column_names])


def _bound(base: type, cls_name: str, **attrs: Any) -> type:
    """A subclass of ``base`` holding ``attrs`` (its config), named so that each pool has a readable
    name in Ray's logs and stats."""
    return type(cls_name, (base,), {**attrs, "__qualname__": cls_name})


def actor_class(name: str, section: AnalyzerSettings, models: ModelsSettings,
                ledger: str | None = None, last: bool = False, progress: str | None = None) -> type[AnalyzerActor]:
    """An :class:`AnalyzerActor` bound to one analyser's own typed section (``FaceAnalyzerActor``); ``last``:
    it hands its batches on without their pixels; ``progress``: the counter its batches are reported to."""
    return _bound(AnalyzerActor, f"{ANALYZERS[name].__name__}Actor", name=name, section=section, models=models,
                  ledger=ledger, last=last, progress=progress)


def fused_actor_class(names: list[str], sections: dict[str, AnalyzerSettings], models: ModelsSettings,
                      ledger: str | None = None, last: bool = False,
                      decode: dict[str, Any] | None = None, progress: str | None = None) -> type[FusedAnalyzerActor]:
    """A :class:`FusedAnalyzerActor` running ``names`` in that order, each bound to its own typed section
    (``FusedActor(decode,quality,content,face)``); ``last``: it hands its batches on without their pixels;
    ``decode``: it reads and decodes its batches first, with these keywords; ``progress``: the counter it
    reports each member's rows to, once per batch."""
    members = tuple(actor_class(name, sections[name], models, ledger) for name in names)
    title = ",".join((["decode"] if decode is not None else []) + names)
    return _bound(FusedAnalyzerActor, f"FusedActor({title})", members=members, last=last, decode=decode,
                  ledger=ledger, progress=progress)


class StageActor:
    """Ray actor around one cascade stage; frames the stage rejects lose their pixels here."""

    plan: StagePlan
    ledger: str | None = None
    progress: str | None = None   # frames scored (those still active) and passed, per batch

    def __init__(self) -> None:
        self.stage = self.plan.build()
        self.stage.setup()
        self.fields = type(self.stage).fields()

    def _run(self, batch: pa.Table) -> dict[str, list[Any]]:
        active = batch.column("pixels").is_valid().to_pylist()
        previous = {c: batch.column(c).to_pylist() for c in self.stage.uses}
        return self.stage(images_of(batch), active, previous)

    def __call__(self, batch: pa.Table) -> pa.Table:
        crashed: dict[str, Any] = {f"{a.name}_error": crash_message("analysing") for a in self.stage.analyzers}
        crashed[f"{self.stage.name}_passed"] = False
        keys = [f"{u}#{i}" for u, i in zip(batch.column("video_uri").to_pylist(),
                                            batch.column("frame_index").to_pylist())]
        batch = guarded_columns(batch, self.fields, self._run, ledger=self.ledger, scope=self.stage.name, keys=keys,
                                crashed=crashed)
        passed = pc.fill_null(batch.column(f"{self.stage.name}_passed"), False)
        stage = self.stage.name
        report(self.progress, f"{stage}_scored", pc.sum(batch.column("pixels").is_valid()).as_py() or 0)
        report(self.progress, f"{stage}_passed", pc.sum(passed).as_py() or 0)
        for name in ("pixels", "full_pixels"):   # a rejected frame's pixels go no further
            if name in batch.column_names:
                i = batch.schema.get_field_index(name)
                batch = batch.set_column(i, name, pc.if_else(passed, batch.column(name),
                                                             pa.scalar(None, pa.large_binary())))
        trim()
        return batch


class FinisherActor:
    """Ray actor around the video path's Stage 3 step (:class:`~raycurate.video.finisher.VideoFinisher`):
    one per run, so that each video's frames meet in one place. It writes to the run's database and frames
    folder, in a bucket too: ``storage`` holds the driver's resolved bucket settings."""

    kwargs: dict[str, Any]
    storage: dict[str, Any] | None
    progress: str | None = None   # the winners it hands on, counted

    def __init__(self) -> None:
        from ..storage import configure
        from ..video.finisher import VideoFinisher

        if self.storage is not None:
            configure(self.storage)
        self.finisher = VideoFinisher(**self.kwargs)

    def __call__(self, batch: pa.Table) -> pa.Table:
        read_again = self.finisher.read_again
        out = self.finisher(batch)
        report(self.progress, "winners", out.num_rows)
        report(self.progress, "winners_read_again", self.finisher.read_again - read_again)
        report(self.progress, "decoded", out.num_rows)   # the winners go on decoded, as the image rows they are
        return out


def finisher_actor_class(storage: dict[str, Any] | None = None, progress: str | None = None,
                         **kwargs: Any) -> type[FinisherActor]:
    """A :class:`FinisherActor` bound to its run: database, run id, Stage 3 and video sections, targets, and
    the bucket settings its worker process needs; ``progress``: the counter its winners are reported to."""
    return _bound(FinisherActor, "Stage3Actor", kwargs=kwargs, storage=storage, progress=progress)


def stage_actor_class(plan: StagePlan, ledger: str | None = None, progress: str | None = None) -> type[StageActor]:
    """A :class:`StageActor` bound to one stage's plan: its section and its analysers' (``Stage1Actor``)."""
    return _bound(StageActor, f"{STAGES[plan.name].__name__}Actor", plan=plan, ledger=ledger, progress=progress)
