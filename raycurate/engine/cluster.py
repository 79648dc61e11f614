"""Ray itself: joining or starting the cluster, what it holds, the model check on every node, and the
actor pools sized to fit it."""
from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import replace
from typing import Any, Iterable, Mapping, Sequence

import ray
from ray.data import ActorPoolStrategy

from ..analyzers.base import Resources
from ..console import verbose
from ..gpu_sizing import pending, read_local_gpus, size_pools
from ..resources import ActorRequest, FusedPool, actor_request
from ..settings import AnalyzerSettings, ModelsSettings, RaySettings, Settings, StageSettings


def init_ray(settings: RaySettings) -> None:
    """Join the configured cluster, or start a local Ray (once per process). ``ray.init`` replaces the
    driver's SIGTERM handler with ``sys.exit``: the one before it (:mod:`raycurate.interrupts`'s, during a
    run) is put back."""
    if ray.is_initialized():
        return
    term = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
    try:
        _init(settings)
    finally:
        if term is not None:
            signal.signal(signal.SIGTERM, term)


def shutdown_ray() -> None:
    """Ray left: a local Ray this process started stops with it (its GCS, raylet and workers)."""
    if ray.is_initialized():
        ray.shutdown()


def signal_local_ray() -> None:
    """SIGTERM, without waiting, to every process of the local Ray this driver started and to their children
    (the raylet's workers and agents: a raylet ended with its driver would leave its agents running), and to
    the Ray workers and agents left in this process group by a raylet already gone (a second Ctrl-C during the
    shutdown: they no longer descend from this driver), for a driver about to leave at once. Those still alive
    :data:`REAP_AFTER_S` later are killed by a reaper that outlives the driver: nothing of the run is left
    behind. A cluster joined (``ray.address``) is left alone: its processes are not ours."""
    import psutil   # Ray's own dependency

    node = getattr(ray._private.worker, "_global_node", None)
    if node is None:
        return
    procs: list[psutil.Process] = list(psutil.Process().children(recursive=True))
    for infos in node.all_processes.values():
        for info in infos:
            try:
                proc = psutil.Process(info.process.pid)
                procs += [proc, *proc.children(recursive=True)]
            except psutil.Error:   # gone already
                pass
    group = os.getpgrp()
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if os.getpgid(proc.pid) == group and (proc.info["cmdline"] or [""])[0].startswith("ray::"):
                procs.append(proc)
        except (OSError, psutil.Error):
            pass
    alive: list[str] = []
    for proc in procs:
        try:
            proc.terminate()
            alive.append(f"{proc.pid}:{proc.create_time()}")
        except psutil.Error:
            pass
    if alive:   # a SIGTERM may be ignored or slow (the runtime env agent's web server waits for its requests)
        import subprocess
        import sys

        subprocess.Popen([sys.executable, "-c", _REAPER, str(REAP_AFTER_S), *dict.fromkeys(alive)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


REAP_AFTER_S = 3.0
"""How long the local Ray's processes have to end after the driver's SIGTERM before they are killed."""

# The reaper a leaving driver starts: it outlives the driver, deaf to the signals that ended it, waits up to
# REAP_AFTER_S for the processes named (``pid:create_time``, so a reused pid is never hit), then kills the rest.
_REAPER = """
import signal, sys, psutil
signal.signal(signal.SIGINT, signal.SIG_IGN); signal.signal(signal.SIGTERM, signal.SIG_IGN)
procs = []
for spec in sys.argv[2:]:
    pid, started = spec.split(":")
    try:
        proc = psutil.Process(int(pid))
        if abs(proc.create_time() - float(started)) < 0.01:
            procs.append(proc)
    except psutil.Error:
        pass
for proc in psutil.wait_procs(procs, timeout=float(sys.argv[1]))[1]:
    try:
        proc.kill()
    except psutil.Error:
        pass
"""


def _init(settings: RaySettings) -> None:
    kwargs: dict[str, Any] = {"include_dashboard": False, "ignore_reinit_error": True,
                              "logging_level": logging.INFO if verbose() else logging.WARNING}
    if settings.address:
        ray.init(address=settings.address, **kwargs)
        return
    if settings.num_cpus is not None:
        kwargs["num_cpus"] = settings.num_cpus
    if settings.num_gpus is not None:
        kwargs["num_gpus"] = settings.num_gpus
    if settings.object_store_memory_gb is not None:
        kwargs["object_store_memory"] = int(settings.object_store_memory_gb * 1024 ** 3)
    ray.init(**kwargs)


def cluster_resources() -> tuple[float, float]:
    res = ray.cluster_resources()
    return float(res.get("CPU", 0.0)), float(res.get("GPU", 0.0))


def start_ray(settings: RaySettings) -> tuple[float, float]:
    """Ray up, one progress display (ours, :mod:`.progress`: not Ray Data's per-operator bars nor its
    warning that they are off, unless the run is ``--verbose``); the cluster's CPUs and GPUs."""
    init_ray(settings)
    loud = verbose()
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = loud
    ctx.target_max_block_size = int(settings.block_mb * 1024 ** 2)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.INFO if loud else logging.ERROR)
    return cluster_resources()


def gpu_readings() -> dict[str, dict[str, Any]]:
    """Each alive node's GPUs' memory, read on the node (a zero-CPU task: NVML, else torch) where Ray counts
    a GPU: {node: {"gpus_gb": [...], "source": "nvml" | "torch" | "none", "ray_gpus": n}}."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    read = ray.remote(num_cpus=0, max_retries=0)(read_local_gpus)
    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("GPU", 0) > 0]
    refs = {f"{n['NodeManagerAddress']} ({n['NodeID'][:8]})": read.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote()
            for n in nodes}
    counts = {f"{n['NodeManagerAddress']} ({n['NodeID'][:8]})": n["Resources"]["GPU"] for n in nodes}
    return {node: {"gpus_gb": [round(gb, 2) for gb in cards], "source": source, "ray_gpus": counts[node]}
            for node, (cards, source) in zip(refs, ray.get(list(refs.values())))}


def sized_settings(settings: Settings) -> tuple[Settings, dict[str, Any] | None]:
    """New settings with their ``auto`` batch sizes and GPU memory resolved from the cluster's cards (Ray up),
    and the report for the manifest; ``settings`` themselves and None when nothing is ``auto``. Called once,
    where a run (or a benchmark) starts: the pipelines take sized settings only."""
    if not pending(settings):
        return settings, None
    return size_pools(settings, gpu_readings())


def require_sized(settings: Settings) -> None:
    """Refuse settings that still hold an ``auto`` (:func:`sized_settings` not called): the pipelines never
    size them a second time."""
    if pending(settings):
        raise ValueError("the settings still hold an 'auto' batch size or GPU memory: size them once with "
                         "raycurate.engine.sized_settings before starting a pipeline")


def ensure_models_on_nodes(model_ids: Iterable[str], models: ModelsSettings) -> dict[str, dict[str, str]]:
    """Check, before any actor starts, that every alive node holds the verified weights of ``model_ids``
    in its models directory (``models.dir``, resolved on that node); with ``models.pull_on_nodes`` a node
    pulls what it lacks first. Raises :class:`~raycurate.models.ModelError` naming each node and model that
    is not ready; returns {node ip: {model id: status}}."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from ..models import ModelError, ensure_here

    ids = sorted(set(model_ids))
    if not ids:
        return {}
    check = ray.remote(num_cpus=0, max_retries=0)(ensure_here)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    refs = {f"{n['NodeManagerAddress']} ({n['NodeID'][:8]})": check.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
                ids, models.dir, pull_missing=models.pull_on_nodes)
            for n in nodes}
    report = dict(zip(refs, ray.get(list(refs.values()))))
    bad = [f"{node}: {mid} is {state}" for node, states in report.items() for mid, state in states.items()
           if state != "ok"]
    if bad:
        where = models.dir or "$RAYCURATE_MODELS or ~/.cache/raycurate/models"
        raise ModelError("model weights are not ready on every Ray node (" + "; ".join(bad) + f"). Fill the models "
                         f"directory ({where}) on each node with `raycurate models pull` (or copy it there and run "
                         "`raycurate models verify --record`), or set models.pull_on_nodes: true on a cluster "
                         "with internet")
    return report


