"""The analyser protocol.

An analyser is a plain class (it never imports ray): ``setup()`` loads its model
once, ``analyze(images)`` maps a list of RGB images to one output dict per image.
:meth:`Analyzer.__call__` turns that into new columns of a batch, skipping rows
that already failed, isolating an image that makes the model fail, and adding
the model id/version, an error and a timing column for the analyser.
"""
from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import pyarrow as pa


def choose_by_weights(kind: str, name: str, names: Sequence[str], *, full: str, full_id: str, fallback: str,
                      models_dir: str | None, strict_models: bool = False) -> tuple[str, str]:
    """The model an analyser with a fallback runs, and why (for the manifest): ``name`` when it is asked for by
    name (one of ``names``); ``auto``: ``full`` when the weights ``full_id`` are verified here, else
    ``fallback`` (whose weights ship in a package); under ``strict_models`` missing ``full_id`` weights raise
    the registry's error instead."""
    if name not in names:
        raise ValueError(f"unknown {kind} model {name!r}; known: {', '.join(names)}")
    if name != "auto":
        return name, "asked for by name"
    from .. import models

    root = models.models_dir(models_dir)
    state = models.status(models.REGISTRY[full_id], root)
    if state == "ok":
        return full, f"auto: {full_id} is verified"
    if strict_models:
        models.require(full_id, root)
    return fallback, f"auto: {full_id} is {state} in {root}"


def package_version(dist: str, label: str | None = None) -> str:
    """``label-<installed version of dist>``: the version string behind a model's columns."""
    from importlib.metadata import version

    return f"{label or dist}-{version(dist)}"


@dataclass(frozen=True)
class Resources:
    """What one actor of an analyser needs; :mod:`raycurate.resources` turns it into Ray requests."""

    batch_size: int
    num_cpus: float
    device: str = "cpu"
    gpu_model_mb: float = 0.0     # GPU memory held by the weights and runtime
    gpu_item_mb: float = 0.0      # GPU memory per image in a batch (activations)


class Analyzer(abc.ABC):
    """Base of every analyser: subclasses set ``name``/``model_id`` and implement the abstract methods."""

    name: ClassVar[str]
    model_id: ClassVar[str]
    supports_gpu: ClassVar[bool] = False
    uses: ClassVar[tuple[str, ...]] = ()   # columns of earlier analysers this one reads (e.g. face_boxes)
    # its columns do not depend on the image's size in pixels (scores, fractions, a fixed-size copy's measures):
    # a video's winner keeps the ones the cascade gave it instead of being analysed again (stages.carried_analyzers)
    size_free: ClassVar[bool] = False

    def __init__(self, *, batch_size: int, num_cpus: float, device: str = "cpu") -> None:
        if device != "cpu" and not self.supports_gpu:
            raise ValueError(f"{type(self).__name__} runs on the CPU only; set device: cpu")
        self.resources = Resources(batch_size=batch_size, num_cpus=num_cpus, device=device,
                                   **self.gpu_memory())
        self._ready = False

    # -- what subclasses provide -------------------------------------------------
    @classmethod
    @abc.abstractmethod
    def output_fields(cls) -> list[pa.Field]:
        """The columns this analyser adds (names prefixed with the analyser's name)."""

    @abc.abstractmethod
    def load(self) -> None:
        """Load the model (called once per process by :meth:`setup`)."""

    @abc.abstractmethod
    def analyze(self, images: Sequence[np.ndarray], context: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
        """One dict of output columns per RGB uint8 image; ``context`` holds the ``uses`` columns."""

    def model_version(self) -> str:
        """Version of the model/library behind the columns; recorded in the table and manifest."""
        return ""

    def required_models(self) -> list[str]:
        """Registry ids of the weights this analyser loads (checked on every Ray node before actors start)."""
        from ..models import REGISTRY

        return [self.model_id] if self.model_id in REGISTRY else []

    @classmethod
    def gpu_memory(cls) -> dict[str, float]:
        """GPU memory figures (MB) for :class:`Resources`; CPU-only analysers keep zeros."""
        return {"gpu_model_mb": 0.0, "gpu_item_mb": 0.0}

    # -- shared machinery --------------------------------------------------------
    @classmethod
    def fields(cls) -> list[pa.Field]:
        """Every column the analyser writes, bookkeeping included."""
        return cls.output_fields() + [
            pa.field(f"{cls.name}_model", pa.string()),
            pa.field(f"{cls.name}_error", pa.string()),
            pa.field(f"{cls.name}_ms", pa.float32()),
        ]

    @property
    def model_ref(self) -> str:
        version = self.model_version()
        return f"{self.model_id}@{version}" if version else self.model_id

    def setup(self) -> None:
        if not self._ready:
            self.load()
            self._ready = True

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Add this analyser's columns to ``batch`` (a dict with ``image``, ``error`` and ``uses`` columns)."""
        self.setup()
        images = batch["image"]
        errors = batch["error"]
        n = len(images)
        todo = [i for i in range(n) if errors[i] is None]
        names = [f.name for f in self.output_fields()]
        columns: dict[str, list] = {name: [None] * n for name in names}
        own_errors: list[str | None] = [None] * n
        millis: list[float | None] = [None] * n

        start = time.perf_counter()
        results: dict[int, dict[str, Any]] = {}
        def context(rows: list[int]) -> dict[str, list[Any]]:
            return {k: [batch[k][i] for i in rows] for k in self.uses}

        try:
            outs = self.analyze([images[i] for i in todo], context(todo)) if todo else []
            results = dict(zip(todo, outs))
        except Exception:
            # One bad image must not cost the batch: retry one by one to find it.
            for i in todo:
                try:
                    results[i] = self.analyze([images[i]], context([i]))[0]
                except Exception as exc:  # recorded as data, the run goes on
                    own_errors[i] = f"{type(exc).__name__}: {exc}"[:500]
        per_item = (time.perf_counter() - start) * 1000.0 / max(1, len(todo))

        for i, out in results.items():
            for name in names:
                columns[name][i] = out.get(name)
            millis[i] = per_item
        out_batch = dict(batch)
        out_batch.update(columns)
        out_batch[f"{self.name}_model"] = [self.model_ref] * n
        out_batch[f"{self.name}_error"] = own_errors
        out_batch[f"{self.name}_ms"] = millis
        return out_batch
