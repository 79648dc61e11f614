"""The report's plots as inline SVG strings: a histogram with its thresholds, a video's score timeline, the
per-stage funnel bars. Plain string building, no plotting library; each element a test may count carries a
class (``bar``, ``threshold``, ``cut``, ``selected``, ``point``)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence
from xml.sax.saxutils import escape, quoteattr

FONT = "font-family:sans-serif;font-size:11px"
BAR = "#4c78a8"
THRESHOLD = "#d62728"
KEPT, DROPPED, ERRORS = "#2ca02c", "#bdbdbd", "#d62728"
STAGE_COLOURS = {"stage1": "#9e9e9e", "stage2": "#4c78a8", "stage3": "#f58518"}
SELECTED = "#2ca02c"


@dataclass(frozen=True)
class Line:
    """A threshold drawn on a plot: its value, what it is (``filter.max_nsfw_score <= 0.5``) and which side
    passes (``min``: values at or above, ``max``: at or below; on an integer axis the line then sits on the
    edge between the last failing and the first passing bar)."""
    value: float
    label: str
    kind: str = ""


def fmt(v: float) -> str:
    """A number, short: integers as such, else 3 significant digits."""
    if float(v).is_integer() and abs(v) < 1e9:
        return str(int(v))
    return f"{v:.3g}"


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label={quoteattr(label)} style="{FONT}">' + "".join(body) + "</svg>")


def _text(x: float, y: float, s: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{escape(s)}</text>'


@dataclass(frozen=True)
class Bins:
    """Histogram bins over [lo, hi): ``counts[i]`` values in the i-th of ``len(counts)`` equal bins; with
    ``log`` the bins are equal on log10(1 + value) and ``lo`` / ``hi`` are on that scale."""
    lo: float
    hi: float
    counts: list[int]
    log: bool = False

    def scale(self, value: float) -> float:
        return math.log10(1.0 + max(0.0, value)) if self.log else value

    def unscale(self, pos: float) -> float:
        return 10.0 ** pos - 1.0 if self.log else pos

    def x(self, value: float, left: float, width: float) -> float:
        """Where ``value`` falls on a plot ``width`` wide starting at ``left``."""
        return left + (self.scale(value) - self.lo) / (self.hi - self.lo) * width


def bin_values(values: Sequence[float], extra: Sequence[float] = (), *, bins: int = 20, integer: bool = False,
               log: bool = False) -> Bins:
    """``values`` binned over a range that also holds ``extra`` (the thresholds, so that their lines show);
    integer values with a small range get one bin per integer; ``log``: bins equal on log10(1 + value), for
    non-negative values spread over decades (sharpness)."""
    shape = Bins(0.0, 1.0, [], log)
    finite = [shape.scale(float(v)) for v in values if v is not None and math.isfinite(v)]
    span = finite + [shape.scale(float(e)) for e in extra if math.isfinite(e)]
    lo, hi = (min(span), max(span)) if span else (0.0, 1.0)
    if integer and not log and hi - lo <= 40:
        lo, hi = math.floor(lo) - 0.5, math.floor(hi) + 0.5
        bins = int(hi - lo)
    elif hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts = [0] * bins
    for v in finite:
        i = min(bins - 1, max(0, int((v - lo) / (hi - lo) * bins)))
        counts[i] += 1
    return Bins(lo, hi, counts, log)


def wants_log(values: Sequence[float]) -> bool:
    """Whether ``values`` read better on a log axis: none negative, and spread over two decades or more."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return bool(finite) and min(finite) >= 0 and max(finite) >= 100 * (1 + min(finite))


