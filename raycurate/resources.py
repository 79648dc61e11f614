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
from dataclasses import dataclass

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
