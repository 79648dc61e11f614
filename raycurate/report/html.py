"""The report page: one HTML string, its CSS inline, its plots inline SVG (:mod:`.svg`), its pictures data
URIs; nothing it shows is fetched from anywhere."""
from __future__ import annotations

from html import escape
from typing import Any, Mapping, Sequence

from . import svg
from .data import ReportData
from .records import Card

SECTIONS = (("funnel", "Funnel"), ("histograms", "Scores and thresholds"), ("timelines", "Videos"),
            ("kept", "Kept images"), ("rejected", "Dropped by each gate"), ("identities", "Identities"),
            ("people", "Expressions and bodies"),
            ("models", "Models and provenance"), ("errors", "Errors"))

CSS = """
body{font-family:sans-serif;margin:0 24px 40px;color:#222;background:#fff}
h1{font-size:22px;margin:18px 0 4px} h2{font-size:18px;border-bottom:1px solid #ddd;padding-top:12px}
h3{font-size:14px;margin:14px 0 6px} nav a{margin-right:12px} .muted{color:#666;font-size:12px}
.note{background:#fff6d5;padding:6px 10px;border-left:3px solid #e0b000}
.grid{display:flex;flex-wrap:wrap;gap:10px} .plot{border:1px solid #eee;padding:4px}
.card{width:172px;border:1px solid #ddd;border-radius:4px;padding:4px;font-size:11px;overflow-wrap:anywhere}
.card img{display:block;max-width:160px;max-height:160px;margin:0 auto 4px}
.card .nopic{height:60px;background:#f0f0f0;color:#888;display:flex;align-items:center;justify-content:center}
.card b{display:block;font-size:11px} table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top} th{background:#f5f5f5}
"""


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    columns = list(columns or rows[0].keys())
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(r.get(c, '')))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _card(card: Card) -> str:
    pic = (f'<img src="{card.thumb}" alt="{escape(card.title)}">' if card.thumb
           else '<div class="nopic">no picture</div>')
    values = "<br>".join(f"{escape(k)}: {escape(v)}" for k, v in card.values.items())
    tip = f' title="{escape(card.uri)}"' if card.uri else ""
    return f'<div class="card"{tip}>{pic}<b>{escape(card.title)}</b>{values}</div>'


def _cards(cards: Sequence[Card]) -> str:
    return f'<div class="grid">{"".join(_card(c) for c in cards)}</div>' if cards else '<p class="muted">none</p>'


def _unknown(d: ReportData) -> str:
    if not d.unknown_total:
        return ""
    return (f'<h3>Unknown faces: {d.unknown_total}</h3><p class="muted">in no identity: not clearly nearer one '
            f"identity than another (the sharpest {len(d.unknown)} shown)</p>" + _cards(d.unknown))


def _funnel(d: ReportData) -> str:
    parts = []
    if d.video_funnel:
        parts.append(svg.funnel(d.video_funnel, title="Video path: frames through the cascade"))
    if d.image_funnel:
        parts.append(svg.funnel(d.image_funnel, title="Image path: photos and winning frames through the gates"))
    return "".join(f'<div class="plot">{p}</div>' for p in parts) or '<p class="muted">nothing stored</p>'


def _histograms(d: ReportData) -> str:
    out, table = [], None
    for h in d.histograms:
        if h.table != table:
            out.append(("</div>" if table else "") + f'<h3>table <code>{escape(h.table)}</code></h3><div class="grid">')
            table = h.table
        out.append(f'<div class="plot">{svg.histogram(h.values, h.lines, title=h.column, integer=h.integer)}</div>')
    if table:
        out.append("</div>")
    legend = '<p class="muted">Red lines: the run\'s thresholds (hover for the setting).</p>'
    return legend + "".join(out) if out else '<p class="muted">no scores stored</p>'


def _timelines(d: ReportData) -> str:
    out = []
    for t in d.timelines:
        name = t.uri.rsplit("/", 1)[-1]
        note = f'<p class="muted">{escape(t.note)}</p>' if t.note else ""
        plot = svg.timeline(t.series, length=t.length, cuts=t.cuts, selected=t.selected, title=name)
        out.append(f'<div class="plot">{plot}{note}</div>')
    return "".join(out) or '<p class="muted">no videos in this run</p>'


