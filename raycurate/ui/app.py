"""The Gradio app: Main (input, presets, analysers, thresholds, Start / Cancel, live progress),
Results (gallery, filters, detail view, manual keep / reject), Search, Export and Plots.

Layout and wiring only: what each button does lives in :class:`raycurate.ui.session.Session`. Each tab's
layout and handlers live in a module of their own (``tabs_main``, ``tabs_results``, ``tabs_search``,
``tabs_export``, ``tabs_plots``); this one assembles the page and serves it.
"""
from __future__ import annotations

import shutil
from types import SimpleNamespace
from typing import Any

import gradio as gr

from .session import Session
from .tabs_export import build_export_tab, wire_export
from .tabs_main import build_main_tab, wire_main
from .tabs_plots import build_plots_tab, wire_plots
from .tabs_results import ALL_RUNS, build_results_tab, filter_inputs, wire_detail, wire_results
from .tabs_search import build_search_tab, wire_search

CSS = """
#run-status p, #results-count p {font-size: 1.05rem}
.rc-help {opacity: .85}
"""


def default_profile() -> str:
    """full-gpu where an NVIDIA driver is present, else fast-cpu (nothing to download)."""
    return "full-gpu" if shutil.which("nvidia-smi") else "fast-cpu"


def _intro(session: Session) -> str:
    roots = ", ".join(f"`{r}`" for r in session.settings.roots.describe())
    return f"""# raycurate
Curate datasets of people from photos and videos. Every image and sampled video frame is scored
(quality, faces, NSFW, and more when their models are installed), kept or dropped by SQL over the stored
scores, and de-duplicated, in one LanceDB table. Filters re-query that table: no model runs again.

**How to start.** 1. In **Main**, upload images and videos, or type a folder inside {roots}.
2. Pick a video preset; adjust analysers and thresholds if you like. 3. Press **Start**: counts per stage
appear on the right. 4. **Results** shows what was kept (click a picture for its scores, face boxes and
source); **Search** finds similar frames; **Export** downloads a training folder as a zip;
**Plots** shows score histograms and the per-stage funnel."""


def build_app(session: Session) -> gr.Blocks:
    """The page: one builder per tab lays it out, then one wiring per tab connects the handlers.
    ``ui`` holds every component by name (``ui.start``, ``ui.gallery``, ...)."""
    s = session.settings
    profile0 = s.profile or default_profile()
    preset0 = "custom"
    ui = SimpleNamespace()
    # uploads land in gradio's cache (the work folder's gradio-cache/): files older than a day are removed
    with gr.Blocks(title="raycurate", analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        gr.Markdown(_intro(session), elem_id="intro")
        ui.db_md = gr.Markdown(session.db_summary(), elem_id="db-summary")
        ui.finished = gr.State(None)
        ui.keys_state = gr.State([])
        ui.selected = gr.State(None)
        with gr.Tabs(selected="main") as ui.tabs:
            build_main_tab(ui, session, profile0, preset0)
            build_results_tab(ui, session)
            build_search_tab(ui, session)
            build_export_tab(ui)
            build_plots_tab(ui)
        ui.filter_inputs = filter_inputs(ui)
        wire_main(ui, session)
        wire_results(ui, session, demo)
        wire_detail(ui, session)
        wire_search(ui, session)
        wire_export(ui, session)
        wire_plots(ui, session)
    return demo


def launch(session: Session, *, block: bool = True) -> Any:
    """Build and serve the app on ``settings.host:port``; returns gradio's (app, local_url, share_url)."""
    s = session.settings
    demo = build_app(session)
    demo.queue(default_concurrency_limit=4)
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])   # no web fonts: works offline
    return demo.launch(server_name=s.host, server_port=s.port, max_file_size=f"{s.max_upload_mb}mb",
                       allowed_paths=[s.folder("thumbnails"), s.folder("exports")], show_error=True,
                       share=False, ssr_mode=False, mcp_server=False, theme=theme, css=CSS,
                       prevent_thread_lock=not block, quiet=True, footer_links=["gradio"])


__all__ = ["ALL_RUNS", "build_app", "default_profile", "launch"]
