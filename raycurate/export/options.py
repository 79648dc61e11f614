"""The export's options (kohya layout, crops, identity folders) and how the config's ``export`` section sets them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .captions import CaptionTemplate


@dataclass(frozen=True)
class KohyaOptions:
    """LoRA trainer layout: ``OUT/<dir>/<repeats>_<name>/`` with one caption ``.txt`` per image."""

    template: CaptionTemplate
    dir: str = "train"
    repeats: int = 10
    name: str = "person"
    trigger: str | None = None      # the caption's {trigger}; None: ``name``

    @property
    def folder(self) -> str:
        return f"{self.dir}/{self.repeats}_{self.name}"


@dataclass(frozen=True)
class CropOptions:
    size: int                       # side of the saved square, pixels
    padding: float                  # added on each side, as a fraction of the box's larger side


@dataclass(frozen=True)
class IdentityOptions:
    threshold: float | None = None  # cosine distance at or below which two faces are one person; None: the model's


def export_options(section: Mapping[str, Any]) -> dict[str, Any]:
    """``export_kept`` keyword options from the config's ``export`` section (reads the caption template,
    so a bad one raises :class:`~raycurate.config.ConfigError` here, before any work)."""
    k, f, b, g = (section["kohya"], section["face_crops"], section["body_crops"], section["group_by_identity"])
    return {
        "parquet": section["parquet"],
        "include_duplicates": section["include_duplicates"],
        "kohya": KohyaOptions(template=CaptionTemplate.from_file(k["captions"]), dir=k["dir"],
                              repeats=k["repeats"], name=k["name"], trigger=k["trigger"]) if k["enabled"] else None,
        "face_crops": CropOptions(f["size"], f["padding"]) if f["enabled"] else None,
        "body_crops": CropOptions(b["size"], b["padding"]) if b["enabled"] else None,
        "identity": IdentityOptions(g["threshold"]) if g["enabled"] else None,
    }
