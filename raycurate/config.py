"""Configuration: defaults from ``configs/default.yaml``, overrides, validation.

Only this module and :mod:`raycurate.cli` read YAML. A bad key or value raises
:class:`ConfigError` naming the key, before any work starts.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml

# The defaults, presets, profiles, prompts and caption templates ship inside the package (a wheel carries
# them); the top-level configs/ of the repository is the copy users read, kept equal by a test.
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"
PROMPTS_FILE = CONFIG_DIR / "prompts.yaml"      # CLIP's zero-shot prompt sets
PROMPT_SETS = ("clothing", "accessories", "shot", "angle", "lighting", "tattoos")


class ConfigError(ValueError):
    """A configuration key or value that raycurate cannot use."""


# Keys that may be null, with the type a non-null value must have. Every other
# key takes the type of its default value.
NULLABLE: dict[str, tuple[type, ...]] = {
    "ray.address": (str,),
    "ray.num_cpus": (int, float),
    "ray.num_gpus": (int, float),
    "analyzers.quality.max_actors": (int,),
    "analyzers.content.max_actors": (int,),
    "analyzers.face.max_actors": (int,),
    "analyzers.face_features.max_actors": (int,),
    "analyzers.face_features.pack": (str,),
    "cascade.stage1.det_size": (int,),
    "cascade.stage1.det_thresh": (int, float),
    "export.group_by_identity.threshold": (int, float),
    "dedup.columns.face_embedding_dlib": (int, float),
    "analyzers.nsfw.max_actors": (int,),
    "analyzers.emotion.max_actors": (int,),
    "analyzers.pose.max_actors": (int,),
    "analyzers.clip.max_actors": (int,),
    "input.max_files": (int,),
    "filter.min_faces": (int,),
    "filter.max_faces": (int,),
    "filter.max_nsfw_score": (int, float),
    "filter.min_side": (int,),
    "filter.min_sharpness": (int, float),
    "filter.max_abs_yaw": (int, float),
    "filter.where": (str,),
    "models.dir": (str,),
    "analyzers.clip.aesthetic": (str,),
    "dedup.columns.content_vector": (int, float),
    "dedup.columns.clip_embedding": (int, float),
    "dedup.columns.face_embedding": (int, float),
    "video.max_frames": (int,),
    "video.segment_s": (int, float),
    "cascade.stage1.batch_size": (int,),
    "cascade.stage2.batch_size": (int,),
    "cascade.stage1.max_actors": (int,),
    "cascade.stage2.max_actors": (int,),
    "cascade.stage1.num_gpus": (int, float),
    "cascade.stage2.num_gpus": (int, float),
    **{f"analyzers.{a}.num_gpus": (int, float) for a in ("quality", "content", "face", "face_features", "emotion",
                                                          "nsfw", "pose", "clip")},
    "export.kohya.trigger": (str,),
    "export.kohya.captions": (str,),
    **{f"storage.s3.{k}": (str,) for k in ("endpoint_url", "region", "access_key_id", "secret_access_key",
                                           "session_token")},
    "storage.s3.allow_http": (bool,),
    **{f"storage.gcs.{k}": (str,) for k in ("endpoint_url", "project", "credentials_file")},
}


# Keys whose values are never shown (errors, the manifest: see raycurate.storage.redact).
SECRET_KEYS = {"storage.s3.access_key_id", "storage.s3.secret_access_key", "storage.s3.session_token"}


def _positive(v: Any) -> bool:
    return v > 0


def _fraction(v: Any) -> bool:
    return 0.0 <= v <= 1.0


def _non_negative(v: Any) -> bool:
    return v >= 0


_PACKS = ("buffalo_l", "buffalo_m", "buffalo_s", "buffalo_sc", "antelopev2")
_PACK_HELP = f"one of: {', '.join(_PACKS)}, or a folder of ONNX files (an absolute or ./ path)"


def _pack_ok(v: Any) -> bool:
    return v in _PACKS or v.startswith(("/", "./", "../", "~"))


# Value checks by key suffix or full key: (predicate, what it must be).
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "batch_size": (_positive, "a positive integer"),
    "num_cpus": (_positive, "a positive number"),
    "device": (lambda v: v == "cpu" or v == "cuda" or v.startswith("cuda:"), "'cpu', 'cuda' or 'cuda:N'"),
    "decode.max_side": (_positive, "a positive integer"),
    "decode.max_pixels": (_positive, "a positive integer"),
    "decode.rows_per_write": (_positive, "a positive integer"),
    "input.read_threads": (_positive, "a positive integer"),
    "input.max_files": (_positive, "a positive integer"),
    "ray.gpu_memory_gb": (_positive, "a positive number"),
    "min_actors": (_positive, "a positive integer"),
    "num_gpus": (lambda v: 0 < v <= 1 or (v > 1 and float(v).is_integer()),
                 "a fraction in (0, 1] or a whole number of GPUs"),
    "max_actors": (_positive, "a positive integer"),
    "analyzers.quality.analysis_side": (_positive, "a positive integer"),
    "analyzers.quality.blur_threshold": (_non_negative, "a number >= 0"),
    "analyzers.face.detector": (lambda v: v in ("auto", "insightface", "centerface", "opencv_haar"),
                                "one of: auto, insightface, centerface, opencv_haar"),
    "analyzers.face.pack": (_pack_ok, _PACK_HELP),
    "analyzers.face_features.pack": (_pack_ok, _PACK_HELP),
    "analyzers.face_features.embedder": (lambda v: v in ("auto", "insightface", "dlib"),
                                         "one of: auto, insightface, dlib"),
    "analyzers.face_features.min_face_px": (_non_negative, "an integer >= 0"),
    "analyzers.face_features.min_face_sharpness": (_non_negative, "a number >= 0"),
    "analyzers.face.det_size": (lambda v: v >= 32 and v % 32 == 0, "a multiple of 32"),
    "cascade.stage1.det_size": (lambda v: v >= 32 and v % 32 == 0, "a multiple of 32"),
    "cascade.stage1.det_thresh": (_fraction, "a number in [0, 1]"),
    "analyzers.face.det_thresh": (_fraction, "a number in [0, 1]"),
    "analyzers.face.max_faces": (_non_negative, "an integer >= 0 (0: no limit)"),
    "models.profile": (lambda v: v in ("auto", "strict"), "auto or strict"),
    "analyzers.face.detection_side": (_positive, "a positive integer"),
    "analyzers.face.scale_factor": (lambda v: v > 1.0, "a number > 1"),
    "analyzers.face.min_neighbors": (_non_negative, "an integer >= 0"),
    "analyzers.face.min_face_fraction": (_fraction, "a number in [0, 1]"),
    "analyzers.face.nms_iou": (_fraction, "a number in [0, 1]"),
    "analyzers.nsfw.threshold": (_fraction, "a number in [0, 1]"),
    "analyzers.emotion.crop_margin": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "analyzers.pose.conf": (_fraction, "a number in [0, 1]"),
    "analyzers.clip.multi_threshold": (_fraction, "a number in [0, 1]"),
    "analyzers.pose.visible": (_fraction, "a number in [0, 1]"),
    "analyzers.pose.max_people": (_positive, "a positive integer"),
    "analyzers.pose.imgsz": (lambda v: v >= 32 and v % 32 == 0, "a multiple of 32"),
    "analyzers.nsfw.intra_op_threads": (_positive, "a positive integer"),
    "filter.min_faces": (_non_negative, "an integer >= 0"),
    "filter.max_faces": (_non_negative, "an integer >= 0"),
    "filter.max_nsfw_score": (_fraction, "a number in [0, 1]"),
    "filter.min_side": (_non_negative, "an integer >= 0"),
    "export.copy_threads": (_positive, "a positive integer"),
    "export.kohya.dir": (lambda v: v[:1] not in ("", ".") and all(c.isalnum() or c in "._-" for c in v),
                         "a folder name (letters, digits, . _ -; not starting with .)"),
    "export.kohya.name": (lambda v: v[:1] not in ("", ".", " ") and all(c.isalnum() or c in " ._-" for c in v),
                          "a folder name (letters, digits, space, . _ -; not starting with . or space)"),
    "export.kohya.repeats": (_positive, "a positive integer"),
    "export.kohya.captions": (os.path.isfile, "an existing caption template file"),
    "export.face_crops.size": (_positive, "a positive integer"),
    "export.face_crops.padding": (_non_negative, "a number >= 0"),
    "export.body_crops.size": (_positive, "a positive integer"),
    "export.body_crops.padding": (_non_negative, "a number >= 0"),
    "export.group_by_identity.threshold": (lambda v: 0 <= v <= 2, "a cosine distance in [0, 2]"),
    "video.sample_rate": (_positive, "a positive integer"),
    "video.min_separation": (_non_negative, "an integer >= 0"),
    "video.max_frames": (_positive, "a positive integer"),
    "video.motion_threshold": (lambda v: 0 <= v <= 100, "a number in [0, 100]"),
    "video.scene_detector": (lambda v: v in ("content", "adaptive"), "one of: content, adaptive"),
    "video.scene_bonus": (_non_negative, "a number >= 0"),
    "video.segment_s": (_positive, "a positive number"),
    "video.analysis_side": (_positive, "a positive integer"),
    "video.scene_window_s": (_non_negative, "a number >= 0"),
    "video.decoders": (lambda v: bool(v) and all(d in ("decord", "pyav", "opencv") for d in v),
                       "a non-empty list of: decord, pyav, opencv"),
    "video.decord_device": (lambda v: v in ("cpu", "gpu"), "cpu or gpu"),
    "video.frame_quality": (lambda v: 1 <= v <= 100, "an integer in [1, 100]"),
    "threshold": (_fraction, "a number in [0, 1]"),
    "dedup.k": (_positive, "a positive integer"),
    "dedup.index_min_rows": (_positive, "a positive integer"),
    "dedup.index_type": (lambda v: v in ("IVF_FLAT", "IVF_PQ", "IVF_HNSW_SQ"), "IVF_FLAT, IVF_PQ or IVF_HNSW_SQ"),
    "dedup.nprobes": (_positive, "a positive integer"),
    "dedup.refine_factor": (_positive, "a positive integer"),
    "dedup.keep_by": (lambda v: all(isinstance(x, str) for x in v), "a list of column names (or pixels)"),
}
for _scheme in ("s3", "gcs"):
    _CHECKS[f"storage.{_scheme}.endpoint_url"] = (
        lambda v: v.startswith(("http://", "https://")) and len(v.split("://", 1)[1].strip("/")) > 0,
        "a URL such as http://host:9000 or https://host")
_CHECKS["storage.gcs.credentials_file"] = (lambda v: bool(v.strip()), "a file path")
for _col in ("content_vector", "clip_embedding", "face_embedding", "face_embedding_dlib"):
    _CHECKS[f"dedup.columns.{_col}"] = (lambda v: 0 <= v <= 2, "a cosine distance in [0, 2]")


for _part in ("face_sharpness", "sharpness", "exposure", "face_area", "one_face", "contrast", "nsfw_safe"):
    _CHECKS[f"cascade.stage3.weights.{_part}"] = (_non_negative, "a number >= 0")

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


def _type_ok(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in types
    if float in types and isinstance(value, int):
        return True
    return isinstance(value, types)


def _validate(cfg: dict, defaults: dict, prefix: str = "") -> None:
    for key, default in defaults.items():
        full = f"{prefix}{key}"
        value = cfg[key]
        if isinstance(default, dict):
            _validate(value, default, prefix=f"{full}.")
            continue
        if value is None:
            if full not in NULLABLE:
                raise ConfigError(f"config key {full} may not be null")
            continue
        types = NULLABLE.get(full) or ((float,) if isinstance(default, float) else (type(default),))
        if not _type_ok(value, types):
            names = " or ".join(t.__name__ for t in types)
            shown = f"a {type(value).__name__}" if full in SECRET_KEYS else repr(value)   # never echo a secret
            raise ConfigError(f"config key {full} must be {names}, got {shown}")
        check = _CHECKS.get(full) or _CHECKS.get(key)
        if check is not None and not check[0](value):
            raise ConfigError(f"config key {full} must be {check[1]}, got {value!r}")
        if isinstance(default, float) and isinstance(value, int):
            cfg[key] = float(value)


def load_config(
    config_file: str | os.PathLike | None = None,
    overrides: Iterable[tuple[str, Any]] = (),
    preset: str | None = None,
    profile: str | None = None,
) -> dict:
    """Defaults, then the use ``profile`` (configs/profiles/), then the video ``preset``, then
    ``config_file``, then ``overrides`` (dotted keys); validated."""
    defaults = load_yaml(DEFAULT_CONFIG)
    cfg = copy.deepcopy(defaults)
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
    _validate(cfg, defaults)
    _check_storage(cfg["storage"])
    features = cfg["analyzers"]["face_features"]
    if features["pack"] is None:   # one pack serves detection and features unless told otherwise
        features["pack"] = cfg["analyzers"]["face"]["pack"]
    return cfg


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