def add_pool(ds: ray.data.Dataset, udf: type, resources: Resources,
             pool: AnalyzerSettings | StageSettings | FusedPool, gpu_memory_gb: float, cpus: float,
             gpus: float, tasks_in_flight: int | None = None, scale: float = 1.0
             ) -> tuple[ray.data.Dataset, ActorRequest]:
    """``ds`` followed by an actor pool running ``udf``, sized by ``resources`` and the pool keys of the
    analyser's or stage's section, or of a fused pool (min_actors, max_actors, num_gpus);
    ``tasks_in_flight``: batches queued at an actor at once (None: Ray Data's default, 2); ``scale``: its
    actors ask this share of their CPUs (:func:`cpu_scale`; the pool's size range stays as sized)."""
    req = actor_request(resources, cluster_cpus=cpus, cluster_gpus=gpus, gpu_memory_gb=gpu_memory_gb,
                        min_actors=pool.min_actors, max_actors=pool.max_actors, num_gpus=pool.num_gpus)
    req = replace(req, num_cpus=req.num_cpus * scale)
    # Ray Data's defaults restart an actor that dies and resubmit the batch it held, without limit
    # (max_restarts=-1, max_task_retries=-1); the crash ledger (faults.py) ends the loop for a file that
    # keeps killing workers. tests/test_faults.py holds both to that. Ray Data hands each actor its transform
    # and context by object reference, so with restarts on, Ray's core worker logs one
    # "E ... core_worker.cc ... constructor arguments in the object store" line per process, whatever the
    # actor class holds (ray#53727); the run sends it to OUT/logs/ (raycurate/console.py).
    ds = ds.map_batches(udf, batch_size=resources.batch_size, batch_format="pyarrow", num_cpus=req.num_cpus,
                        num_gpus=req.num_gpus or None,
                        compute=ActorPoolStrategy(min_size=req.min_actors, max_size=req.max_actors,
                                                 max_tasks_in_flight_per_actor=tasks_in_flight))
    return ds, req


def cpu_needed(task_cpus: float, requests: Mapping[str, ActorRequest]) -> float:
    """The CPUs one task and the actor pools' minimum sizes ask for."""
    return task_cpus + sum(r.num_cpus * r.min_actors for r in requests.values())


def cpu_scale(needed: Sequence[float], cpus: float) -> float:
    """The share of their CPUs that the parts of one graph (each of which fits alone: ``needed``) ask for so
    that their minimum sizes fit the cluster together: 1 where they do. CPUs only place Ray's actors and tasks:
    a machine too small for every pool at once shares its cores between them (the OS schedules the threads)."""
    total = sum(needed)
    return 1.0 if total <= cpus + 1e-9 else cpus / total


def check_pools_fit(task_cpus: float, requests: Mapping[str, ActorRequest], cpus: float, what: str) -> None:
    """Refuse, with a message, pools whose minimum sizes cannot start (Ray would wait forever)."""
    needed = cpu_needed(task_cpus, requests)
    if needed > cpus + 1e-9:
        raise RuntimeError(
            f"{what} need {needed:g} CPUs for one task and the actor pools' minimum sizes but the Ray cluster "
            f"has {cpus:g}; lower num_cpus or min_actors of the pools, or add CPUs")