def histogram(values: Sequence[float], lines: Sequence[Line] = (), *, title: str, integer: bool = False,
              log: bool | None = None, width: int = 300, height: int = 160) -> str:
    """Bars of ``values`` with each threshold of ``lines`` drawn as a red vertical line; ``log`` (default: when
    :func:`wants_log`) bins on log10(1 + value)."""
    left, right, top, bottom = 34, 8, 18, 30
    pw, ph = width - left - right, height - top - bottom
    log = wants_log(values) if log is None else log
    b = bin_values(values, [ln.value for ln in lines], integer=integer, log=log)
    peak = max(b.counts) or 1
    bw = pw / len(b.counts)
    edge = 0.0 if b.log or not integer else 0.5
    body = [_text(left, 12, title + (" (log scale)" if b.log else ""), extra=' font-weight="bold"')]
    for i, c in enumerate(b.counts):
        h = ph * c / peak
        body.append(f'<rect class="bar" x="{left + i * bw + 0.5:.1f}" y="{top + ph - h:.1f}" '
                    f'width="{max(bw - 1, 0.5):.1f}" height="{h:.1f}" fill="{BAR}"><title>{c}</title></rect>')
    body += [f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#333"/>',
             _text(left, height - 14, fmt(b.unscale(b.lo + edge)), "start"),
             _text(left + pw, height - 14, fmt(b.unscale(b.hi - edge)), "end"),
             _text(left - 4, top + 8, str(peak), "end"), _text(left - 4, top + ph, "0", "end"),
             _text(left + pw / 2, height - 2, f"{len([v for v in values if v is not None])} values", "middle")]
    for ln in lines:
        shift = {"min": -0.5, "max": 0.5}.get(ln.kind, 0.0) if integer and not b.log else 0.0
        x = b.x(ln.value + shift, left, pw)
        body.append(f'<line class="threshold" data-value="{ln.value!r}" x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" '
                    f'y2="{top + ph}" stroke="{THRESHOLD}" stroke-width="2"><title>{escape(ln.label)}</title></line>')
        inside = x < left + pw * 0.75   # the label on the line's side with room
        body.append(_text(x + 3 if inside else x - 3, top + 6, fmt(ln.value), "start" if inside else "end",
                          extra=f' fill="{THRESHOLD}"'))
    return _svg(width, height, body, title)


@dataclass(frozen=True)
class Series:
    """One stage's scores along a video: (frame index, score) points and its threshold."""
    name: str
    points: list[tuple[int, float]]
    threshold: float | None = None


def timeline(series: Sequence[Series], *, length: int, cuts: Sequence[int] = (), selected: Sequence[int] = (),
             title: str, width: int = 900, height: int = 170) -> str:
    """Scores (0-1) of each stage over frame index 0..``length``: points joined by a line, the thresholds
    dashed, scene cuts as grey vertical lines and the selected frames as green marks under the axis."""
    left, right, top, bottom = 34, 110, 18, 34
    pw, ph = width - left - right, height - top - bottom
    length = max(length, 1, *(i + 1 for s in series for i, _ in s.points), *(c + 1 for c in cuts),
                 *(s + 1 for s in selected))

    def x(i: float) -> float:
        return left + i / length * pw

    def y(v: float) -> float:
        return top + ph * (1.0 - min(1.0, max(0.0, v)))

    body = [_text(left, 12, title, extra=' font-weight="bold"'),
            f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>']
    for c in cuts:
        body.append(f'<line class="cut" x1="{x(c):.1f}" y1="{top}" x2="{x(c):.1f}" y2="{top + ph}" stroke="#888" '
                    f'stroke-dasharray="2,2"><title>scene cut at frame {c}</title></line>')
    for k, s in enumerate(series):
        colour = STAGE_COLOURS.get(s.name, BAR)
        pts = sorted(s.points)
        if len(pts) > 1:
            path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in pts)
            body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.2"/>')
        body += [f'<circle class="point" cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}">'
                 f'<title>{s.name} frame {i}: {fmt(v)}</title></circle>' for i, v in pts]
        if s.threshold is not None:
            body.append(f'<line class="threshold" data-value="{s.threshold!r}" x1="{left}" y1="{y(s.threshold):.1f}" '
                        f'x2="{left + pw}" y2="{y(s.threshold):.1f}" stroke="{colour}" stroke-dasharray="6,3"/>')
        body.append(f'<rect x="{left + pw + 10}" y="{top + k * 16}" width="10" height="10" fill="{colour}"/>')
        body.append(_text(left + pw + 24, top + k * 16 + 9, f"{s.name} ({len(pts)})"))
    for s in selected:
        body.append(f'<path class="selected" d="M{x(s):.1f},{top + ph + 2} l-5,9 h10 z" fill="{SELECTED}">'
                    f'<title>selected: frame {s}</title></path>')
    legend = len(series)
    body += [_text(left + pw + 10, top + legend * 16 + 9, "▲ selected", extra=f' fill="{SELECTED}"'),
             _text(left + pw + 10, top + legend * 16 + 25, "┆ scene cut", extra=' fill="#888"'),
             _text(left, height - 4, "0"), _text(left + pw, height - 4, f"frame {length}", "end"),
             _text(left - 4, top + 8, "1", "end"), _text(left - 4, top + ph, "0", "end")]
    return _svg(width, height, body, title)


