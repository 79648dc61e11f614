"""``batch_size: auto`` and ``ray.gpu_memory_gb: auto``: batch sizes and GPU memory from the cards a run finds.

When a run starts, every Ray node with a GPU reports its cards' memory (:func:`read_local_gpus`: NVML, else
torch; the engine asks each node). The smallest card governs: every pool must fit on any node.

Batch sizes follow the guidance per GPU memory class (:data:`GPU_CLASSES`): 2-4 GB cards batch 1-4, 6-8 GB
cards 4-8, 10 GB and more 8-32. Inside its class a pool takes the largest power of two whose footprint
(model + batch x per item, x 1.2 headroom: :mod:`raycurate.resources`) fits in a quarter of the card, so that
four pools share a GPU; a model too big for a quarter gets the share its model alone needs. The GPU fraction
then follows that footprint (:func:`raycurate.resources.gpu_fraction`). A pool on the CPU keeps its CPU batch
size (the key's ``cpu_default``). A number given by the user wins. :func:`size_pools` returns new settings
(``dataclasses.replace``) with every ``auto`` replaced by a number, and a report for the manifest saying what was
chosen and why; a run sizes once, on the driver, and every pool takes the sized settings as they are.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from .analyzers.base import Resources
from .resources import HEADROOM, gpu_fraction
from .settings import Settings, cpu_default

AUTO = "auto"
ASSUMED_GPU_GB = 16.0   # ray.gpu_memory_gb: auto where no card could be read (a cluster without GPUs)
POOL_SHARE = 0.25       # a pool's batch fits in this share of a card (four pools per GPU) when its model allows


@dataclass(frozen=True)
class GpuClass:
    """A GPU memory class of the guidance and the batch sizes it allows."""

    name: str
    below_gb: float       # cards with less memory than this (and more than the class before) are in it
    batch_min: int
    batch_max: int


GPU_CLASSES = (GpuClass("2-4 GB", 5.0, 1, 4), GpuClass("6-8 GB", 9.0, 4, 8),
               GpuClass("10 GB and more", float("inf"), 8, 32))


def gpu_class(memory_gb: float) -> GpuClass:
    return next(c for c in GPU_CLASSES if memory_gb < c.below_gb)


def need_mb(res: Resources, batch_size: int) -> float:
    """GPU memory (MB) one actor needs at ``batch_size``, headroom included."""
    return (res.gpu_model_mb + batch_size * res.gpu_item_mb) * HEADROOM


def auto_batch_size(res: Resources, memory_gb: float) -> tuple[int, str]:
    """The batch size of a GPU pool with ``res``'s footprint on a ``memory_gb`` card, and why."""
    cls = gpu_class(memory_gb)
    card_mb = memory_gb * 1024.0
    share = max(POOL_SHARE, gpu_fraction(dataclasses.replace(res, batch_size=cls.batch_min), memory_gb))
    sizes = [b for b in (1, 2, 4, 8, 16, 32) if cls.batch_min <= b <= cls.batch_max]
    fits = [b for b in sizes if need_mb(res, b) <= share * card_mb]
    batch = fits[-1] if fits else cls.batch_min
    why = (f"auto: {memory_gb:g} GB card ({cls.name} class: batch {cls.batch_min}-{cls.batch_max}) -> {batch}: "
           f"({res.gpu_model_mb:g} MB + {batch} x {res.gpu_item_mb:g} MB) x {HEADROOM:g} = "
           f"{need_mb(res, batch) / 1024:.2f} GB")
    if fits:
        why += f", within {share:g} of the card"
    else:
        why += " (more than the card: the model needs a bigger one)" if need_mb(res, batch) > card_mb else \
            f", the class's smallest (more than {share:g} of the card)"
    return batch, why


