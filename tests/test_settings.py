"""The settings schema is the one place a key's type, default, range and help live: the defaults
file, --set, the UI's widgets and the documentation's settings reference agree with it."""
import inspect

import pytest

from raycurate import config
from raycurate.config import ConfigError, load_config, load_yaml, parse_set
from raycurate.analyzers import ANALYZERS
from raycurate.settings import (KEYS, POOL_KEYS, AnalyzersSettings, FaceSettings, Settings, Stage1Settings,
                                default_mapping, settings_of)
from raycurate.settings.docs import tables
from raycurate.settings.schema import check_value, cpu_default, keys
from raycurate.ui import params


def _flat(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flat(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def test_defaults_file_equals_the_schema():
    on_file = dict(_flat(load_yaml(config.DEFAULT_CONFIG)))
    schema = dict(_flat(default_mapping()))
    assert on_file.keys() == schema.keys()
    for key, value in schema.items():
        assert on_file[key] == value and type(on_file[key]) is type(value), key


def test_every_key_has_help_and_a_default_its_own_rule_accepts():
    assert len(KEYS) > 150
    for key in KEYS.values():
        assert key.help.strip(), key.path
        assert check_value(key, key.default) == key.default, key.path


def test_settings_tables_hold_every_key_once():
    """The tables ``raycurate config --keys`` prints and the documentation's settings reference is generated
    from (docs/gen_ref.py; tests/test_docs.py checks the built page): one row per key, in schema order."""
    rows = [line.split("|")[1].strip().strip("`") for line in tables(Settings).splitlines()
            if line.startswith("| `")]
    assert rows == [k.path for k in keys(Settings)]


def test_ui_widgets_come_from_the_schema():
    for p in params.VIDEO_PARAMS + params.THRESHOLDS:
        key = KEYS[p.key]
        assert p.info == key.help and p.label == key.widget.label
        if p.kind is not bool:   # the slider's ends are values the schema accepts
            assert check_value(key, p.kind(p.minimum)) is not None and check_value(key, p.kind(p.maximum)) is not None


@pytest.mark.parametrize("key", sorted(KEYS))
def test_set_refuses_a_wrong_type_naming_the_key(key):
    with pytest.raises(ConfigError, match=f"config key {key}"):
        load_config(overrides=[(key, {"not": "a value"})])


@pytest.mark.parametrize("item, message", [
    ("video.sample_rate=0", "video.sample_rate must be a positive integer"),
    ("cascade.stage1.det_size=100", "cascade.stage1.det_size must be a multiple of 32"),
    ("analyzers.face.num_gpus=1.5", "a fraction in (0, 1] or a whole number of GPUs"),
    ("dedup.columns.clip_embedding=3", "a cosine distance in [0, 2]"),
    ("video.decoders=[ffmpeg]", "a non-empty list of: decord, pyav, opencv"),
    ("storage.s3.access_key_id=5", "must be str, got a int"),   # a secret is never echoed
])
def test_set_applies_the_schema_rules(item, message):
    with pytest.raises(ConfigError) as info:
        load_config(overrides=[parse_set(item)])
    assert message in str(info.value)


@pytest.mark.parametrize("preset", config.PRESETS)
def test_presets_use_schema_keys(preset):
    assert settings_of(load_config(preset=preset)).video.sample_rate >= 1


@pytest.mark.parametrize("profile", config.PROFILES)
def test_profiles_use_schema_keys(profile):
    assert isinstance(settings_of(load_config(profile=profile)), Settings)


def test_typed_sections():
    s = config.typed(load_config(overrides=[parse_set("cascade.stage1.det_size=512"),
                                            parse_set("analyzers.quality.blur_threshold=10")]))
    assert isinstance(s.analyzers.face, FaceSettings) and isinstance(s.cascade.stage1, Stage1Settings)
    assert s.cascade.stage1.det_size == 512 and s.analyzers.quality.blur_threshold == 10.0
    assert s.video.decoders == ("decord", "pyav", "opencv")   # frozen: lists become tuples
    assert s.analyzers.face_features.pack == s.analyzers.face.pack   # resolved by load_config


@pytest.mark.parametrize("name", sorted(ANALYZERS))
def test_analyser_defaults_are_the_schemas(name):
    """An analyser made by hand (a library user, a test) gets the defaults a run gets."""
    section = type(getattr(AnalyzersSettings(), name))
    schema = {k.path: k.default for k in keys(section)}
    params = inspect.signature(ANALYZERS[name].__init__).parameters.values()
    for p in params:
        if p.name in ("self", "models_dir", "strict_models"):
            continue
        assert p.name in schema, f"{name}: constructor keyword {p.name} is not a key of analyzers.{name}"
        if p.default is not inspect.Parameter.empty and schema[p.name] is not None:   # null: another key's value
            # batch_size auto: by hand, on the CPU, what auto stands for there
            default = cpu_default(section, p.name) if cpu_default(section, p.name) is not None else schema[p.name]
            assert p.default == default, (name, p.name)
    assert set(schema) - POOL_KEYS <= {p.name for p in params}, name
