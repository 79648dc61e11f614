"""The caption of a row, in either style: ``tags`` (kohya comma tags, through the caption template language of
configs/captions.yaml) or ``sentence`` (one plain-language sentence). Both say the facts of
:mod:`.caption_parts` and nothing else."""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..config import CONFIG_DIR
from .caption_parts import CaptionFacts, caption_facts, head_yaw

CAPTIONS_FILE = CONFIG_DIR / "captions.yaml"
STYLES = ("tags", "sentence")

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Placeholders computed by the export rather than read from a column: the trigger word, the largest face's
# yaw, and each caption fact worded as a tag (:func:`fact_tags`).
FACTS = ("people", "monochrome", "shot", "angle", "view", "tilt", "orientation", "expression", "clothing",
         "accessories", "tattoos", "lighting", "face_cut")
DERIVED = ("trigger", "head_yaw", *FACTS)
_PART_KEYS = {"text", "map", "ranges", "first", "join"}


def _key(value: Any) -> str:
    """A map key or a value, as the template compares them (YAML's true/false and numbers as text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class CaptionPart:
    """One piece of a caption: the first of ``texts`` whose placeholders all have a value."""

    texts: tuple[str, ...]
    maps: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)
    ranges: Mapping[str, tuple[tuple[float | None, str | None], ...]] = field(default_factory=dict)
    first: bool = False
    join: str = " and "

    def value(self, name: str, raw: Any) -> str | None:
        """The text for placeholder ``name`` given the row's value; None drops the part."""
        if isinstance(raw, (list, tuple)):
            if self.first:
                return self.value(name, raw[0]) if raw else None
            texts = [self.value(name, v) for v in raw]
            return self.join.join(dict.fromkeys(t for t in texts if t)) or None
        if raw is None or (isinstance(raw, float) and not math.isfinite(raw)):
            return None
        if name in self.ranges and isinstance(raw, (int, float)) and not isinstance(raw, bool):
            for upper, text in self.ranges[name]:
                if upper is None or raw < upper:
                    return text or None
            return None
        mapping = self.maps.get(name)
        if mapping is not None:
            key = _key(raw)
            if key in mapping:
                return mapping[key] or None
            if "*" in mapping:
                return mapping["*"] or None
        text = f"{raw:g}" if isinstance(raw, float) else _key(raw)
        return text.strip() or None

    def render(self, values: Mapping[str, Any]) -> str | None:
        for text in self.texts:
            out, missing = text, False
            for name in dict.fromkeys(_PLACEHOLDER.findall(text)):
                v = self.value(name, values.get(name))
                if v is None:
                    missing = True
                    break
                out = out.replace("{" + name + "}", v)
            if not missing:
                out = " ".join(out.split())
                if out:
                    return out
        return None


