"""The 3-stage cascade over video frames: plain classes, no ray.

Stage 1 (fast, low threshold, recall first): quality + face detection only, at
its own detection size and threshold (``cascade.stage1.det_size``, ``det_thresh``);
it narrows the cascade (faceless frames stop, the best per window go on).
Stage 2 (medium threshold, quality and attribute sort): the content vector and
NSFW always; CLIP (embedding, zero-shot attributes, aesthetic score) when its weights
are present, and the expression of Stage 1's faces (DeepFace where its weights are
verified, else FER, which every install has) (the same ``models.profile`` rule as
the image path decides; the manifest says which ran);
the identity embedding and head pose (face_features) only when the run looks for
named people.
Stage 3 (high threshold, best for training): an ensemble of the stored scores,
computed per video as soon as its frames are all scored (see
:mod:`raycurate.video.finisher` and :mod:`raycurate.video.select`).

Each stage scores every frame it sees and stores the score; its gate only
decides which frames go on. The scores are heuristics over the analysers'
measures, written out below so that a user can see why a frame won.
"""
from __future__ import annotations

import abc
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import pyarrow as pa

from .analyzers import Analyzer, build_analyzer
from .analyzers.base import Resources
from .settings import AnalyzerSettings, ModelsSettings, Settings, Stage1Settings, StageSettings

SHARPNESS_REF = 1000.0   # variance of the Laplacian that counts as fully sharp
CONTRAST_REF = 0.25      # RMS contrast that counts as full contrast
FACE_AREA_REF = 0.05     # a face covering 5% of the frame counts as a full-size face
FACE_SHARPNESS_REF = 400.0  # face-crop sharpness (112 px crop) that counts as fully sharp


def sharpness_part(sharpness: float) -> float:
    return min(1.0, math.log1p(max(0.0, sharpness)) / math.log1p(SHARPNESS_REF))


def face_sharpness_part(row: Mapping[str, Any]) -> float:
    """The main (largest) face's crop sharpness mapped onto 0..1 by sqrt(s / 400); 0 without a face."""
    values = row.get("face_sharpness") or []
    if not values or values[0] is None:
        return 0.0
    return min(1.0, math.sqrt(max(0.0, float(values[0])) / FACE_SHARPNESS_REF))


def face_area_part(row: Mapping[str, Any]) -> float:
    return min(1.0, float(row["face_largest_area"] or 0.0) / FACE_AREA_REF)


def contrast_part(contrast: float) -> float:
    return min(1.0, max(0.0, contrast) / CONTRAST_REF)


