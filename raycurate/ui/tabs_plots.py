"""The Plots tab: the per-stage funnel and score histograms of the run chosen in Results."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gradio as gr

from . import plots
from .session import Session
from .tabs_main import STAGE_WIDTHS, progress_frame
from .tabs_results import filters_from


def build_plots_tab(ui: SimpleNamespace) -> None:
    """Lay out the Plots tab (inside ``gr.Tabs``); its components become attributes of ``ui``."""
    with gr.Tab("Plots", id="plots") as ui.plots_tab:
        gr.Markdown("For the run chosen in **Results**; its filters split the histograms into "
                    "kept (green) and not kept (grey).")
        ui.plots_btn = gr.Button("Refresh plots", elem_id="plots-refresh")
        ui.funnel_plot = gr.BarPlot(None, x="stage", y="count", color="measure", color_map=plots.FUNNEL_COLOURS,
                                    height=360, x_label_angle=-30, label="Per-stage funnel", elem_id="funnel-plot")
        ui.funnel_df = gr.Dataframe(progress_frame([]), label="Funnel", interactive=False, max_height=640,
                                    column_widths=STAGE_WIDTHS, elem_id="funnel-table")
        ui.hist_plots = []
        for i in range(0, len(plots.SCORES), 2):
            with gr.Row():
                for column, title in plots.SCORES[i:i + 2]:
                    ui.hist_plots.append(gr.BarPlot(None, x="bin", y="count", color="rows",
                                                    color_map=plots.HIST_COLOURS, label=title, height=260,
                                                    x_label_angle=-45, elem_id=f"hist-{column}"))


def wire_plots(ui: SimpleNamespace, session: Session) -> None:
    """The refresh button and opening the tab redraw the plots."""
    def on_plots(*fvals: Any):
        f = filters_from(*fvals)
        run_id = f.run_id or (session.results.runs() or [(None, 0)])[0][0]
        rows = session.funnel_rows(run_id)
        frame, order = plots.funnel(rows)
        # a plot takes its value with x, y and colour again (gradio 6 drops a sort given alone)
        out = [gr.BarPlot(frame if len(frame) else None, x="stage", y="count", color="measure", sort=order,
                          color_map=plots.FUNNEL_COLOURS,
                          label=f"Per-stage funnel of run {run_id or '-'} (green kept, grey dropped, red errors, "
                                "light grey pending; bar height = the stage's input)"),
               progress_frame(rows)]
        for title, hist, bins in session.histograms(f.with_(run_id=run_id)):
            out.append(gr.BarPlot(hist if len(hist) else None, x="bin", y="count", color="rows", sort=bins,
                                  color_map=plots.HIST_COLOURS,
                                  label=title if len(hist) else f"{title}: no values"))
        return out

    plot_outputs = [ui.funnel_plot, ui.funnel_df, *ui.hist_plots]
    ui.plots_btn.click(on_plots, ui.filter_inputs, plot_outputs)
    ui.plots_tab.select(on_plots, ui.filter_inputs, plot_outputs)


__all__ = ["build_plots_tab", "wire_plots"]