def _rejected(d: ReportData) -> str:
    out = []
    for g in d.rejected:
        out.append(f"<h3>{escape(g.name)}: {g.dropped} dropped <span class=\"muted\">(passes when "
                   f"<code>{escape(g.sql)}</code>)</span></h3>{_cards(g.samples)}")
    return "".join(out) or '<p class="muted">no gates known for this run</p>'


def _people(d: ReportData) -> str:
    plots = "".join(f'<div class="plot">{svg.counts(t.counts, title=t.title)}</div>' for t in d.people)
    return f'<div class="grid">{plots}</div>' if plots else '<p class="muted">no expression or body stored</p>'


def _models(d: ReportData) -> str:
    m = d.manifest or {}
    out = [_table(d.models, ["analyser", "stored", "model (manifest)", "why"])]
    stages = m.get("video", {}).get("stages")
    if stages:
        rows = [{"stage": k, "analysers": ", ".join(v.get("analyzers", [])) or
                 ", ".join(f"{p} {w}" for p, w in v.get("ensemble_of_stored_scores", {}).items()),
                 "threshold": v.get("threshold")} for k, v in stages.items()]
        out.append("<h3>Video cascade</h3>" + _table(rows))
    if m:
        libs = [{"library": k, "version": v} for k, v in m.get("libraries", {}).items() if v]
        out.append(f"<h3>Versions</h3><p>raycurate {escape(str(m.get('raycurate_version')))}, Python "
                   f"{escape(str(m.get('host', {}).get('python')))}, {escape(str(m.get('host', {}).get('platform')))}"
                   f"</p>{_table(libs)}")
        checks = [{"node": node, "weights": ", ".join(f"{k}: {v}" for k, v in w.items())}
                  for node, w in m.get("model_check", {}).items()]
        out.append("<h3>Weights verified on the nodes</h3>" + _table(checks))
        timings = [{"step": k, "seconds": v} for k, v in m.get("timings_s", {}).items()]
        out.append("<h3>Timings</h3>" + _table(timings))
    return "".join(out)


def _header(d: ReportData) -> str:
    m = d.manifest or {}
    inp = m.get("input", {})
    scope = "the catalogue after run" if d.catalogue else "run"
    bits = [f"{scope} <code>{escape(d.run_id)}</code>"]
    if m:
        new = m.get("ingest", {}).get("new", {})
        bits += [f"input <code>{escape(str(inp.get('uri')))}</code>",
                 f"{inp.get('images', 0)} images, {inp.get('videos', 0)} videos, {inp.get('other', 0)} other",
                 f"{new.get('image', 0)} images and {new.get('video', 0)} videos new this run",
                 f"kept {m.get('counts', {}).get('kept', 0)} of {m.get('counts', {}).get('catalogue', 0)}",
                 f"started {escape(str(m.get('started_at')))}, finished {escape(str(m.get('finished_at')))}"]
    if m.get("command"):
        bits.append(f"<code>{escape(' '.join(map(str, m['command'])))}</code>")
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in d.notes)
    nav = "".join(f'<a href="#{key}">{title}</a>' for key, title in SECTIONS)
    return f"<h1>raycurate report</h1><p class=\"muted\">{' · '.join(bits)}</p><nav>{nav}</nav>{notes}"


def render(d: ReportData) -> str:
    """The whole page."""
    kept_note = (f'<p class="muted">{len(d.kept)} of {d.kept_total} kept rows shown, with the values their gates '
                 "read (frames: their Stage 3 score and where they come from)</p>")
    body = {
        "funnel": _funnel(d),
        "histograms": _histograms(d),
        "timelines": '<p class="muted">Stage scores per sampled frame (Stage 3: the frames Stage 2 passed); '
                     "dashed: each stage's threshold.</p>" + _timelines(d),
        "kept": (kept_note + _cards(d.kept)) if d.manifest else '<p class="muted">not known without the manifest</p>',
        "rejected": _rejected(d),
        "identities": _cards(d.identities) + _unknown(d),
        "people": _people(d),
        "models": _models(d),
        "errors": f'<p class="muted">{d.errors_total} rows with an error column set '
                  f"({len(d.errors)} listed)</p>" + _table(d.errors, ["table", "where", "column", "error"]),
    }
    sections = "".join(f'<section id="{key}"><h2>{title}</h2>{body[key]}</section>' for key, title in SECTIONS)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>raycurate report '
            f'{escape(d.run_id)}</title><style>{CSS}</style></head><body>{_header(d)}{sections}</body></html>')


__all__ = ["SECTIONS", "render"]