class CascadeStage(abc.ABC):
    """Some analysers, one score per frame, one threshold."""

    name: ClassVar[str]
    analyzer_names: ClassVar[tuple[str, ...]]
    optional_names: ClassVar[tuple[str, ...]] = ()   # run when active (enabled, weights present)
    uses: ClassVar[tuple[str, ...]] = ()   # columns of earlier stages that the score (or an analyser) reads

    @classmethod
    def analyzer_overrides(cls, section: StageSettings) -> dict[str, dict[str, Any]]:
        """Analyser settings the stage's own section overrides ({analyser: {key: value}})."""
        return {}

    def __init__(self, analyzers: Sequence[Analyzer], *, threshold: float, batch_size: int, num_cpus: float,
                 device: str = "cpu", section: StageSettings | None = None, window: int = 0) -> None:
        self.analyzers = list(analyzers)
        self.threshold = threshold
        self.section = section
        self.window = window   # video.min_separation: frames closer than this cannot both win
        # the stage asks for a GPU only when one of its analysers really runs there (a CPU-only analyser,
        # or a face detector that fell back to OpenCV, stays on the CPU)
        device = next((a.resources.device for a in self.analyzers if a.resources.device != "cpu"), "cpu")
        self.resources = Resources(batch_size=batch_size, num_cpus=num_cpus, device=device,
                                   gpu_model_mb=sum(a.resources.gpu_model_mb for a in self.analyzers),
                                   gpu_item_mb=sum(a.resources.gpu_item_mb for a in self.analyzers))

    @classmethod
    def optional(cls, active: Sequence[str], people: bool) -> list[str]:
        """The optional analysers the stage runs: those active (enabled, weights present)."""
        return [n for n in cls.optional_names if n in active]

    @classmethod
    def plan(cls, settings: Settings, people: bool = False) -> "StagePlan":
        """What the stage is built from (on the driver): its own ``cascade.stageN`` section and the typed
        sections of the analysers it runs, with the stage's batch size, CPUs, device and overrides applied.
        Optional analysers are in when active (enabled, weights present); ``people``: the run looks for
        named people (``--person``)."""
        from .analyzers import ANALYZERS, active_analyzers

        section: StageSettings = getattr(settings.cascade, cls.name)
        batch_size = section.batch_size or settings.video.batch_size
        active = active_analyzers(settings.analyzers, settings.models)[0] if cls.optional_names else []
        names = list(cls.analyzer_names) + cls.optional(active, people)
        overrides = cls.analyzer_overrides(section)
        sections = tuple((name, dataclasses.replace(
            getattr(settings.analyzers, name), batch_size=batch_size, num_cpus=section.num_cpus,
            # a CPU-only analyser stays on the CPU in a GPU stage
            device=section.device if ANALYZERS[name].supports_gpu else "cpu", **overrides.get(name, {})))
            for name in names)
        return StagePlan(cls.name, section, batch_size, sections, settings.models, settings.video.min_separation)

    @classmethod
    def from_plan(cls, plan: "StagePlan") -> "CascadeStage":
        """The stage (its analysers built, no model loaded) from its plan: what a stage actor receives."""
        analyzers = [build_analyzer(name, section, plan.models) for name, section in plan.analyzers]
        return cls(analyzers, threshold=plan.section.threshold, batch_size=plan.batch_size,
                   num_cpus=plan.section.num_cpus, device=plan.section.device, section=plan.section,
                   window=plan.window)

    @classmethod
    def build(cls, settings: Settings, people: bool = False) -> "CascadeStage":
        return cls.from_plan(cls.plan(settings, people))

    @classmethod
    def fields(cls) -> list[pa.Field]:
        from .analyzers import ANALYZERS

        fields = [f for name in cls.analyzer_names + cls.optional_names for f in ANALYZERS[name].fields()]
        return fields + [pa.field(f"{cls.name}_score", pa.float32()), pa.field(f"{cls.name}_passed", pa.bool_())]

    def setup(self) -> None:
        for a in self.analyzers:
            a.setup()

    @abc.abstractmethod
    def score(self, row: Mapping[str, Any]) -> float:
        """The stage's score of one frame from its analysers' columns (and ``uses``)."""

    def passes(self, row: Mapping[str, Any], score: float) -> bool:
        """Whether a frame goes on: its score reaches the threshold."""
        return score >= self.threshold

    def narrow(self, rows: Sequence[Mapping[str, Any] | None], scores: Sequence[float | None],
               passed: list[bool | None]) -> None:
        """A last say over the batch's verdicts (in place); by default none."""

    def __call__(self, images: Sequence[np.ndarray], active: Sequence[bool],
                 previous: Mapping[str, Sequence[Any]] | None = None) -> dict[str, list]:
        """Columns for every row; rows not ``active`` (rejected earlier or undecodable) get nulls.

        ``previous`` holds the earlier stages' columns named in ``uses``.
        """
        batch: dict[str, Any] = {"image": list(images), "error": [None if a else "inactive" for a in active]}
        batch.update(previous or {})   # earlier stages' columns an analyser reads (emotion: face_boxes)
        for a in self.analyzers:
            batch = a(batch)
        n = len(images)
        scores: list[float | None] = [None] * n
        passed: list[bool | None] = [None] * n
        rows: list[dict[str, Any] | None] = [None] * n
        for i in range(n):
            if not active[i]:
                continue
            row = rows[i] = {k: v[i] for k, v in batch.items() if k not in ("image", "error")}
            if any(row.get(f"{a.name}_error") for a in self.analyzers if a.name in self.analyzer_names):
                passed[i] = False
                continue
            try:
                scores[i] = self.score(row)
                passed[i] = self.passes(row, scores[i])
            except (TypeError, ValueError, KeyError):  # a missing measure: the frame does not pass
                passed[i] = False
        self.narrow(rows, scores, passed)
        out = {f.name: batch.get(f.name, [None] * n) for f in self.fields()}
        out[f"{self.name}_score"] = scores
        out[f"{self.name}_passed"] = passed
        return out