class CaptionTemplate:
    """An ordered list of :class:`CaptionPart`; parts without a value are left out (see configs/captions.yaml)."""

    def __init__(self, parts: Sequence[CaptionPart], separator: str = ", ", source: str = "") -> None:
        self.parts = list(parts)
        self.separator = separator
        self.source = source

    @classmethod
    def from_file(cls, path: str | os.PathLike | None = None) -> "CaptionTemplate":
        from ..config import load_yaml

        path = Path(path) if path is not None else CAPTIONS_FILE
        return cls.from_mapping(load_yaml(path), source=str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "") -> "CaptionTemplate":
        from ..config import ConfigError

        def bad(msg: str) -> ConfigError:
            return ConfigError(f"caption template {source or '(mapping)'}: {msg}")

        unknown = set(data) - {"separator", "parts"}
        if unknown:
            raise bad(f"unknown key(s): {', '.join(sorted(unknown))}")
        separator = data.get("separator", ", ")
        raw_parts = data.get("parts")
        if not isinstance(separator, str):
            raise bad("separator must be a string")
        if not isinstance(raw_parts, list) or not raw_parts:
            raise bad("parts must be a non-empty list")
        parts = []
        for i, raw in enumerate(raw_parts, 1):
            if isinstance(raw, str):
                raw = {"text": raw}
            if not isinstance(raw, Mapping) or "text" not in raw:
                raise bad(f"part {i} must be a string or a mapping with 'text'")
            if set(raw) - _PART_KEYS:
                raise bad(f"part {i}: unknown key(s) {', '.join(sorted(set(raw) - _PART_KEYS))}")
            texts = raw["text"] if isinstance(raw["text"], list) else [raw["text"]]
            if not texts or not all(isinstance(t, str) and _PLACEHOLDER.search(t) for t in texts):
                raise bad(f"part {i}: text must be a string (or a list of them) with at least one {{column}}")
            if any(ch in _PLACEHOLDER.sub("", t) for t in texts for ch in "{}"):
                raise bad(f"part {i}: a placeholder is written {{name}} (letters, digits, _)")
            names = {n for t in texts for n in _PLACEHOLDER.findall(t)}
            maps, ranges = raw.get("map") or {}, raw.get("ranges") or {}
            for kind, table in (("map", maps), ("ranges", ranges)):
                if not isinstance(table, Mapping) or set(table) - names:
                    raise bad(f"part {i}: {kind} must be keyed by placeholders of its text "
                              f"({', '.join(sorted(names))})")
            for name, m in maps.items():
                if not isinstance(m, Mapping) or not all(v is None or isinstance(v, str) for v in m.values()):
                    raise bad(f"part {i}: map.{name} must map values to text (or null)")
            parsed_ranges: dict[str, tuple[tuple[float | None, str | None], ...]] = {}
            for name, rs in ranges.items():
                ok = isinstance(rs, list) and rs and all(
                    isinstance(r, list) and len(r) == 2 and (r[0] is None or isinstance(r[0], (int, float)))
                    and (r[1] is None or isinstance(r[1], str)) for r in rs)
                if not ok:
                    raise bad(f"part {i}: ranges.{name} must be a list of [upper bound or null, text or null]")
                parsed_ranges[name] = tuple((None if u is None else float(u), t) for u, t in rs)
            if not isinstance(raw.get("first", False), bool) or not isinstance(raw.get("join", " and "), str):
                raise bad(f"part {i}: first must be true/false and join a string")
            parts.append(CaptionPart(
                texts=tuple(texts), maps={n: {_key(k): v for k, v in m.items()} for n, m in maps.items()},
                ranges=parsed_ranges, first=raw.get("first", False), join=raw.get("join", " and ")))
        return cls(parts, separator=separator, source=source)

    @property
    def placeholders(self) -> set[str]:
        return {n for p in self.parts for t in p.texts for n in _PLACEHOLDER.findall(t)}

    def check_columns(self, columns: Iterable[str]) -> None:
        """Refuse a placeholder that is neither a column nor a derived value (before anything is written)."""
        from ..config import ConfigError

        unknown = self.placeholders - set(columns) - set(DERIVED)
        if unknown:
            raise ConfigError(f"caption template {self.source}: no column named "
                              f"{', '.join('{' + u + '}' for u in sorted(unknown))} in the table "
                              f"(derived values: {', '.join(DERIVED)})")

    def render(self, row: Mapping[str, Any], trigger: str | None = None) -> str:
        """The caption for ``row``: the parts that have a value, in order, each once."""
        values = dict(row)
        values.update(fact_tags(caption_facts(row)))
        values["trigger"] = trigger
        values["head_yaw"] = head_yaw(row)
        texts = (p.render(values) for p in self.parts)
        return self.separator.join(dict.fromkeys(t for t in texts if t))


# How each fact is worded as a tag; a label not listed is used as it is (CLIP's labels come from a prompt file).
_SHOT_TAGS = {"full body": "full body shot", "upper body": "upper body shot"}
_ORIENTATION_TAGS = {"front": "facing the camera", "back": "from behind", "side": "side view"}
_EXPRESSION_TAGS = {"happy": "smiling", "neutral": "neutral expression", "sad": "sad expression",
                    "angry": "angry expression", "surprise": "surprised expression", "fear": "fearful expression",
                    "disgust": "disgusted expression"}
_LIGHTING_TAGS = {"backlight": "backlit"}
# ... and in a sentence.
_SHOT_NOUNS = {"extreme close-up": "extreme close-up photo", "close-up": "close-up photo",
               "medium close-up": "medium close-up photo", "medium shot": "medium shot", "wide shot": "wide shot",
               "full body": "full-body photo", "upper body": "upper-body photo"}
_EXPRESSION_WORDS = {"happy": "smiling", "neutral": "with a neutral expression", "sad": "looking sad",
                     "angry": "looking angry", "surprise": "looking surprised", "fear": "looking afraid",
                     "disgust": "looking disgusted"}
_VIEW_WORDS = {"frontal": "facing the camera", "profile": "in profile"}
_ORIENTATION_WORDS = {"front": "facing the camera", "back": "seen from behind", "side": "seen from the side"}
_ANGLE_WORDS = {"eye level": "taken at eye level"}
_LIGHTING_WORDS = {"backlight": "backlit"}


