"""Configuration: the schema's defaults (:mod:`raycurate.settings`), a profile, a preset, a config file
and ``--set`` overrides merged into one mapping and checked.

Only this module reads YAML (the caption templates and CLIP's prompts are loaded here and handed over).
A bad key or value raises :class:`ConfigError` naming the key, before any work starts.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from . import settings
from .settings import ConfigError, Settings, settings_of

# The defaults, presets, profiles, prompts and caption templates ship inside the package (a wheel carries
# them); the top-level configs/ of the repository is the copy users read, kept equal by a test.
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"
PROMPTS_FILE = CONFIG_DIR / "prompts.yaml"      # CLIP's zero-shot prompt sets
PROMPT_SETS = ("clothing", "accessories", "shot", "angle", "lighting", "tattoos")


SECRET_KEYS = settings.SECRET_KEYS   # values never shown (errors, the manifest: raycurate.storage.redact)


PRESET_DIR = CONFIG_DIR / "presets"
PRESETS = ("tiktok", "instagram", "youtube", "custom")
PROFILE_DIR = CONFIG_DIR / "profiles"
PROFILES = tuple(sorted(p.stem for p in PROFILE_DIR.glob("*.yaml")))


def load_yaml(path: str | os.PathLike) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping at the top level")
    return data


def load_prompts(path: str | os.PathLike = PROMPTS_FILE) -> dict[str, dict[str, Any]]:
    """CLIP's prompt sets (``configs/prompts.yaml``); every set of :data:`PROMPT_SETS` must be there."""
    prompts = load_yaml(path)
    missing = [s for s in PROMPT_SETS if s not in prompts]
    if missing:
        raise ValueError(f"{path} lacks the prompt sets {missing}")
    return prompts


def add_config_options(parser: Any, *, uses: str = "", example: str) -> None:
    """A command's ``--config FILE`` and ``--set KEY=VALUE`` (repeatable; :func:`parse_set`): ``uses`` says what
    of the configuration the command reads, ``example`` is an override it takes."""
    parser.add_argument("--config", metavar="FILE", help=f"YAML file overriding configs/default.yaml{uses}")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override one config key, e.g. --set {example}")


def parse_set(item: str) -> tuple[str, Any]:
    """Parse one ``--set key=value``; the value is read as YAML (``1``, ``0.5``, ``null``, ``true``)."""
    if "=" not in item:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def _merge(base: dict, override: Mapping, prefix: str = "") -> None:
    for key, value in override.items():
        full = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"unknown config key: {full}")
        if isinstance(base[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key {full} must be a mapping, got {type(value).__name__}")
            _merge(base[key], value, prefix=f"{full}.")
        else:
            base[key] = value


def _set_dotted(cfg: dict, key: str, value: Any) -> None:
    node = cfg
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        if part not in node or not isinstance(node[part], dict):
            raise ConfigError(f"unknown config key: {'.'.join(parts[: i + 1])}" if part not in node
                              else f"unknown config key: {key}")
        node = node[part]
    if parts[-1] not in node:
        raise ConfigError(f"unknown config key: {key}")
    if isinstance(node[parts[-1]], dict):
        raise ConfigError(f"config key {key} is a section; set one of its keys")
    node[parts[-1]] = value


def load_config(
    config_file: str | os.PathLike | None = None,
    overrides: Iterable[tuple[str, Any]] = (),
    preset: str | None = None,
    profile: str | None = None,
) -> dict:
    """Defaults, then the use ``profile`` (configs/profiles/), then the video ``preset``, then
    ``config_file``, then ``overrides`` (dotted keys); validated."""
    cfg = settings.default_mapping()   # configs/default.yaml holds the same (a test keeps them equal)
    if profile is not None:
        if profile not in PROFILES:
            raise ConfigError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
        _merge(cfg, load_yaml(PROFILE_DIR / f"{profile}.yaml"))
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        _merge(cfg, load_yaml(PRESET_DIR / f"{preset}.yaml"))
    if config_file is not None:
        _merge(cfg, load_yaml(config_file))
    for key, value in overrides:
        _set_dotted(cfg, key, value)
    settings.check(cfg)
    _check_storage(cfg["storage"])
    features = cfg["analyzers"]["face_features"]
    if features["pack"] is None:   # one pack serves detection and features unless told otherwise
        features["pack"] = cfg["analyzers"]["face"]["pack"]
    return cfg


def typed(cfg: Mapping[str, Any]) -> Settings:
    """The typed settings of a config :func:`load_config` returned (each section a frozen dataclass)."""
    return settings_of(cfg)


def load_settings(
    config_file: str | os.PathLike | None = None,
    overrides: Iterable[tuple[str, Any]] = (),
    preset: str | None = None,
    profile: str | None = None,
) -> Settings:
    """The typed settings of one command (:func:`load_config`, then :func:`typed`): built once, where the
    command starts, and handed down; nothing below reads the mapping."""
    return typed(load_config(config_file, overrides, preset=preset, profile=profile))


def recorded_settings(manifest: Mapping[str, Any] | None) -> Settings | None:
    """The typed settings a run's manifest recorded (its ``config``), for what reads a finished run (the report,
    the web UI): a key added since that run takes its default, a key since removed is left out. None when the
    manifest records no config, or one that no longer checks."""
    recorded = (manifest or {}).get("config")
    if not isinstance(recorded, Mapping):
        return None
    cfg = settings.default_mapping()
    _overlay(cfg, recorded)
    try:
        settings.check(cfg)
    except ConfigError:
        return None
    return typed(cfg)


def _overlay(base: dict, recorded: Mapping) -> None:
    """``recorded``'s values over ``base`` where ``base`` has the key (sections merged key by key)."""
    for key, value in recorded.items():
        if key not in base:
            continue
        if isinstance(base[key], dict):
            if isinstance(value, Mapping):
                _overlay(base[key], value)
        else:
            base[key] = value


def _check_storage(section: Mapping[str, Any]) -> None:
    """S3 credentials given in the config come as a pair (the environment's are then not used)."""
    s3 = section["s3"]
    if (s3["access_key_id"] is None) != (s3["secret_access_key"] is None):
        given, missing = (("access_key_id", "secret_access_key") if s3["secret_access_key"] is None
                          else ("secret_access_key", "access_key_id"))
        raise ConfigError(f"config key storage.s3.{given} is set but storage.s3.{missing} is not: give both "
                          "(or neither, to take them from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)")
    if s3["session_token"] is not None and s3["access_key_id"] is None:
        raise ConfigError("config key storage.s3.session_token needs storage.s3.access_key_id and "
                          "secret_access_key")
    if s3["anonymous"] and s3["access_key_id"] is not None:
        raise ConfigError("storage.s3.anonymous is true but storage.s3.access_key_id is set: choose one")
