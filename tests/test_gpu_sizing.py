"""batch_size: auto and ray.gpu_memory_gb: auto, with faked GPU readings (no GPU needed)."""
import sys
import types
from dataclasses import replace

import pytest

from raycurate import gpu_sizing
from raycurate.analyzers import ANALYZERS
from raycurate.analyzers.base import Resources
from raycurate.config import ConfigError, load_config, load_settings, parse_set
from raycurate.gpu_sizing import auto_batch_size, gpu_class, size_pools
from raycurate.resources import gpu_fraction
from raycurate.settings import Settings, as_dict

CARDS = (4, 8, 16, 24, 80)


def _footprint(*names: str) -> Resources:
    figs = [ANALYZERS[n].gpu_memory() for n in names]
    return Resources(0, 1.0, "cuda", sum(f["gpu_model_mb"] for f in figs), sum(f["gpu_item_mb"] for f in figs))


def _sized(res: Resources, gb: float) -> tuple[int, float]:
    batch = auto_batch_size(res, gb)[0]
    return batch, gpu_fraction(replace(res, batch_size=batch), gb)


# (batch size, GPU fraction) on 4, 8, 16, 24 and 80 GB cards, from each analyser's declared footprint
EXPECTED = {
    "face": [(4, 0.25), (8, 0.125), (32, 0.25), (32, 0.125), (32, 0.0625)],
    "face_features": [(4, 0.5), (8, 0.25), (32, 0.25), (32, 0.125), (32, 0.0625)],
    "emotion": [(4, 0.25), (8, 0.125), (32, 0.0625), (32, 0.0625), (32, 0.0625)],
    "nsfw": [(4, 0.25), (8, 0.125), (32, 0.125), (32, 0.0625), (32, 0.0625)],
    "pose": [(2, 0.25), (8, 0.25), (32, 0.25), (32, 0.125), (32, 0.0625)],
    "clip": [(4, 0.5), (8, 0.25), (32, 0.25), (32, 0.125), (32, 0.0625)],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_gpu_analyser_on_4_8_16_24_80_gb_cards(name):
    got = [_sized(_footprint(name), gb) for gb in CARDS]
    assert got == EXPECTED[name]
    for gb, (batch, _) in zip(CARDS, got):   # inside the guidance's range for the card's class
        cls = gpu_class(gb)
        assert cls.batch_min <= batch <= cls.batch_max


def test_the_guidance_classes():
    assert [(gpu_class(gb).batch_min, gpu_class(gb).batch_max) for gb in (2, 3.8, 6, 7.8, 10, 24, 80)] == \
        [(1, 4), (1, 4), (4, 8), (4, 8), (8, 32), (8, 32), (8, 32)]


def test_a_model_bigger_than_a_quarter_uses_the_share_it_needs_anyway():
    stage2 = _footprint("nsfw", "face_features", "emotion", "clip")   # 3.1 GB of models
    assert [_sized(stage2, gb) for gb in CARDS] == [(2, 1.0), (8, 1.0), (32, 0.5), (16, 0.25), (32, 0.125)]
    batch, why = auto_batch_size(Resources(0, 1.0, "cuda", 6000, 10), 4)
    assert batch == 1 and "more than the card" in why


def test_the_reason_names_the_card_the_class_and_the_footprint():
    batch, why = auto_batch_size(_footprint("face"), 8)
    assert batch == 8
    assert why.startswith("auto: 8 GB card (6-8 GB class: batch 4-8) -> 8: (500 MB + 8 x 40 MB) x 1.2")


def _gpu_cfg(*extra: str) -> Settings:
    """nsfw (ships with its wheel) and Stage 1 on cuda; only analysers that need no downloaded weights."""
    sets = ["analyzers.nsfw.device=cuda", "analyzers.face.device=cuda", "analyzers.face.detector=centerface",
            "cascade.stage1.device=cuda", "cascade.stage2.device=cuda", "models.profile=auto",
            "analyzers.clip.enabled=false", "analyzers.pose.enabled=false", "analyzers.emotion.enabled=false",
            "analyzers.face_features.enabled=false", *extra]
    return load_settings(overrides=[parse_set(s) for s in sets])


def _readings(*cards: float) -> dict:
    return {f"node{i}": {"gpus_gb": [gb], "source": "nvml"} for i, gb in enumerate(cards)}


@pytest.mark.parametrize("gb, face, nsfw, stage1", [
    (4, (4, 0.25), (4, 0.25), (4, 0.25)),
    (8, (8, 0.125), (8, 0.125), (8, 0.125)),
    (16, (32, 0.25), (32, 0.125), (32, 0.25)),
    (24, (32, 0.125), (32, 0.0625), (32, 0.125)),
    (80, (32, 0.0625), (32, 0.0625), (32, 0.0625)),
])
def test_a_run_config_is_sized_from_faked_readings(gb, face, nsfw, stage1):
    given = _gpu_cfg()
    s, report = size_pools(given, _readings(gb))
    pools = report["pools"]
    assert (pools["analyzers.face"]["batch_size"], pools["analyzers.face"]["gpu_fraction"]) == face
    assert (pools["analyzers.nsfw"]["batch_size"], pools["analyzers.nsfw"]["gpu_fraction"]) == nsfw
    assert (pools["cascade.stage1"]["batch_size"], pools["cascade.stage1"]["gpu_fraction"]) == stage1
    assert s.analyzers.face.batch_size == face[0] and s.cascade.stage1.batch_size == stage1[0]
    assert s.ray.gpu_memory_gb == gb and report["gpu_memory_gb"].startswith(f"auto: {gb} GB")
    # the CPU pools keep their CPU batch sizes; no auto is left for the engine
    assert s.analyzers.quality.batch_size == 16 and s.analyzers.content.batch_size == 32
    assert pools["analyzers.quality"]["reason"] == "auto: runs on the CPU -> 16"
    assert s.video.batch_size == max(s.cascade.stage1.batch_size, s.cascade.stage2.batch_size)
    assert not gpu_sizing.pending(s)
    # new settings: the ones given are left as they were, every key but the sized ones equal
    assert given == _gpu_cfg() and gpu_sizing.pending(given) and s is not given
    assert (s.filter, s.dedup, s.models, s.analyzers.face.device) == (given.filter, given.dedup, given.models, "cuda")


def test_the_smallest_card_governs():
    s, report = size_pools(_gpu_cfg(), {"a": {"gpus_gb": [79.3, 79.3], "source": "nvml"},
                                        "b": {"gpus_gb": [7.8], "source": "torch"}})
    assert report["smallest_card_gb"] == 7.8 and s.ray.gpu_memory_gb == 7.8
    assert s.analyzers.face.batch_size == 8   # the 6-8 GB class
    assert report["readings"]["b"]["source"] == "torch" and report["unread_nodes"] == []
    # a node whose cards could not be read (neither NVML nor torch) is named; the others govern
    report = size_pools(_gpu_cfg(), {**_readings(24), "c": {"gpus_gb": [], "source": "none"}})[1]
    assert report["unread_nodes"] == ["c"] and report["smallest_card_gb"] == 24


def test_a_number_given_by_the_user_wins():
    s, report = size_pools(_gpu_cfg("analyzers.face.batch_size=3", "video.batch_size=12",
                                    "analyzers.nsfw.num_gpus=0.5"), _readings(80))
    assert s.analyzers.face.batch_size == 3
    assert report["pools"]["analyzers.face"]["reason"] == "set by the user: 3"
    assert s.cascade.stage1.batch_size == 12 and s.video.batch_size == 12
    assert report["pools"]["analyzers.nsfw"]["gpu_fraction"] == 0.5
    # the user's GPU memory sizes the auto batches, whatever the cards say
    s, report = size_pools(_gpu_cfg("ray.gpu_memory_gb=4"), _readings(80))
    assert s.ray.gpu_memory_gb == 4.0 and report["gpu_memory_gb"] == "set by the user: 4 GB"
    assert s.analyzers.face.batch_size == 4


def test_no_gpu_keeps_the_cpu_batch_sizes():
    s, report = size_pools(load_settings(), {})
    assert s.ray.gpu_memory_gb == 16.0 and "no GPU memory read" in report["gpu_memory_gb"]
    assert {n: a["batch_size"] for n, a in as_dict(s.analyzers).items()} == {
        "quality": 16, "face": 8, "face_features": 8, "emotion": 16, "nsfw": 16, "pose": 8, "clip": 32,
        "content": 32}
    assert s.video.batch_size == 16 and s.cascade.stage1.batch_size == 16
    # a cuda pool on a cluster whose memory could not be read: the CPU batch size, and it says so
    s, report = size_pools(_gpu_cfg(), {})
    assert s.analyzers.nsfw.batch_size == 16
    assert "no GPU memory read" in report["pools"]["analyzers.nsfw"]["reason"]


def test_the_schema_takes_auto_or_a_positive_integer():
    assert load_config()["analyzers"]["face"]["batch_size"] == "auto"
    assert load_config(overrides=[parse_set("ray.gpu_memory_gb=24")])["ray"]["gpu_memory_gb"] == 24.0
    for bad in ("analyzers.face.batch_size=0", "analyzers.face.batch_size=big", "video.batch_size=2.5",
                "ray.gpu_memory_gb=-1", "ray.gpu_memory_gb=lots"):
        with pytest.raises(ConfigError, match=bad.split("=")[0]):
            load_config(overrides=[parse_set(bad)])
    with pytest.raises(ConfigError, match="must be 'auto' or a positive integer, got 0"):
        load_config(overrides=[parse_set("analyzers.face.batch_size=0")])


def test_read_local_gpus_nvml_else_torch_else_none(monkeypatch):
    gib = 2**30
    nvml = types.SimpleNamespace(nvmlInit=lambda: None, nvmlShutdown=lambda: None, nvmlDeviceGetCount=lambda: 2,
                                 nvmlDeviceGetHandleByIndex=lambda i: i,
                                 nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(total=(8, 24)[h] * gib))
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert gpu_sizing.read_local_gpus() == ([8.0, 24.0], "nvml")
    cuda = types.SimpleNamespace(is_available=lambda: True, device_count=lambda: 1,
                                 get_device_properties=lambda i: types.SimpleNamespace(total_memory=16 * gib))
    monkeypatch.setitem(sys.modules, "pynvml", None)   # not importable
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    assert gpu_sizing.read_local_gpus() == ([16.0], "torch")
    monkeypatch.setitem(sys.modules, "torch", None)
    assert gpu_sizing.read_local_gpus() == ([], "none")


def test_the_engine_sizes_settings_that_still_say_auto_once(monkeypatch, tmp_path):
    from raycurate.engine import cluster, run_pipeline, run_video_pipeline

    monkeypatch.setattr(cluster, "gpu_readings", lambda: _readings(24))
    s, report = cluster.sized_settings(_gpu_cfg())
    assert s.analyzers.nsfw.batch_size == 32 and report["smallest_card_gb"] == 24
    assert cluster.sized_settings(s) == (s, None)   # nothing auto left: no reading, nothing changed
    # the pipelines never size a second time: settings that still say auto are refused before any work
    for run in (lambda: run_pipeline([], _gpu_cfg(), db_uri=str(tmp_path / "db"), run_id="r"),
                lambda: run_video_pipeline([], _gpu_cfg(), db_uri=str(tmp_path / "db"), run_id="r",
                                           frames_dir=str(tmp_path / "frames"))):
        with pytest.raises(ValueError, match="sized_settings"):
            run()
    assert not (tmp_path / "db").exists() and not (tmp_path / "frames").exists()


@pytest.mark.gpu
def test_the_cards_are_read_on_a_machine_with_a_gpu(ray_session):
    from raycurate.engine import cluster

    cards, source = gpu_sizing.read_local_gpus()
    assert cards and all(gb > 1 for gb in cards) and source in ("nvml", "torch")
    readings = cluster.gpu_readings()   # the same, read by a zero-CPU task on each node
    assert readings and all(r["gpus_gb"] and r["source"] != "none" for r in readings.values())
    s, report = cluster.sized_settings(_gpu_cfg())
    assert report["smallest_card_gb"] == round(min(cards), 1) and not gpu_sizing.pending(s)
