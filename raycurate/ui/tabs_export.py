"""The Export tab: formats and kohya settings, then the rows Results keeps written out and zipped."""
from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import gradio as gr

from . import exports
from .session import Session
from .tabs_results import filters_from


def build_export_tab(ui: SimpleNamespace) -> None:
    """Lay out the Export tab (inside ``gr.Tabs``); its components become attributes of ``ui``."""
    with gr.Tab("Export", id="export") as ui.export_tab:
        gr.Markdown("Exports the rows the **Results** tab keeps with its current run and filters "
                    "(manual keep / reject applied). Written into the server's work folder, then zipped.")
        ui.export_info = gr.Markdown("", elem_id="export-rows")
        ui.formats = gr.CheckboxGroup([(label, key) for key, label in exports.FORMATS],
                                      value=exports.DEFAULT_FORMATS, label="Formats", elem_id="export-formats")
        with gr.Row():
            ui.kohya_name = gr.Textbox("person", label="kohya class name", elem_id="export-name")
            ui.trigger = gr.Textbox("", label="Trigger word (caption start; empty: the class name)",
                                    elem_id="export-trigger")
            ui.repeats = gr.Slider(1, 100, value=10, step=1, label="Repeats per epoch", elem_id="export-repeats")
            ui.caption_style = gr.Radio([("comma tags", "tags"), ("one sentence", "sentence")], value="tags",
                                        label="Caption style", elem_id="export-caption-style")
        ui.export_btn = gr.Button("Export and zip", variant="primary", elem_id="export-go")
        ui.export_msg = gr.Markdown("", elem_id="export-status")
        ui.export_file = gr.File(label="Download", interactive=False, elem_id="export-file")


def wire_export(ui: SimpleNamespace, session: Session) -> None:
    """Opening the tab counts the rows to export; the button exports and zips them."""
    s = session.settings

    def on_export(fmts: list[str], name: str, trig: str, reps: float, style: str, *fvals: Any):
        f = filters_from(*fvals).with_(show="kept")
        if session.results.table() is None:
            return "Nothing to export yet: run a curation first.", None
        try:
            export = exports.export_config(fmts or [], name=name, trigger=trig, repeats=int(reps),
                                           include_duplicates=f.include_duplicates, caption_style=style or "tags")
            done = exports.export_zip(s.db, s.folder("exports"), session.results.where(f), export)
        except Exception as exc:
            return f"**Export failed.** {exc}", None
        size = os.path.getsize(done.zip_path) / 1e6
        return (f"{done.summary} → `{done.folder}` · zip {size:.1f} MB", done.zip_path)

    def on_export_info(*fvals: Any):
        f = filters_from(*fvals).with_(show="kept")
        if session.results.table() is None:
            return "Nothing to export yet: run a curation first."
        try:
            n = session.results.count(f)
        except Exception as exc:
            return f"**Query refused by LanceDB:** `{str(exc).splitlines()[0][:300]}`"
        scope = f"run `{f.run_id}`" if f.run_id else "all runs"
        return f"**{n}** rows to export ({scope}, the Results filters)."

    ui.export_tab.select(on_export_info, ui.filter_inputs, ui.export_info)
    ui.export_btn.click(on_export, [ui.formats, ui.kohya_name, ui.trigger, ui.repeats, ui.caption_style,
                                    *ui.filter_inputs],
                        [ui.export_msg, ui.export_file])


__all__ = ["build_export_tab", "wire_export"]
