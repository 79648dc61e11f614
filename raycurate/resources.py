"""How an analyser's declared needs become Ray resource requests. The one place for the rule.

GPU fraction: an actor needs its model's memory plus ``batch_size`` images'
activations, with 20% headroom, out of one GPU's memory; the fraction is
rounded *up* to a power of two (1/16, 1/8, 1/4, 1/2, 1) so that actors pack
evenly onto a GPU. For example a model of 1.2 GB with 250 MB per image at batch
size 8 on a 16 GB GPU: (1200 + 8 * 250) * 1.2 / 16384 = 0.23 -> 0.25 GPU, so
four actors share one GPU. A CPU analyser asks for no GPU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from .analyzers.base import Resources

HEADROOM = 1.2
MIN_GPU_FRACTION = 1.0 / 16.0


def gpu_fraction(res: Resources, gpu_memory_gb: float) -> float:
    """Fraction of one GPU for one actor of an analyser with these resources."""
    if not res.device.startswith("cuda"):
        return 0.0
    need_mb = (res.gpu_model_mb + res.batch_size * res.gpu_item_mb) * HEADROOM
    raw = need_mb / (gpu_memory_gb * 1024.0)
    if raw >= 1.0:
        return 1.0
    if raw <= MIN_GPU_FRACTION:
        return MIN_GPU_FRACTION
    return 2.0 ** math.ceil(math.log2(raw))


@dataclass(frozen=True)
class ActorRequest:
    num_cpus: float
    num_gpus: float
    min_actors: int
    max_actors: int


class ResourceError(RuntimeError):
    """The cluster cannot hold what the configuration asks for."""


def actor_request(res: Resources, *, cluster_cpus: float, cluster_gpus: float, gpu_memory_gb: float,
                  min_actors: int = 1, max_actors: int | None = None,
                  num_gpus: float | None = None) -> ActorRequest:
    """Ray resources of one actor and the size range of its pool.

    The pool autoscales from ``min_actors`` up to ``max_actors`` (default: as many
    as the cluster's CPUs or GPUs can hold).
    """
    gpus = gpu_fraction(res, gpu_memory_gb)
    if gpus > 0 and num_gpus is not None:   # the user's per-pool override of the sizing rule
        gpus = float(num_gpus)
    if gpus > 0:
        if cluster_gpus <= 0:
            raise ResourceError(
                f"an analyser asks for device={res.device!r} but the Ray cluster has no GPU; "
                "set its device to cpu or join a cluster with GPUs")
        fit = int(cluster_gpus / gpus)
    else:
        fit = int(cluster_cpus / res.num_cpus)
    cap = max(1, fit)
    if max_actors is not None:
        cap = min(cap, max_actors)
    cap = max(cap, min_actors)
    return ActorRequest(num_cpus=res.num_cpus, num_gpus=gpus, min_actors=min_actors, max_actors=cap)


# -- fused CPU pools ---------------------------------------------------------------------------------------
# On a small machine one actor pool per analyser costs one process per analyser, each with its own copy of
# Python, Ray, pyarrow and the model runtimes (a few hundred MB each), for work a few cores do anyway. Fused,
# consecutive CPU analysers share one actor: as many pools as the cluster has CPUs.
FUSE_AUTO_MAX_CPUS = 4   # ray.fuse_cpu_analyzers: auto fuses on clusters with at most this many CPUs


def fuse_cpu_pools(setting: bool | str, cluster_cpus: float) -> bool:
    """Whether the image path fuses its CPU analysers (``ray.fuse_cpu_analyzers``: true, false or auto)."""
    if setting == "auto":
        return cluster_cpus <= FUSE_AUTO_MAX_CPUS
    return bool(setting)


def small_machine_stage_pool(section: Any, small: bool) -> Any:
    """A video stage's pool keys (its typed section): on a small machine (``fuse_cpu_pools``) a CPU stage keeps
    ``min_actors`` actors, at least one, unless its ``max_actors`` is set. Its cores are busy already (decoding,
    the other stage): a second actor would be a second copy of the models, there for as long as the backlog of
    a long input lasts, so memory would grow with the number of videos."""
    if small and section.device == "cpu" and section.max_actors is None:
        return replace(section, max_actors=max(1, section.min_actors))
    return section


def _split(weights: list[float], parts: int) -> list[tuple[int, int]]:
    """``weights`` cut into ``parts`` consecutive non-empty runs whose heaviest is as light as can be (then the
    most even; then the earliest cuts), as (start, end) pairs."""
    from itertools import combinations

    best: tuple[tuple[float, float], list[tuple[int, int]]] | None = None
    for cuts in combinations(range(1, len(weights)), parts - 1):
        bounds = [0, *cuts, len(weights)]
        spans = list(zip(bounds, bounds[1:]))
        sums = [sum(weights[a:b]) for a, b in spans]
        score = (round(max(sums), 9), round(sum(x * x for x in sums), 9))
        if best is None or score < best[0]:
            best = (score, spans)
    assert best is not None
    return best[1]


def fuse_plan(analyzers: list[tuple[str, float, bool]], pools: int) -> list[list[str]]:
    """The analysers' pools, in pipeline order, from ``(name, num_cpus, on_cpu)`` in pipeline order: an
    analyser on a GPU keeps a pool of its own; each run of consecutive CPU analysers between them is split
    into consecutive groups, one pool each, balanced by ``num_cpus`` (the heaviest group as light as can be).
    ``pools`` (the cluster's CPUs) is how many CPU pools there are in all, at least one per run, at most one
    per analyser; with one pool per analyser nothing is fused."""
    runs: list[list[tuple[str, float, bool]]] = []
    for item in analyzers:
        if item[2] and runs and runs[-1][0][2]:
            runs[-1].append(item)
        else:
            runs.append([item])
    weights = {i: [w for _, w, _ in run] for i, run in enumerate(runs) if run[0][2]}
    parts = dict.fromkeys(weights, 1)

    def heaviest(i: int) -> float:
        return max(sum(weights[i][a:b]) for a, b in _split(weights[i], parts[i]))

    while sum(parts.values()) < pools:
        room = [i for i in weights if parts[i] < len(weights[i])]
        if not room:
            break
        parts[max(room, key=lambda i: (heaviest(i), -i))] += 1   # the run with the heaviest group, first first
    plan: list[list[str]] = []
    for i, run in enumerate(runs):
        spans = _split(weights[i], parts[i]) if i in weights else [(0, 1)]
        plan.extend([name for name, _, _ in run[a:b]] for a, b in spans)
    return plan


@dataclass(frozen=True)
class FusedPool:
    """One actor pool running several analysers in turn, and its pool keys made from theirs: the sum of
    their CPUs, the smallest batch, the largest ``min_actors``, the smallest ``max_actors`` set, else one
    actor (the plan already makes a pool per CPU: another actor would be another process)."""

    names: tuple[str, ...]
    resources: Resources
    min_actors: int
    max_actors: int
    num_gpus: float | None = None


def fused_pool(names: list[str], resources: list[Resources], min_actors: list[int],
               max_actors: list[int | None]) -> FusedPool:
    caps = [m for m in max_actors if m is not None]
    res = Resources(batch_size=min(r.batch_size for r in resources), num_cpus=sum(r.num_cpus for r in resources))
    return FusedPool(names=tuple(names), resources=res, min_actors=max(min_actors),
                     max_actors=min(caps) if caps else 1)
