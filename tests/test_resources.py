import pytest

from raycurate.analyzers.base import Resources
from raycurate.resources import actor_request, gpu_fraction


def test_gpu_fraction_from_batch_size_and_memory():
    # 1.2 GB model + 8 x 250 MB at 16 GB: (1200 + 2000) * 1.2 / 16384 = 0.234 -> 0.25
    assert gpu_fraction(Resources(8, 1.0, "cuda", 1200, 250), 16) == 0.25
    assert gpu_fraction(Resources(16, 1.0, "cuda", 1200, 250), 16) == 0.5
    assert gpu_fraction(Resources(64, 1.0, "cuda", 1200, 250), 16) == 1.0
    assert gpu_fraction(Resources(1, 1.0, "cuda", 10, 1), 80) == 1 / 16
    assert gpu_fraction(Resources(8, 1.0, "cpu", 1200, 250), 16) == 0.0


def test_actor_request_pool_bounds():
    cpu = Resources(8, 0.5)
    assert actor_request(cpu, cluster_cpus=2, cluster_gpus=0, gpu_memory_gb=16).max_actors == 4
    req = actor_request(cpu, cluster_cpus=2, cluster_gpus=0, gpu_memory_gb=16, min_actors=2, max_actors=3)
    assert (req.min_actors, req.max_actors, req.num_gpus) == (2, 3, 0.0)
    gpu = Resources(8, 1.0, "cuda", 1200, 250)
    req = actor_request(gpu, cluster_cpus=16, cluster_gpus=1, gpu_memory_gb=16)
    assert (req.num_gpus, req.max_actors) == (0.25, 4)   # four actors share one GPU
    with pytest.raises(RuntimeError, match="no GPU"):
        actor_request(gpu, cluster_cpus=16, cluster_gpus=0, gpu_memory_gb=16)


def test_per_pool_gpu_override_replaces_the_sizing_rule():
    gpu = Resources(8, 1.0, "cuda", 1200, 250)
    req = actor_request(gpu, cluster_cpus=16, cluster_gpus=2, gpu_memory_gb=16, num_gpus=0.5)
    assert (req.num_gpus, req.max_actors) == (0.5, 4)        # two actors per GPU, two GPUs
    cpu = Resources(8, 0.5)   # a CPU analyser ignores it: it asks for no GPU
    assert actor_request(cpu, cluster_cpus=2, cluster_gpus=1, gpu_memory_gb=16, num_gpus=0.5).num_gpus == 0.0


def test_num_gpus_config_is_validated():
    from raycurate.config import ConfigError, load_config

    assert load_config(overrides=[("analyzers.clip.num_gpus", 0.25)])["analyzers"]["clip"]["num_gpus"] == 0.25
    assert load_config(overrides=[("cascade.stage2.num_gpus", 2)])["cascade"]["stage2"]["num_gpus"] == 2
    with pytest.raises(ConfigError, match="analyzers.clip.num_gpus"):
        load_config(overrides=[("analyzers.clip.num_gpus", 1.5)])


# the default analysers, in pipeline order: (name, num_cpus, on the CPU)
ALL_CPU = [("quality", 0.1, True), ("content", 0.1, True), ("face", 0.35, True), ("face_features", 0.35, True),
           ("emotion", 0.2, True), ("nsfw", 0.2, True), ("pose", 0.2, True), ("clip", 0.2, True)]


@pytest.mark.parametrize("cpus, plan", [
    (1, [["quality", "content", "face", "face_features", "emotion", "nsfw", "pose", "clip"]]),
    (2, [["quality", "content", "face", "face_features"], ["emotion", "nsfw", "pose", "clip"]]),
    (4, [["quality", "content", "face"], ["face_features"], ["emotion", "nsfw"], ["pose", "clip"]]),
    (8, [["quality"], ["content"], ["face"], ["face_features"], ["emotion"], ["nsfw"], ["pose"], ["clip"]]),
    (16, [["quality"], ["content"], ["face"], ["face_features"], ["emotion"], ["nsfw"], ["pose"], ["clip"]]),
])
def test_fuse_plan_makes_as_many_balanced_pools_as_cpus(cpus, plan):
    from raycurate.resources import fuse_plan

    assert fuse_plan(ALL_CPU, cpus) == plan
    # the analysers that run without the ones whose weights are absent (this machine's default run)
    five = [a for a in ALL_CPU if a[0] in ("quality", "content", "face", "face_features", "nsfw")]
    assert [n for group in fuse_plan(five, cpus) for n in group] == [a[0] for a in five]   # order kept
    assert len(fuse_plan(five, cpus)) == min(cpus, 5)
    assert fuse_plan(five, 2) == [["quality", "content", "face"], ["face_features", "nsfw"]]


def test_fuse_plan_keeps_gpu_analysers_apart_and_fuses_only_neighbours():
    from raycurate.resources import fuse_plan

    mixed = [("quality", 0.1, True), ("content", 0.1, True), ("face", 0.35, False), ("face_features", 0.35, True),
             ("nsfw", 0.2, True), ("clip", 0.2, False)]
    # a GPU analyser is a pool of its own; the CPU runs on either side of it are fused apart (at least one each)
    assert fuse_plan(mixed, 1) == [["quality", "content"], ["face"], ["face_features", "nsfw"], ["clip"]]
    assert fuse_plan(mixed, 2) == [["quality", "content"], ["face"], ["face_features", "nsfw"], ["clip"]]
    assert fuse_plan(mixed, 3) == [["quality", "content"], ["face"], ["face_features"], ["nsfw"], ["clip"]]
    assert fuse_plan([], 2) == []


def test_fusing_is_automatic_on_small_clusters_only():
    from raycurate.resources import fuse_cpu_pools

    assert fuse_cpu_pools("auto", 2) and fuse_cpu_pools("auto", 4) and not fuse_cpu_pools("auto", 8)
    assert fuse_cpu_pools(True, 64) and not fuse_cpu_pools(False, 1)


def test_a_fused_pool_adds_up_its_members():
    from raycurate.resources import fused_pool

    pool = fused_pool(["face", "nsfw"], [Resources(8, 0.35), Resources(16, 0.2)], [1, 2], [None, 3])
    assert pool.names == ("face", "nsfw") and pool.resources.batch_size == 8
    assert pool.resources.num_cpus == pytest.approx(0.55) and pool.resources.device == "cpu"
    assert (pool.min_actors, pool.max_actors, pool.num_gpus) == (2, 3, None)
    assert fused_pool(["a"], [Resources(4, 0.1)], [1], [None]).max_actors == 1   # one process per pool


def test_a_video_stage_keeps_one_actor_on_a_small_machine_unless_told_otherwise():
    """Memory of a run must not grow with the number of videos: on a small machine (fused pools) a CPU stage
    does not autoscale; a max_actors the user set, a GPU stage and a large cluster are left alone."""
    from raycurate.config import load_config, typed
    from raycurate.resources import small_machine_stage_pool

    s = typed(load_config())
    assert small_machine_stage_pool(s.cascade.stage1, True).max_actors == 1
    assert small_machine_stage_pool(s.cascade.stage2, False).max_actors is None
    two = typed(load_config(overrides=[("cascade.stage1.min_actors", 2), ("cascade.stage2.max_actors", 3)]))
    assert small_machine_stage_pool(two.cascade.stage1, True).max_actors == 2      # min_actors stand
    assert small_machine_stage_pool(two.cascade.stage2, True).max_actors == 3      # the user's cap stands
    gpu = typed(load_config(overrides=[("cascade.stage1.device", "cuda")]))
    assert small_machine_stage_pool(gpu.cascade.stage1, True).max_actors is None