def read_local_gpus() -> tuple[list[float], str]:
    """This machine's GPUs' total memory (GB, one per card) and how it was read: ``nvml`` (pynvml), else
    ``torch``; ``([], "none")`` without a GPU or either library."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return [pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(i)).total / 2**30
                    for i in range(pynvml.nvmlDeviceGetCount())], "nvml"
        finally:
            pynvml.nvmlShutdown()
    except Exception:   # no pynvml, no driver: try torch
        pass
    try:
        import torch

        if torch.cuda.is_available():
            return [torch.cuda.get_device_properties(i).total_memory / 2**30
                    for i in range(torch.cuda.device_count())], "torch"
    except Exception:
        pass
    return [], "none"


def smallest_card(readings: Mapping[str, Mapping[str, Any]]) -> float | None:
    """The memory (GB) of the smallest card in ``readings`` ({node: {"gpus_gb": [...], "source": ...}})."""
    cards = [gb for r in readings.values() for gb in r["gpus_gb"]]
    return round(min(cards), 1) if cards else None


def size_pools(settings: Settings, readings: Mapping[str, Mapping[str, Any]]) -> tuple[Settings, dict[str, Any]]:
    """New settings (``dataclasses.replace``: ``settings`` is left as it is) with every ``auto`` batch size and
    ``ray.gpu_memory_gb`` replaced by a number, from the GPU ``readings`` of the cluster's nodes; and the report
    for the manifest (readings, the card that governs, per pool: device, batch size, GPU fraction and why)."""
    card = smallest_card(readings)
    report: dict[str, Any] = {"readings": {n: dict(r) for n, r in readings.items()}, "smallest_card_gb": card,
                              "unread_nodes": sorted(n for n, r in readings.items() if not r["gpus_gb"]),
                              "pools": {}}
    given = settings.ray.gpu_memory_gb
    gpu_gb = card   # the memory auto batch sizes follow: the user's number, else the card read
    if given != AUTO:
        gpu_gb = memory = given
        report["gpu_memory_gb"] = f"set by the user: {given:g} GB"
    elif card:
        memory = card
        report["gpu_memory_gb"] = f"auto: {card:g} GB, the smallest card read"
    else:
        memory = ASSUMED_GPU_GB
        report["gpu_memory_gb"] = f"auto: no GPU memory read, {ASSUMED_GPU_GB:g} GB assumed"
    sized = dataclasses.replace(settings, ray=dataclasses.replace(settings.ray, gpu_memory_gb=memory))
    sized, pools = _size_analyzers(sized, gpu_gb)
    report["pools"].update(pools)
    sized, pools = _size_stages(sized, gpu_gb)
    report["pools"].update(pools)
    return sized, report


def _choose(res: Resources, given: Any, cpu: int, gpu_gb: float | None) -> tuple[int, str]:
    if given != AUTO:
        return given, f"set by the user: {given}"
    if res.device == "cpu":
        return cpu, f"auto: runs on the CPU -> {cpu}"
    if gpu_gb is None:
        return cpu, f"auto: no GPU memory read on the cluster -> {cpu}, the CPU batch size"
    return auto_batch_size(res, gpu_gb)


def _record(res: Resources, batch: int, why: str, num_gpus: float | None, gb: float) -> dict[str, Any]:
    sized = dataclasses.replace(res, batch_size=batch)
    fraction = gpu_fraction(sized, gb)
    if fraction > 0 and num_gpus is not None:
        fraction, why = float(num_gpus), f"{why}; GPU fraction set by the user: {num_gpus:g}"
    return {"device": res.device, "batch_size": batch, "gpu_fraction": fraction, "reason": why}


def _size_analyzers(settings: Settings, gpu_gb: float | None) -> tuple[Settings, dict[str, dict[str, Any]]]:
    """Every analyser's ``auto`` batch size made a number; the records of the active ones."""
    from .analyzers import active_analyzers, build_analyzer

    active = active_analyzers(settings.analyzers, settings.models)[0]
    sections, out = {}, {}
    for f in dataclasses.fields(settings.analyzers):
        name, section = f.name, getattr(settings.analyzers, f.name)
        cpu = cpu_default(section, "batch_size")
        if name not in active:
            sections[name] = dataclasses.replace(section, batch_size=cpu if section.batch_size == AUTO
                                                 else section.batch_size)
            continue
        res = build_analyzer(name, section, settings.models).resources   # no model loaded
        batch, why = _choose(res, section.batch_size, cpu, gpu_gb)
        sections[name] = dataclasses.replace(section, batch_size=batch)
        out[f"analyzers.{name}"] = _record(res, batch, why, section.num_gpus, settings.ray.gpu_memory_gb)
    return dataclasses.replace(settings, analyzers=dataclasses.replace(settings.analyzers, **sections)), out


def _size_stages(settings: Settings, gpu_gb: float | None) -> tuple[Settings, dict[str, dict[str, Any]]]:
    """With ``video.batch_size: auto``, each cascade stage without its own batch size gets one; the video
    sampler's batches take the largest (every stage's batch fills)."""
    from .stages import STAGES

    video = settings.video
    cpu = cpu_default(video, "batch_size")
    stages, out = {}, {}
    for name, cls in STAGES.items():
        section = getattr(settings.cascade, name)
        res = cls.build(settings).resources   # no model loaded
        given = section.batch_size if section.batch_size is not None else video.batch_size
        batch, why = _choose(res, given, cpu, gpu_gb)
        stages[name] = dataclasses.replace(section, batch_size=batch)
        out[f"cascade.{name}"] = _record(res, batch, why, section.num_gpus, settings.ray.gpu_memory_gb)
    if video.batch_size == AUTO:
        video = dataclasses.replace(video, batch_size=max(s.batch_size for s in stages.values()))
    return dataclasses.replace(settings, cascade=dataclasses.replace(settings.cascade, **stages), video=video), out


def pending(settings: Settings) -> bool:
    """Whether ``settings`` still hold an ``auto`` that :func:`size_pools` resolves."""
    analyzers = [getattr(settings.analyzers, f.name) for f in dataclasses.fields(settings.analyzers)]
    return AUTO in (settings.ray.gpu_memory_gb, settings.video.batch_size, *(a.batch_size for a in analyzers))


def table(report: Mapping[str, Any]) -> list[str]:
    """The report's pools as lines: ``pool: batch N, GPU fraction F (device) - why``."""
    return [f"{pool}: batch {r['batch_size']}, {r['gpu_fraction']:g} GPU ({r['device']}) - {r['reason']}"
            for pool, r in report["pools"].items()]
