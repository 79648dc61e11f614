"""The Results tab: run choice and filters, the gallery of what is kept, the detail view and manual
keep / reject; the conversion between the filter widgets and :class:`Filters`; and what they do."""
from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import gradio as gr

from .results import MEDIA, SHOW, SORTS, Filters
from .session import Session, UserError

ALL_RUNS = "__all__"


def run_choices(session: Session) -> list[tuple[str, str]]:
    runs = session.results.runs()
    return [("all runs", ALL_RUNS)] + [(f"{rid} ({n} rows)", rid) for rid, n in runs]


def filters_from(run: str | None, show: str, media: list[str], min_faces: float, max_faces: float | None,
                 max_nsfw: float, min_sharp: float, min_side: float, max_yaw: float | None, blurry: bool,
                 dups: bool, where: str) -> Filters:
    """The Results filters from the components (in ``filter_inputs`` order); 0 (1 for NSFW, empty for the
    maximum faces and yaw) turns a gate off."""
    return Filters(run_id=None if run in (None, "", ALL_RUNS) else run, show=show or "kept",
                   media=tuple(media or ()), min_faces=int(min_faces or 0) or None,
                   max_faces=None if max_faces is None else int(max_faces),
                   max_nsfw_score=None if max_nsfw is None or max_nsfw >= 1 else float(max_nsfw),
                   min_sharpness=float(min_sharp or 0) or None, min_side=int(min_side or 0) or None,
                   max_abs_yaw=None if max_yaw is None else float(max_yaw), drop_blurry=bool(blurry),
                   include_duplicates=bool(dups), where=(where or "").strip() or None)


def filter_values(f: Filters) -> list[Any]:
    """The components' values for ``f`` (the inverse of :func:`filters_from`)."""
    return [f.run_id or ALL_RUNS, f.show, list(f.media), f.min_faces or 0, f.max_faces,
            1.0 if f.max_nsfw_score is None else f.max_nsfw_score, f.min_sharpness or 0, f.min_side or 0,
            f.max_abs_yaw, f.drop_blurry, f.include_duplicates, f.where or ""]


def count_text(f: Filters, n: int, shown: int) -> str:
    scope = f"of run `{f.run_id}`" if f.run_id else "in all runs"
    more = f" · showing the first {shown}" if n > shown else ""
    return f"**{n}** {f.show} rows {scope}{more}"


def _legend() -> str:
    from .draw import LEGEND

    return LEGEND


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    from .results import jsonable

    return jsonable(row)


def _filter_column(ui: SimpleNamespace, session: Session) -> None:
    ui.run_dd = gr.Dropdown(run_choices(session), value=ALL_RUNS, label="Run", elem_id="f-run")
    ui.show = gr.Radio(list(SHOW), value="kept", label="Show", elem_id="f-show",
                       info="kept: what a run keeps; dropped: the rest; rejected: by hand")
    ui.media = gr.CheckboxGroup([("photos", MEDIA[0]), ("video frames", MEDIA[1])], value=list(MEDIA),
                                label="Media", elem_id="f-media")
    f0 = session.default_filters(None)
    ui.min_faces = gr.Slider(0, 10, value=f0.min_faces or 0, step=1, label="Minimum faces",
                             info="0: no face gate", elem_id="f-min-faces")
    ui.max_faces = gr.Number(value=f0.max_faces, precision=0, minimum=0, label="Maximum faces",
                             info="empty: no gate", elem_id="f-max-faces")
    ui.max_nsfw = gr.Slider(0, 1, value=f0.max_nsfw_score if f0.max_nsfw_score is not None else 1,
                            step=0.01, label="Maximum NSFW score", info="1: no NSFW gate", elem_id="f-max-nsfw")
    ui.min_sharp = gr.Slider(0, 3000, value=f0.min_sharpness or 0, step=10, label="Minimum sharpness",
                             info="variance of the Laplacian; 0: no gate", elem_id="f-min-sharp")
    ui.min_side = gr.Slider(0, 2048, value=f0.min_side or 0, step=16, label="Minimum side (px)",
                            elem_id="f-min-side")
    ui.max_yaw = gr.Number(value=f0.max_abs_yaw, minimum=0, maximum=180,
                           label="Maximum head yaw (degrees, either side)",
                           info="the largest face; needs InsightFace's head pose; empty: no gate",
                           elem_id="f-max-yaw")
    ui.blurry = gr.Checkbox(value=f0.drop_blurry, label="Drop blurry", elem_id="f-blurry")
    ui.dups = gr.Checkbox(value=False, label="Include near / exact duplicates", elem_id="f-dups")
    ui.sort = gr.Dropdown(list(SORTS), value="best video score first", label="Sort", elem_id="f-sort")
    ui.where = gr.Textbox(value=f0.where or "", label="Extra SQL over stored columns", elem_id="f-where",
                          placeholder="e.g. quality_brightness > 0.3 AND width >= 512")
    ui.refresh = gr.Button("Refresh", elem_id="f-refresh")


def _gallery_column(ui: SimpleNamespace) -> None:
    ui.count_md = gr.Markdown("", elem_id="results-count")
    ui.gallery = gr.Gallery(label="Kept images and frames (click one for its details)", columns=6,
                            height=420, allow_preview=False, object_fit="cover", elem_id="results-gallery")
    with gr.Row(elem_id="detail"):
        ui.detail_img = gr.Image(label="Detail", interactive=False, height=460, elem_id="detail-image")
        with gr.Column():
            ui.lineage_md = gr.Markdown("Click a picture in the gallery.", elem_id="detail-lineage")
            gr.Markdown(_legend(), elem_classes=["rc-help"])
            with gr.Row():
                ui.keep_btn = gr.Button("Keep", elem_id="label-keep")
                ui.reject_btn = gr.Button("Reject", variant="stop", elem_id="label-reject")
                ui.clear_btn = gr.Button("Clear label", elem_id="label-clear")
                ui.similar_btn = gr.Button("Find similar frames", variant="primary", elem_id="find-similar")
            ui.label_md = gr.Markdown("", elem_id="label-status")
    ui.detail_json = gr.JSON(label="Every stored attribute", elem_id="detail-json")


