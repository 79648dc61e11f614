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
