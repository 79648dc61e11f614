"""Memory of the image path on a small machine: a local Ray's object store and options."""


def test_a_local_ray_gets_its_object_store_size_and_no_dashboard(monkeypatch):
    import ray

    from raycurate.engine import cluster

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **k: calls.append((a, k)))
    cluster.init_ray({"address": None, "num_cpus": 2, "num_gpus": None, "object_store_memory_gb": 1.5})
    kwargs = calls[-1][1]
    assert kwargs["object_store_memory"] == int(1.5 * 1024 ** 3) and kwargs["num_cpus"] == 2
    assert kwargs["include_dashboard"] is False and "num_gpus" not in kwargs
    cluster.init_ray({"address": None, "num_cpus": None, "num_gpus": None, "object_store_memory_gb": None})
    assert "object_store_memory" not in calls[-1][1]   # null: Ray's own default
    cluster.init_ray({"address": "auto", "num_cpus": 2, "num_gpus": None, "object_store_memory_gb": 1.5})
    assert calls[-1][1]["address"] == "auto" and "object_store_memory" not in calls[-1][1]   # a cluster's own