class Stage1(CascadeStage):
    """Fast recall: 0.3 x frame sharpness + 0.3 x main face's sharpness + 0.2 x face size + 0.2 x (a face is
    present), from face detection alone, at its low detection threshold.

    It narrows the cascade: a frame without a face stops here (``keep_faceless`` keeps it, for scenery),
    and of the frames of one video that lie in one window of ``video.min_separation`` source frames (which
    cannot both win), only the ``best_per_window`` best by this score go on (within a batch of consecutive
    frames). So Stage 2's costlier models see a fraction of the sampled frames."""

    name = "stage1"
    analyzer_names = ("quality", "face")
    uses = ("video_id", "frame_index")

    @classmethod
    def analyzer_overrides(cls, section: Stage1Settings) -> dict[str, dict[str, Any]]:
        return {"face": {k: getattr(section, k) for k in ("det_size", "det_thresh") if getattr(section, k) is not None}}

    def score(self, row: Mapping[str, Any]) -> float:
        return (0.3 * sharpness_part(row["quality_sharpness"]) + 0.3 * face_sharpness_part(row)
                + 0.2 * face_area_part(row) + 0.2 * min(1.0, float(row["face_count"])))

    def passes(self, row: Mapping[str, Any], score: float) -> bool:
        keep_faceless = getattr(self.section, "keep_faceless", False)
        return score >= self.threshold and (keep_faceless or int(row["face_count"] or 0) > 0)

    def narrow(self, rows: Sequence[Mapping[str, Any] | None], scores: Sequence[float | None],
               passed: list[bool | None]) -> None:
        best = getattr(self.section, "best_per_window", None)
        if not best or self.window <= 1:
            return
        windows: dict[tuple[Any, int], list[int]] = {}
        for i, row in enumerate(rows):
            if passed[i] and row is not None and row.get("frame_index") is not None:
                windows.setdefault((row.get("video_id"), int(row["frame_index"]) // self.window), []).append(i)
        for members in windows.values():
            for i in sorted(members, key=lambda i: (-float(scores[i] or 0.0), i))[best:]:
                passed[i] = False


AESTHETIC_LOW, AESTHETIC_HIGH = 3.0, 7.0   # LAION aesthetic scores mapped linearly onto 0..1


def aesthetic_part(score: float) -> float:
    return min(1.0, max(0.0, (score - AESTHETIC_LOW) / (AESTHETIC_HIGH - AESTHETIC_LOW)))


class Stage2(CascadeStage):
    """Quality and attributes: base = 0.4 x exposure + 0.3 x contrast + 0.3 x (1 - NSFW score); where an
    aesthetic score was stored, 0.6 x base + 0.4 x aesthetic (3..7 mapped onto 0..1). CLIP's attributes and
    the emotion are stored for sorting and filtering; they do not enter the score."""

    name = "stage2"
    analyzer_names = ("content", "nsfw")
    optional_names = ("face_features", "emotion", "clip")

    @classmethod
    def optional(cls, active: Sequence[str], people: bool) -> list[str]:
        """Identity embeddings and head pose (face_features) only when the run looks for named people: they
        decide a frame there; otherwise a winner gets them in the image path, at full size, and the frames
        that do not win need none."""
        return [n for n in super().optional(active, people) if people or n != "face_features"]
    uses = ("quality_exposure", "quality_contrast", "face_boxes", "face_kps", "face_scores", "face_sharpness")

    def score(self, row: Mapping[str, Any]) -> float:
        base = (0.4 * float(row["quality_exposure"]) + 0.3 * contrast_part(row["quality_contrast"])
                + 0.3 * (1.0 - float(row["nsfw_score"])))
        if row.get("clip_aesthetic") is None:
            return base
        return 0.6 * base + 0.4 * aesthetic_part(float(row["clip_aesthetic"]))


STAGES: dict[str, type[CascadeStage]] = {"stage1": Stage1, "stage2": Stage2}


@dataclass(frozen=True)
class StagePlan:
    """Everything one stage is built from, typed: no other part of the config travels with it."""

    name: str
    section: StageSettings
    batch_size: int
    analyzers: tuple[tuple[str, AnalyzerSettings], ...]
    models: ModelsSettings
    window: int = 0   # video.min_separation (Stage 1's windows)

    def build(self) -> CascadeStage:
        return STAGES[self.name].from_plan(self)


def carried_analyzers(settings: Settings, people: bool = False) -> list[str]:
    """The analysers whose columns a video's winner brings from the cascade to the image analysis, which then
    does not run them on it again: those the cascade runs (Stages 1-2, ``people``: with ``--person``) that the
    image path runs too, whose columns do not depend on the image's size in pixels (``size_free``) and whose
    stage settings are the image path's own but for batch size, CPUs and device (no stage override)."""
    from .analyzers import ANALYZERS, active_analyzers

    images = set(active_analyzers(settings.analyzers, settings.models)[0])
    out = []
    for cls in STAGES.values():
        for name, section in cls.plan(settings, people).analyzers:
            own = getattr(settings.analyzers, name)
            if (name in images and ANALYZERS[name].size_free and name not in out
                    and dataclasses.replace(section, batch_size=own.batch_size, num_cpus=own.num_cpus,
                                            device=own.device) == own):
                out.append(name)
    return out


def carried_fields(settings: Settings, people: bool = False) -> list[pa.Field]:
    """The columns of :func:`carried_analyzers`, in their order."""
    from .analyzers import ANALYZERS

    return [f for name in carried_analyzers(settings, people) for f in ANALYZERS[name].fields()]


def check_runnable(settings: Settings) -> None:
    """Build every active analyser and every stage (no model is loaded): a bad section fails now, naming it;
    under ``models.profile: strict`` a missing weight raises naming the fix."""
    from .analyzers import check_analyzers

    check_analyzers(settings.analyzers, settings.models)
    check_stages(settings)


def check_stages(settings: Settings) -> None:
    """Build every stage (no model is loaded) so that a bad ``cascade`` section fails now, naming it."""
    from .config import ConfigError

    for name, cls in STAGES.items():
        try:
            cls.build(settings)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"config section cascade.{name}: {exc}") from exc
