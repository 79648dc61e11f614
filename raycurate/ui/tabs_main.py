"""The Main tab: input (uploads or a folder), video preset and sampling, analysers and thresholds,
Start / Cancel and the live progress table; and what its buttons and timer do."""
from __future__ import annotations

import shlex
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd

from ..config import PROFILES
from . import params, progress
from .paths import PathRefused
from .session import Session, UserError

STAGE_WIDTHS = ["40%", "14%", "14%", "17%", "15%"]


def progress_frame(rows: list[list[Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=progress.COLUMNS)


def skip_notes(profile: str | None) -> dict[str, str]:
    from ..analyzers import active_analyzers

    try:
        settings = params.settings_for(profile=profile or None)
        return active_analyzers(settings.analyzers, settings.models)[1]
    except Exception:   # a strict profile with missing weights: the run itself says it
        return {}


def analyser_boxes(profile: str | None) -> list[Any]:
    values = params.defaults(profile=profile or None)
    notes = skip_notes(profile)
    return [gr.Checkbox(value=values[f"analyzers.{name}.enabled"],
                        info=f"skipped in this profile: {notes[name]}" if name in notes else None)
            for name, _ in params.ANALYSERS]


def slider(p: params.Param, value: Any, elem: str, **kw: Any) -> Any:
    if p.kind is bool:
        return gr.Checkbox(value=bool(value), label=p.label, info=p.info, elem_id=elem, **kw)
    return gr.Slider(p.minimum, p.maximum, value=value, step=p.step, label=p.label, info=p.info,
                     elem_id=elem, **kw)


def _input_column(ui: SimpleNamespace, session: Session, profile0: str, preset0: str) -> None:
    s = session.settings
    init = params.defaults(preset=preset0, profile=profile0)
    gr.Markdown("### 1. Input")
    ui.uploads = gr.File(label=f"Upload images and videos (up to {s.max_upload_mb} MB each)",
                         file_count="multiple", file_types=["image", "video"], elem_id="uploads")
    ui.path = gr.Textbox(value=s.roots.sample() or "", label="…or a folder or bucket path",
                         info="Read only inside: " + ", ".join(s.roots.describe()),
                         placeholder="a folder inside the roots", elem_id="input-path")
    with gr.Accordion("Target person (optional): keep only the images and frames that show them", open=False,
                      elem_id="person"):
        ui.person_name = gr.Textbox(label="Name", info="Their kohya folder and the trigger word of every caption",
                                    placeholder="e.g. ada", elem_id="person-name")
        ui.person_refs = gr.File(label="Reference photos of them (one clear face each)", file_count="multiple",
                                 file_types=["image"], elem_id="person-refs")
    gr.Markdown("### 2. Video sampling")
    ui.preset = gr.Radio(params.PRESET_CHOICES, value=preset0, label="Preset",
                         info="Fills the parameters below; each can then be changed.", elem_id="preset")
    ui.video = [slider(p, init[p.key], f"video-{p.key.split('.')[-1]}") for p in params.VIDEO_PARAMS]
    with gr.Accordion("3. Analysers and thresholds", open=False, elem_id="analysers"):
        ui.profile = gr.Dropdown([("default (auto)", "")] + list(PROFILES), value=profile0,
                                 label="Use profile", info=params.PROFILE_INFO, elem_id="profile")
        notes = skip_notes(profile0)
        ui.toggles = [gr.Checkbox(value=init[f"analyzers.{name}.enabled"], label=label,
                                  info=f"skipped in this profile: {notes[name]}" if name in notes else None,
                                  elem_id=f"analyser-{name}")
                      for name, label in params.ANALYSERS]
        ui.thresholds = [slider(p, init[p.key], "thr-" + p.key.replace(".", "-")) for p in params.THRESHOLDS]


def build_main_tab(ui: SimpleNamespace, session: Session, profile0: str, preset0: str) -> None:
    """Lay out the Main tab (inside ``gr.Tabs``); its components become attributes of ``ui``."""
    with gr.Tab("Main", id="main"):
        with gr.Row():
            with gr.Column(scale=3):
                _input_column(ui, session, profile0, preset0)
            with gr.Column(scale=2):
                with gr.Row():
                    ui.start = gr.Button("Start", variant="primary", elem_id="start")
                    ui.cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
                ui.status = gr.Markdown("No run started yet.", elem_id="run-status")
                ui.progress_df = gr.Dataframe(progress_frame([]), label="Progress per stage (live)",
                                              interactive=False, column_widths=STAGE_WIDTHS, max_height=640,
                                              elem_id="progress-table")
                ui.log = gr.Textbox(label="Run log (last lines; Ray's routine lines left out)", lines=12,
                                    max_lines=12, autoscroll=True, interactive=False, elem_id="run-log")
                ui.command = gr.Markdown("", elem_id="run-command")
        ui.timer = gr.Timer(1.0, active=False)


def wire_main(ui: SimpleNamespace, session: Session) -> None:
    """Presets and profiles fill the widgets; Start, the progress timer and Cancel."""
    def fill_preset(name: str) -> list[Any]:
        return params.preset_values(name)

    def fill_profile(name: str) -> list[Any]:
        return analyser_boxes(name)

    def on_start(files: list[str] | None, folder: str, person_name: str, person_refs: list[str] | None,
                 preset_name: str, profile_name: str, *vals: Any):
        values = {p.key: v for p, v in zip(params.VIDEO_PARAMS, vals[:len(params.VIDEO_PARAMS)])}
        rest = vals[len(params.VIDEO_PARAMS):]
        values.update({f"analyzers.{name}.enabled": v for (name, _), v in zip(params.ANALYSERS, rest)})
        values.update({p.key: v for p, v in zip(params.THRESHOLDS, rest[len(params.ANALYSERS):])})
        try:
            ctx = session.start(files, folder, preset_name, profile_name, values, (person_name, person_refs))
        except PathRefused as exc:
            return f"**Refused.** {exc}", progress_frame([]), "", "", gr.Timer(active=False)
        except UserError as exc:
            return f"**Not started.** {exc}", progress_frame([]), "", "", gr.Timer(active=False)
        argv = ["raycurate", *ctx.process.argv[3:]]
        return (f"**Starting** `{ctx.process.request.input_uri}` → `{ctx.process.request.out_dir}`",
                progress_frame([]), "", "The same run from a shell:\n```\n" + shlex.join(argv) + "\n```",
                gr.Timer(active=True))

    def on_tick():
        p = session.poll()
        return (p.status, progress_frame(p.rows), p.log, gr.Timer(active=p.running),
                gr.skip() if p.running else p.run_id)

    def on_cancel():
        return session.cancel()

    ui.preset.change(fill_preset, ui.preset, ui.video)
    ui.profile.change(fill_profile, ui.profile, ui.toggles)
    ui.start.click(on_start, [ui.uploads, ui.path, ui.person_name, ui.person_refs, ui.preset, ui.profile, *ui.video,
                              *ui.toggles, *ui.thresholds],
                   [ui.status, ui.progress_df, ui.log, ui.command, ui.timer])
    ui.timer.tick(on_tick, None, [ui.status, ui.progress_df, ui.log, ui.timer, ui.finished])
    ui.cancel.click(on_cancel, None, ui.status)


__all__ = ["STAGE_WIDTHS", "analyser_boxes", "build_main_tab", "progress_frame", "skip_notes", "slider",
           "wire_main"]