@dataclass(frozen=True)
class Step:
    """One row of a funnel: how many came in, went on, were dropped, failed."""
    label: str
    n_in: int
    kept: int
    dropped: int = 0
    errors: int = 0


def funnel(steps: Sequence[Step], *, title: str, width: int = 900) -> str:
    """One horizontal bar per step, its length the step's input, split into kept (green), dropped (grey) and
    errors (red), scaled to the largest input."""
    label_w, row_h, top = 250, 24, 20
    height = top + row_h * len(steps) + 8
    pw = width - label_w - 150
    peak = max([s.n_in for s in steps] + [s.kept for s in steps] + [1])
    body = [_text(0, 12, title, extra=' font-weight="bold"')]
    for k, s in enumerate(steps):
        y0 = top + k * row_h
        body.append(_text(label_w - 6, y0 + 15, s.label, "end"))
        x0 = label_w
        for part, value, colour in (("kept", s.kept, KEPT), ("dropped", s.dropped, DROPPED),
                                    ("errors", s.errors, ERRORS)):
            w = pw * value / peak
            if value > 0:
                body.append(f'<rect class="bar {part}" x="{x0:.1f}" y="{y0 + 3}" width="{max(w, 1):.1f}" '
                            f'height="{row_h - 6}" fill="{colour}">'
                            f'<title>{escape(s.label)}: {part} {value}</title></rect>')
            x0 += w
        extra = "".join(f", {n} {what}" for n, what in ((s.dropped, "dropped"), (s.errors, "errors")) if n)
        body.append(_text(x0 + 6, y0 + 15, f"{s.kept} of {s.n_in}{extra}"))
    return _svg(width, height, body, title)


def counts(items: Sequence[tuple[str, int]], *, title: str, width: int = 560) -> str:
    """One horizontal bar per label, its length the label's count, scaled to the largest."""
    label_w, row_h, top = 170, 22, 20
    peak = max([n for _, n in items] + [1])
    pw = width - label_w - 60
    body = [_text(0, 12, title, extra=' font-weight="bold"')]
    for k, (label, n) in enumerate(items):
        y0 = top + k * row_h
        w = max(pw * n / peak, 1)
        body.append(_text(label_w - 6, y0 + 14, label, "end"))
        body.append(f'<rect class="bar" x="{label_w}" y="{y0 + 3}" width="{w:.1f}" height="{row_h - 6}" '
                    f'fill="{BAR}"><title>{escape(label)}: {n}</title></rect>')
        body.append(_text(label_w + w + 6, y0 + 14, str(n)))
    return _svg(width, top + row_h * max(len(items), 2) + 8, body, title)   # room for the title


__all__ = ["Bins", "Line", "Series", "Step", "bin_values", "counts", "fmt", "funnel", "histogram", "timeline",
           "wants_log"]
