"""The settings tables, written from the schema: ``raycurate config --keys`` prints them, and the documentation
site's settings reference is generated from them at build time (docs/gen_ref.py)."""
from __future__ import annotations

from typing import Any

from .schema import Key, keys, sections


def _value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return str(v)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _top(path: str) -> str:
    return path.split(".", 1)[0]


def tables(root: type, level: int = 4) -> str:
    """One markdown table per top-level section, under a heading of ``level``: key, type, default, allowed
    values, help."""
    helps = dict(sections(root))
    by_top: dict[str, list[Key]] = {}
    for k in keys(root):
        by_top.setdefault(_top(k.path), []).append(k)
    out: list[str] = []
    for top, members in by_top.items():
        out += [f"{'#' * level} `{top}`: {helps.get(top, '')}", "",
                "| key | type | default | allowed | what it does |", "|---|---|---|---|---|"]
        for k in members:
            allowed = k.check.text if k.check is not None else ""
            out.append(f"| `{k.path}` | {k.type_name} | `{_cell(_value(k.default))}` | {_cell(allowed)} | "
                       f"{_cell(k.help)} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"

