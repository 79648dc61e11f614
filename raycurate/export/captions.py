"""The caption template language (configs/captions.yaml) and the caption text of a row."""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..config import CONFIG_DIR

CAPTIONS_FILE = CONFIG_DIR / "captions.yaml"

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Placeholders computed by the export rather than read from a column.
DERIVED = ("trigger", "head_yaw")
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
        values["trigger"] = trigger
        values["head_yaw"] = head_yaw(row)
        texts = (p.render(values) for p in self.parts)
        return self.separator.join(dict.fromkeys(t for t in texts if t))


def head_yaw(row: Mapping[str, Any]) -> float | None:
    """Yaw in degrees of the largest face (``face_pose`` is pitch, yaw, roll per face: InsightFace's 3D model,
    else the 5-point estimate)."""
    poses = row.get("face_pose") or []
    return float(poses[0][1]) if poses and poses[0] is not None and len(poses[0]) == 3 else None
