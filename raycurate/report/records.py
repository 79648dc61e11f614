"""What the report's readers hand to the page: a picture card, a stored value written short, and the rows
of a LanceDB query as plain dicts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence


@dataclass
class Card:
    """A picture with what it says: a kept image, a dropped sample or an identity."""
    title: str
    values: dict[str, str]
    thumb: str | None
    uri: str | None = None


def read_rows(table: Any, where: str, columns: Sequence[str], limit: int | None = None) -> list[dict[str, Any]]:
    """The ``columns`` (those the table has) of the rows ``where`` picks, at most ``limit``."""
    cols = [c for c in columns if c in table.schema.names]
    return table.search().where(where).select(cols).limit(limit).to_arrow().to_pylist()


def show(value: Any) -> str:
    """A stored value, short."""
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, str) and len(value) > 40:   # a content id
        return value[:12] + "…"
    if isinstance(value, list):
        text = "[" + ", ".join(show(v) for v in value[:4]) + (", …" if len(value) > 4 else "") + "]"
        return text
    return str(value)


__all__ = ["Card", "read_rows", "show"]
