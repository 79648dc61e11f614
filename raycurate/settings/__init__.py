"""The settings schema: every config key's type, default, allowed values and one line of help.

:class:`Settings` is the root; each section is a frozen dataclass (``settings.analyzers.face`` is a
:class:`FaceSettings`). :mod:`raycurate.config` merges the YAML files and ``--set`` overrides into a
mapping and checks it here; an analyser or stage receives its own typed section. ``configs/default.yaml``,
the web UI's widgets and the documentation's settings reference are checked against this schema by tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .analyzer_sections import (POOL_KEYS, AnalyzerSettings, AnalyzersSettings, ClipSettings, ContentSettings,
                                EmotionSettings, FaceFeaturesSettings, FaceSettings, NsfwSettings, PoseSettings,
                                QualitySettings)
from .output_sections import (BodyCropSettings, CropSettings, DedupColumns, DedupSettings, ExportSettings,
                              FilterSettings, IdentitySettings, KohyaSettings)
from .people_sections import PeopleSettings
from .run_sections import (SECRET_KEYS, CascadeSettings, DecodeSettings, InputSettings, ModelsSettings,
                           RaySettings, Stage1Settings, Stage2Settings, Stage3Settings, StageSettings,
                           StorageSettings, VideoSettings)
from .search_sections import SearchSettings
from .schema import (ConfigError, Key, Section, Widget, as_dict, cpu_default, defaults, keys, section, sections, typed,
                     validate)


@dataclass(frozen=True)
class Settings(Section):
    ray: RaySettings = section(RaySettings, "null address: a local Ray; else join a cluster")
    input: InputSettings = section(InputSettings, "listing the input folder or bucket")
    decode: DecodeSettings = section(DecodeSettings, "reading and decoding images")
    video: VideoSettings = section(VideoSettings, "sampling videos (presets set these)")
    cascade: CascadeSettings = section(CascadeSettings, "the 3-stage cascade over video frames")
    models: ModelsSettings = section(ModelsSettings, "where weights live and what happens when one is missing")
    analyzers: AnalyzersSettings = section(AnalyzersSettings, "the image analysers")
    people: PeopleSettings = section(PeopleSettings, "faces in LanceDB, grouped into identities that do not chain")
    dedup: DedupSettings = section(DedupSettings, "near duplicates by vector similarity inside LanceDB")
    search: SearchSettings = section(SearchSettings, "similar-image and face search over a curated DB")
    filter: FilterSettings = section(FilterSettings, "gates over stored scores")
    export: ExportSettings = section(ExportSettings, "the output folder")
    storage: StorageSettings = section(StorageSettings, "bucket endpoints and credentials")


KEYS: dict[str, Key] = {k.path: k for k in keys(Settings)}


def default_mapping() -> dict[str, Any]:
    """Every key's default, as a nested mapping (what configs/default.yaml holds)."""
    return defaults(Settings)


def check(cfg: dict[str, Any]) -> None:
    """Check a complete config mapping against the schema, in place (ints given for floats become floats)."""
    validate(Settings, cfg)


def settings_of(cfg: Mapping[str, Any]) -> Settings:
    """The typed settings of a checked config mapping."""
    return typed(Settings, cfg)


__all__ = ["AnalyzerSettings", "AnalyzersSettings", "BodyCropSettings", "CascadeSettings", "ClipSettings",
           "ConfigError", "CropSettings",
           "ContentSettings", "DecodeSettings", "cpu_default", "DedupColumns", "DedupSettings", "EmotionSettings",
           "ExportSettings", "FaceFeaturesSettings", "FaceSettings", "FilterSettings", "IdentitySettings", "InputSettings",
           "KEYS", "Key", "KohyaSettings", "ModelsSettings", "NsfwSettings", "POOL_KEYS", "PeopleSettings", "PoseSettings",
           "QualitySettings", "RaySettings", "SECRET_KEYS", "SearchSettings", "Settings", "Stage1Settings",
           "Stage2Settings", "Stage3Settings", "StageSettings", "StorageSettings", "VideoSettings", "Widget", "as_dict",
           "check", "default_mapping", "sections", "settings_of", "typed"]
