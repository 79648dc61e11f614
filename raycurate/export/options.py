"""The export's options (kohya layout, crops, identity folders) from the config's typed ``export`` section."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..settings import CropSettings, ExportSettings, IdentitySettings, KohyaSettings
from .captions import CaptionBuilder, CaptionTemplate, with_article


# A crop's sizes, buckets and padding, and the identity folders' switch, are the settings sections themselves.
CropOptions = CropSettings
IdentityOptions = IdentitySettings


@dataclass(frozen=True)
class KohyaOptions:
    """LoRA trainer layout: ``OUT/<dir>/<repeats>_<name>/`` with one caption ``.txt`` per image; the
    ``export.kohya`` section and the captions in its style (the template it names read by the config module)."""

    settings: KohyaSettings
    captions: CaptionBuilder

    @property
    def dir(self) -> str:
        return self.settings.dir

    @property
    def repeats(self) -> int:
        return self.settings.repeats

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def trigger(self) -> str | None:   # the caption's {trigger}; None: ``name``
        return self.settings.trigger

    @property
    def folder(self) -> str:
        return self.folder_for(None)

    def folder_for(self, person: str | None) -> str:
        """``<dir>/<repeats>_<person>``: one folder per --person target (their name is the trigger word),
        ``<repeats>_<name>`` for images of a run without targets."""
        return f"{self.dir}/{self.repeats}_{person or self.name}"

    def trigger_for(self, person: str | None) -> str:
        return person or (self.trigger if self.trigger is not None else self.name)

    def caption(self, row: Any, person: str | None) -> str:
        """The caption of ``row`` in ``person``'s folder (None: the run's one folder), their name its subject;
        a sentence without a trigger word or a person is of "a <name>" (the class name: "a photo of a person")."""
        if person is None and self.trigger is None and self.captions.style == "sentence":
            return self.captions.render(row, with_article(self.name))
        return self.captions.render(row, self.trigger_for(person))


def export_options(section: ExportSettings) -> dict[str, Any]:
    """``export_kept`` keyword options from the typed ``export`` section (reads the caption template, so a
    bad one raises :class:`~raycurate.config.ConfigError` here, before any work)."""
    k = section.kohya
    return {
        "parquet": section.parquet,
        "include_duplicates": section.include_duplicates,
        "kohya": KohyaOptions(k, CaptionBuilder(k.caption_style, CaptionTemplate.from_file(k.captions)))
        if k.enabled else None,
        "face_crops": section.face_crops if section.face_crops.enabled else None,
        "body_crops": section.body_crops if section.body_crops.enabled else None,
        "identity": section.group_by_identity if section.group_by_identity.enabled else None,
    }