def _bare(label: str) -> str:
    """A CLIP label without its article, as a tag ("a hat" -> "hat")."""
    for article in ("a ", "an "):
        if label.startswith(article) and len(label) > len(article):
            return label[len(article):]
    return label


def fact_tags(facts: CaptionFacts) -> dict[str, Any]:
    """Each fact as tag text (None: nothing to say), keyed by its template placeholder (:data:`FACTS`)."""
    people = facts.people
    return {
        "people": None if people is None else f"{people} {'person' if people == 1 else 'people'}",
        "monochrome": "black and white" if facts.monochrome else None,
        "shot": _SHOT_TAGS.get(facts.shot, facts.shot) if facts.shot else None,
        "angle": _bare(facts.angle) if facts.angle else None,
        "view": facts.view,
        "tilt": facts.tilt,
        "orientation": _ORIENTATION_TAGS.get(facts.orientation) if facts.orientation else None,
        "expression": (_EXPRESSION_TAGS.get(facts.expression, f"{facts.expression} expression")
                       if facts.expression else None),
        "clothing": _bare(facts.clothing) if facts.clothing else None,
        "accessories": [_bare(a) for a in facts.accessories] or None,
        "tattoos": "tattoos" if facts.tattoos else None,
        "lighting": _LIGHTING_TAGS.get(facts.lighting, facts.lighting) if facts.lighting else None,
        "face_cut": "face partly out of frame" if facts.face_cut else None,
    }


def with_article(noun: str) -> str:
    """``noun`` after "a" or "an" (by its first letter)."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _listed(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def sentence(facts: CaptionFacts, subject: str | None = None) -> str:
    """One sentence saying the facts, e.g. "a close-up photo of alice smiling, looking left, wearing a jacket
    and sunglasses"; ``subject``: who the photo is of (the trigger word or the person's name)."""
    noun = (_SHOT_NOUNS.get(facts.shot) or f"{facts.shot} photo") if facts.shot else "photo"
    if facts.monochrome:
        noun = f"black and white {noun}"
    head = with_article(noun) + (f" of {subject}" if subject else "")
    if facts.expression:
        head += " " + _EXPRESSION_WORDS.get(facts.expression, f"with a {facts.expression} expression")
    clauses = [head]
    if facts.people is not None and facts.people > 1:
        clauses.append("with another person" if facts.people == 2 else f"with {facts.people - 1} other people")
    if facts.view:
        clauses.append(_VIEW_WORDS.get(facts.view, facts.view))
    if facts.tilt:
        clauses.append(facts.tilt)
    if facts.orientation:
        clauses.append(_ORIENTATION_WORDS.get(facts.orientation, facts.orientation))
    if facts.angle:
        clauses.append(_ANGLE_WORDS.get(facts.angle) or f"taken from {facts.angle}")
    worn = [facts.clothing] if facts.clothing else []
    if worn or facts.accessories:
        clauses.append("wearing " + _listed(worn + list(facts.accessories)))
    if facts.tattoos:
        clauses.append("with tattoos")
    if facts.lighting:
        clauses.append(_LIGHTING_WORDS.get(facts.lighting) or f"in {facts.lighting}")
    if facts.face_cut:
        clauses.append("the face partly out of frame")
    return ", ".join(dict.fromkeys(clauses))


@dataclass(frozen=True)
class CaptionBuilder:
    """The caption of a row in one style: ``tags`` renders ``template`` (configs/captions.yaml or the user's
    file), ``sentence`` the facts as one sentence (the template is not used)."""

    style: str = "tags"
    template: CaptionTemplate = field(default_factory=CaptionTemplate.from_file)

    def __post_init__(self) -> None:
        from ..config import ConfigError

        if self.style not in STYLES:
            raise ConfigError(f"caption style {self.style!r}: one of {', '.join(STYLES)}")

    def check_columns(self, columns: Iterable[str]) -> None:
        """Refuse, before anything is written, a template placeholder the table cannot fill (tags only)."""
        if self.style == "tags":
            self.template.check_columns(columns)

    def render(self, row: Mapping[str, Any], trigger: str | None = None) -> str:
        """The caption of ``row``, ``trigger`` its subject (the trigger word or the person's name)."""
        if self.style == "sentence":
            return sentence(caption_facts(row), trigger)
        return self.template.render(row, trigger)
