"""Memory of the image path on a small machine: fused analyser pools (ray.fuse_cpu_analyzers), the first of
them decoding its own files, and a local Ray's object store and options."""
import pyarrow as pa
import pytest

from raycurate.config import load_settings
from raycurate.settings import RaySettings
from raycurate.rows import PIXEL_FIELDS, read_and_decode
from raycurate.sources import list_media

from .conftest import IMAGES

DECODE = {"max_side": 2048, "max_pixels": 10**9, "storage": None}
FIVE = ["quality", "content", "face", "face_features", "nsfw"]


def _files():
    files = list_media(str(IMAGES / "faces")) + list_media(str(IMAGES / "negatives"))
    return pa.table({"uri": [f.uri for f in files], "size": [f.size for f in files]})


def _settings(*overrides):
    """Typed settings with the batch sizes a run on this machine (no GPU) gives them."""
    from raycurate.gpu_sizing import size_pools

    return size_pools(load_settings(overrides=list(overrides)), {})[0]


def test_a_fused_actor_gives_the_rows_of_one_actor_per_analyser():
    from raycurate.engine.actors import actor_class, fused_actor_class

    s = _settings()
    sections = {n: getattr(s.analyzers, n) for n in FIVE}
    decoded = read_and_decode(_files(), **DECODE)
    one_by_one = decoded
    for name in FIVE:
        one_by_one = actor_class(name, sections[name], s.models)()(one_by_one)
    first = fused_actor_class(FIVE[:3], sections, s.models, decode=DECODE)
    last = fused_actor_class(FIVE[3:], sections, s.models, last=True)
    assert first.__name__ == "FusedActor(decode,quality,content,face)"
    fused = last()(first()(_files()))   # the first pool decodes the files itself
    assert not {f.name for f in PIXEL_FIELDS} & set(fused.column_names)   # the last pool drops the pixels
    expected = one_by_one.drop_columns([f.name for f in PIXEL_FIELDS])
    assert fused.column_names == expected.column_names
    for name in expected.column_names:
        if not name.endswith("_ms"):
            assert fused.column(name).to_pylist() == expected.column(name).to_pylist(), name


def test_the_pool_plan_follows_the_setting_and_the_cluster():
    from raycurate.analyzers import active_analyzers
    from raycurate.engine.images import pool_plan

    s = _settings()
    active = active_analyzers(s.analyzers, s.models)[0]
    assert pool_plan(s, 64) == ([[n] for n in active], False)   # auto: not on a large cluster
    groups, fused = pool_plan(s, 2)   # copies: one pool of every CPU analyser (an actor per CPU)
    assert fused and groups == [active]
    split = _settings(("ray.fused_layout", "split"))
    groups, fused = pool_plan(split, 2)
    assert fused and len(groups) == min(2, len(active)) and [n for g in groups for n in g] == active
    off = load_settings(overrides=[("ray.fuse_cpu_analyzers", False)])
    assert pool_plan(off, 2) == ([[n] for n in active], False)


def test_a_local_ray_gets_its_object_store_size_and_no_dashboard(monkeypatch):
    import ray

    from raycurate.engine import cluster

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **k: calls.append((a, k)))
    cluster.init_ray(RaySettings(num_cpus=2, object_store_memory_gb=1.5))
    kwargs = calls[-1][1]
    assert kwargs["object_store_memory"] == int(1.5 * 1024 ** 3) and kwargs["num_cpus"] == 2
    assert kwargs["include_dashboard"] is False and "num_gpus" not in kwargs
    cluster.init_ray(RaySettings(object_store_memory_gb=None))
    assert "object_store_memory" not in calls[-1][1]   # null: Ray's own default
    cluster.init_ray(RaySettings(address="auto", num_cpus=2, object_store_memory_gb=1.5))
    assert calls[-1][1]["address"] == "auto" and "object_store_memory" not in calls[-1][1]   # a cluster's own


def test_fused_and_separate_pools_store_the_same_rows(ray_session, tmp_path):
    from raycurate.engine import run_pipeline
    from raycurate.store.table import open_images_table

    files = list_media(str(IMAGES / "faces")) + list_media(str(IMAGES / "exif"))
    stored = {}
    for fuse, layout in ((True, "copies"), (True, "split"), (False, "copies")):
        settings = _settings(("ray.fuse_cpu_analyzers", fuse), ("ray.fused_layout", layout))
        db = str(tmp_path / f"db_{fuse}_{layout}")
        result = run_pipeline(files, settings, db_uri=db, run_id="r")
        assert result.rows_written == len(files)
        groups = {tuple(p["pool"]) for p in result.pools.values()}
        if not fuse:
            assert all(len(g) == 1 for g in groups)
        else:
            assert len(groups) == (1 if layout == "copies" else 2)
            actors = {p["min_actors"] for p in result.pools.values()}
            assert actors == ({2} if layout == "copies" else {1})   # copies: an actor per CPU, each runs them all
        stored[(fuse, layout)] = {r["uri"]: {k: v for k, v in r.items() if not k.endswith("_ms") and k != "analyzed_at"}
                                  for r in open_images_table(db).to_arrow().to_pylist()}
    assert stored[(True, "copies")] == stored[(True, "split")] == stored[(False, "copies")]


def test_fused_pools_decode_first_queue_one_batch_and_hand_on_no_pixels(monkeypatch):
    from raycurate.engine import images
    from raycurate.resources import ActorRequest

    calls = []

    def record(ds, udf, res, pool, gpu_memory_gb, cpus, gpus, tasks_in_flight=None, scale=1.0):
        calls.append((udf, res, tasks_in_flight))
        return ds, ActorRequest(num_cpus=res.num_cpus, num_gpus=0.0, min_actors=1, max_actors=1)

    monkeypatch.setattr(images, "add_pool", record)
    s = _settings(("ray.fused_layout", "split"))
    groups, fused = images.pool_plan(s, 2)
    _, requests, pools = images.add_analyzer_pools("ds", s, groups, None, 2, 0, decode=DECODE)
    assert fused and len(calls) == len(groups) == 2
    (first, first_res, first_queue), (last, _, last_queue) = calls
    assert first.decode == DECODE and not first.last and last.decode is None and last.last
    assert first_queue == last_queue == 1   # one actor per pool: one batch queued at it
    # the first pool asks for decode's CPUs too; its batch is its smallest member's
    assert first_res.num_cpus == pytest.approx(s.decode.num_cpus + sum(getattr(s.analyzers, n).num_cpus
                                                                     for n in groups[0]))
    assert pools[groups[0][0]]["pool"] == groups[0] and requests[groups[0][0]] is requests[groups[0][-1]]
    calls.clear()
    off = _settings(("ray.fuse_cpu_analyzers", False))
    images.add_analyzer_pools("ds", off, images.pool_plan(off, 2)[0], None, 2, 0)
    assert all(queue is None for _, _, queue in calls)   # a pool per analyser: Ray Data's default queue
    assert [udf.last for udf, _, _ in calls] == [False] * (len(calls) - 1) + [True]