def build_results_tab(ui: SimpleNamespace, session: Session) -> None:
    """Lay out the Results tab (inside ``gr.Tabs``); its components become attributes of ``ui``."""
    with gr.Tab("Results", id="results"):
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                _filter_column(ui, session)
            with gr.Column(scale=3):
                _gallery_column(ui)


def filter_inputs(ui: SimpleNamespace) -> list[Any]:
    """The filter widgets in :func:`filters_from`'s order."""
    return [ui.run_dd, ui.show, ui.media, ui.min_faces, ui.max_faces, ui.max_nsfw, ui.min_sharp, ui.min_side,
            ui.max_yaw, ui.blurry, ui.dups, ui.where]


def gallery_update(session: Session, f: Filters, sort_by: str):
    """The gallery items, the count line and the rows' keys for ``f``."""
    if session.results.table() is None:
        return [], "No results yet: start a run in **Main**.", []
    try:
        items, keys, n = session.gallery(f, sort_by)
    except Exception as exc:   # a bad extra SQL: say so, keep the page usable
        return [], f"**Query refused by LanceDB:** `{str(exc).splitlines()[0][:300]}`", []
    return items, count_text(f, n, len(items)), keys


def wire_results(ui: SimpleNamespace, session: Session, demo: gr.Blocks) -> None:
    """A finished run and the page load refresh the Results tab; the filters re-query the table."""
    def on_filters(*vals: Any):
        *fvals, sort_by = vals
        return gallery_update(session, filters_from(*fvals), sort_by)

    def on_run_done(run_id: str | None):
        """A run ended: list it, select it, set its filters, show its gallery."""
        f = session.default_filters(run_id) if run_id else session.default_filters(None)
        items, count, keys = gallery_update(session, f, "best video score first")
        ok, msg = session.text_search()
        return [session.db_summary(), gr.Dropdown(choices=run_choices(session), value=f.run_id or ALL_RUNS),
                *filter_values(f)[1:], items, count, keys, msg, gr.Textbox(interactive=ok),
                gr.Button(interactive=ok)]

    def on_load():
        runs = session.results.runs()
        out = on_run_done(runs[0][0] if runs else None)
        if session.run is None:   # leave the status alone: a click may already have answered
            return out + [gr.skip(), gr.Timer(active=False)]
        return out + [session.poll().status, gr.Timer(active=session.runner.busy())]

    inputs = ui.filter_inputs
    done_outputs = [ui.db_md, ui.run_dd, *inputs[1:], ui.gallery, ui.count_md, ui.keys_state, ui.text_info,
                    ui.search_text, ui.text_btn]
    ui.finished.change(on_run_done, ui.finished, done_outputs)
    demo.load(on_load, None, done_outputs + [ui.status, ui.timer])
    for comp in inputs + [ui.sort]:
        comp.change(on_filters, inputs + [ui.sort], [ui.gallery, ui.count_md, ui.keys_state],
                    trigger_mode="always_last")
    ui.refresh.click(on_filters, inputs + [ui.sort], [ui.gallery, ui.count_md, ui.keys_state])


def wire_detail(ui: SimpleNamespace, session: Session) -> None:
    """A click in the gallery shows the detail view; Keep / Reject / Clear label set the manual label."""
    def on_select(keys: list[Any], evt: gr.SelectData):
        if not keys or evt.index is None or evt.index >= len(keys):
            return None, "Click a picture in the gallery.", None, None, ""
        key = keys[evt.index]
        try:
            picture, line, attrs = session.detail(key)
        except UserError as exc:
            return None, str(exc), None, None, ""
        label = attrs.get("manual_label")
        dup = f" · duplicate of `{attrs['duplicate_of'][:12]}`" if attrs.get("duplicate_of") else ""
        return (picture, f"**{os.path.basename(attrs['uri'])}** · id `{attrs['id'][:16]}`{dup}\n\n{line}", attrs,
                key, f"Manual label: **{label}**" if label else "No manual label: the gates decide.")

    def labeller(label: str | None):
        def on_label(key: Any, *vals: Any):
            *fvals, sort_by = vals
            if not key:
                return ("Pick a picture first.", *gallery_update(session, filters_from(*fvals), sort_by), gr.skip())
            n = session.results.set_label(key[0], label)
            what = f"**{label}**" if label else "cleared"
            row = session.results.row(*key) or {}
            note = (" (it is a duplicate: its keeper stands for it unless duplicates are included)"
                    if label == "keep" and row.get("duplicate_of") else "")
            return (f"Manual label {what} on {n} row(s) of this content{note}.",
                    *gallery_update(session, filters_from(*fvals), sort_by), row and _jsonable(row))
        return on_label

    ui.gallery.select(on_select, ui.keys_state, [ui.detail_img, ui.lineage_md, ui.detail_json, ui.selected,
                                                 ui.label_md])
    for btn, lab in ((ui.keep_btn, "keep"), (ui.reject_btn, "reject"), (ui.clear_btn, None)):
        btn.click(labeller(lab), [ui.selected, *ui.filter_inputs, ui.sort],
                  [ui.label_md, ui.gallery, ui.count_md, ui.keys_state, ui.detail_json])


__all__ = ["ALL_RUNS", "build_results_tab", "count_text", "filter_inputs", "filter_values", "filters_from",
           "gallery_update", "run_choices", "wire_detail", "wire_results"]
