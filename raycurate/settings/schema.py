"""The machinery of the settings schema: a key's type, default, allowed values and help in one place.

A section is a frozen dataclass whose fields are made with :func:`setting` (a value) or
:func:`section` (a nested section). From the classes alone this module derives the defaults
(:func:`defaults`), checks a whole config mapping (:func:`validate`), builds the typed sections
(:func:`typed`) and lists every key (:func:`keys`) for the settings tables (the documentation's reference) and the UI.
No YAML here: :mod:`raycurate.config` reads files and hands mappings over.
"""
from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping


class ConfigError(ValueError):
    """A configuration key or value that raycurate cannot use."""


@dataclass(frozen=True)
class Check:
    """A value rule and the words that say it ("a number in [0, 1]")."""

    ok: Callable[[Any], bool]
    text: str


@dataclass(frozen=True)
class Widget:
    """How the web UI shows a key: its label and slider bounds (the schema's check still applies)."""

    label: str
    minimum: float = 0
    maximum: float = 1
    step: float = 1


@dataclass(frozen=True)
class Key:
    """One leaf key of the schema."""

    path: str                     # dotted: "analyzers.face.det_thresh"
    types: tuple[type, ...]       # the non-null types a value may have
    nullable: bool
    default: Any
    help: str
    check: Check | None
    secret: bool
    widget: Widget | None

    @property
    def type_name(self) -> str:
        shown = [t for t in self.types if not (t is int and float in self.types)]   # int is a number
        names = " or ".join("number" if t is float else "list" if t is list else t.__name__ for t in shown)
        return f"{names} or null" if self.nullable else names


@dataclass(frozen=True)
class Section:
    """The base of every section: made directly (``FaceSettings(det_thresh=0.3)``) it checks its own values
    the way the config does, stores an int given for a float key as a float and a list as a tuple."""

    def __post_init__(self) -> None:
        cls = type(self)
        for f in dataclasses.fields(self):
            if is_section(f):
                continue
            value = getattr(self, f.name)
            checked = check_value(_key(cls, f, f.name), value)
            if isinstance(checked, list):
                checked = tuple(checked)
            if checked is not value:
                object.__setattr__(self, f.name, checked)


def setting(default: Any, help: str, check: Check | None = None, *, secret: bool = False,  # noqa: A002
            widget: Widget | None = None, cpu_default: Any = None) -> Any:
    """A leaf key: its default, one line of help, an optional value rule and UI widget; for a key that may
    be ``auto``, what ``auto`` stands for where no GPU sizes it (``cpu_default``)."""
    meta = {"help": help, "check": check, "secret": secret, "widget": widget, "cpu_default": cpu_default}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def section(cls: type, help: str = "") -> Any:  # noqa: A002
    """A nested section (a dataclass made of settings)."""
    return field(default_factory=cls, metadata={"help": help, "section": True})


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _leaf_types(hint: Any) -> tuple[tuple[type, ...], bool]:
    """(the non-null types written in a field's annotation, whether null is allowed)."""
    union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    args = typing.get_args(hint) if union else (hint,)
    kinds = tuple(typing.get_origin(a) or a for a in args if a is not type(None))
    return kinds, type(None) in args


def is_section(f: dataclasses.Field) -> bool:
    return bool(f.metadata.get("section"))


def keys(cls: type, prefix: str = "") -> Iterator[Key]:
    """Every leaf key under ``cls``, in declaration order."""
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        if is_section(f):
            yield from keys(hints[f.name], f"{path}.")
            continue
        yield _key(cls, f, path)


def _key(cls: type, f: dataclasses.Field, path: str) -> Key:
    kinds, nullable = _leaf_types(_hints(cls)[f.name])
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    return Key(path, kinds, nullable, default, f.metadata["help"], f.metadata["check"], f.metadata["secret"],
               f.metadata["widget"])


def cpu_default(section: Any, name: str) -> Any:
    """What ``auto`` stands for in key ``name`` of ``section`` (a section class or object) without a GPU."""
    return next(f for f in dataclasses.fields(section) if f.name == name).metadata["cpu_default"]


def sections(cls: type, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted section path, help) of every section under ``cls``."""
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if is_section(f):
            path = f"{prefix}{f.name}"
            yield path, f.metadata["help"]
            yield from sections(hints[f.name], f"{path}.")


def defaults(cls: type) -> dict[str, Any]:
    """The default values as a nested mapping (what ``configs/default.yaml`` holds)."""
    hints = _hints(cls)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if is_section(f):
            out[f.name] = defaults(hints[f.name])
        else:
            out[f.name] = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    return out


def _accepts(kinds: tuple[type, ...], value: Any) -> bool:
    if isinstance(value, bool):
        return bool in kinds
    if float in kinds and isinstance(value, int):
        return True   # 3 is a fine float
    if list in kinds and isinstance(value, tuple):
        return True   # a made section holds its lists as tuples
    return isinstance(value, kinds)


def check_value(key: Key, value: Any) -> Any:
    """The value as stored (an int given for a float key becomes a float), or ConfigError naming the key."""
    if value is None:
        if not key.nullable:
            raise ConfigError(f"config key {key.path} may not be null")
        return None
    if not _accepts(key.types, value):
        names = " or ".join("list" if t is list else t.__name__ for t in key.types)
        shown = f"a {type(value).__name__}" if key.secret else repr(value)   # never echo a secret
        raise ConfigError(f"config key {key.path} must be {names}, got {shown}")
    if key.check is not None and not key.check.ok(value):
        raise ConfigError(f"config key {key.path} must be {key.check.text}, got {value!r}")
    if float in key.types and int not in key.types and isinstance(value, int):
        return float(value)
    return value


def validate(cls: type, cfg: dict[str, Any], prefix: str = "") -> None:
    """Check every key of ``cfg`` (a complete mapping: defaults merged with overrides) in place."""
    hints = _hints(cls)
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    for name in cfg:
        if name not in by_name:
            raise ConfigError(f"unknown config key: {prefix}{name}")
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        value = cfg[f.name]
        if is_section(f):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {path} must be a mapping, got {type(value).__name__}")
            validate(hints[f.name], value, f"{path}.")
            continue
        cfg[f.name] = check_value(_key(cls, f, path), value)


def typed(cls: type, cfg: Mapping[str, Any]) -> Any:
    """The frozen section object of a validated mapping."""
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        value = cfg[f.name]
        kwargs[f.name] = typed(hints[f.name], value) if is_section(f) else value
    return cls(**kwargs)


def as_dict(obj: Any) -> dict[str, Any]:
    """A section object back to a plain mapping (tuples become lists, as YAML writes them)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = as_dict(value) if is_section(f) else (list(value) if isinstance(value, tuple) else value)
    return out


# Value rules used across the sections.
def positive(what: str = "a positive integer") -> Check:
    return Check(lambda v: v > 0, what)


def non_negative(what: str = "a number >= 0") -> Check:
    return Check(lambda v: v >= 0, what)


def between(lo: float, hi: float, what: str | None = None) -> Check:
    return Check(lambda v: lo <= v <= hi, what or f"a number in [{lo:g}, {hi:g}]")


def auto_or_positive(what: str = "a positive integer") -> Check:
    """``"auto"`` (the run decides: :mod:`raycurate.gpu_sizing`) or a positive number."""
    return Check(lambda v: v == "auto" if isinstance(v, str) else v > 0, f"'auto' or {what}")


def one_of(*values: str) -> Check:
    return Check(lambda v: v in values, f"one of: {', '.join(values)}")


FRACTION = between(0, 1)
DISTANCE = between(0, 2, "a cosine distance in [0, 2]")
MULTIPLE_OF_32 = Check(lambda v: v >= 32 and v % 32 == 0, "a multiple of 32")
GPUS = Check(lambda v: 0 < v <= 1 or (v > 1 and float(v).is_integer()), "a fraction in (0, 1] or a whole number of GPUs")
DEVICE = Check(lambda v: v == "cpu" or v == "cuda" or v.startswith("cuda:"), "'cpu', 'cuda' or 'cuda:N'")
