"""The Gradio app: Main (input, presets, analysers, thresholds, Start / Cancel, live progress),
Results (gallery, filters, detail view, manual keep / reject), Search, Export and Plots.

Layout and wiring only: what each button does lives in :class:`raycurate.ui.session.Session`.
"""
from __future__ import annotations

import os
import shlex
import shutil
from typing import Any

import gradio as gr
import pandas as pd

from ..config import PROFILES
from . import exports, params, plots, progress
from .paths import PathRefused
from .results import MEDIA, SHOW, SORTS, Filters
from .session import Session, UserError

ALL_RUNS = "__all__"
STAGE_WIDTHS = ["40%", "14%", "14%", "17%", "15%"]
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


def _skip_notes(profile: str | None) -> dict[str, str]:
    from ..analyzers import active_analyzers
    from ..config import load_config

    try:
        return active_analyzers(load_config(profile=profile or None))[1]
    except Exception:   # a strict profile with missing weights: the run itself says it
        return {}


def _analyser_boxes(profile: str | None) -> list[Any]:
    values = params.defaults(profile=profile or None)
    notes = _skip_notes(profile)
    return [gr.Checkbox(value=values[f"analyzers.{name}.enabled"],
                        info=f"skipped in this profile: {notes[name]}" if name in notes else None)
            for name, _ in params.ANALYSERS]


def _slider(p: params.Param, value: Any, elem: str, **kw: Any) -> Any:
    if p.kind is bool:
        return gr.Checkbox(value=bool(value), label=p.label, info=p.info, elem_id=elem, **kw)
    return gr.Slider(p.minimum, p.maximum, value=value, step=p.step, label=p.label, info=p.info,
                     elem_id=elem, **kw)


def _run_choices(session: Session) -> list[tuple[str, str]]:
    runs = session.results.runs()
    return [("all runs", ALL_RUNS)] + [(f"{rid} ({n} rows)", rid) for rid, n in runs]


def _filters(run: str | None, show: str, media: list[str], min_faces: float, max_faces: float | None,
             max_nsfw: float, min_sharp: float, min_side: float, max_yaw: float | None, blurry: bool, dups: bool,
             where: str) -> Filters:
    """The Results filters from the components (in ``filter_inputs`` order); 0 (1 for NSFW, empty for the
    maximum faces and yaw) turns a gate off."""
    return Filters(run_id=None if run in (None, "", ALL_RUNS) else run, show=show or "kept",
                   media=tuple(media or ()), min_faces=int(min_faces or 0) or None,
                   max_faces=None if max_faces is None else int(max_faces),
                   max_nsfw_score=None if max_nsfw is None or max_nsfw >= 1 else float(max_nsfw),
                   min_sharpness=float(min_sharp or 0) or None, min_side=int(min_side or 0) or None,
                   max_abs_yaw=None if max_yaw is None else float(max_yaw), drop_blurry=bool(blurry),
                   include_duplicates=bool(dups), where=(where or "").strip() or None)


def _filter_values(f: Filters) -> list[Any]:
    """The components' values for ``f`` (the inverse of :func:`_filters`)."""
    return [f.run_id or ALL_RUNS, f.show, list(f.media), f.min_faces or 0, f.max_faces,
            1.0 if f.max_nsfw_score is None else f.max_nsfw_score, f.min_sharpness or 0, f.min_side or 0,
            f.max_abs_yaw, f.drop_blurry, f.include_duplicates, f.where or ""]


def _count_text(f: Filters, n: int, shown: int) -> str:
    scope = f"of run `{f.run_id}`" if f.run_id else "in all runs"
    more = f" · showing the first {shown}" if n > shown else ""
    return f"**{n}** {f.show} rows {scope}{more}"


def _progress_frame(rows: list[list[Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=progress.COLUMNS)


def build_app(session: Session) -> gr.Blocks:
    s = session.settings
    profile0 = s.profile or default_profile()
    preset0 = "custom"
    init = params.defaults(preset=preset0, profile=profile0)
    # uploads land in gradio's cache (the work folder's gradio-cache/): files older than a day are removed
    with gr.Blocks(title="raycurate", analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        gr.Markdown(_intro(session), elem_id="intro")
        db_md = gr.Markdown(session.db_summary(), elem_id="db-summary")
        finished = gr.State(None)
        keys_state = gr.State([])
        selected = gr.State(None)
        with gr.Tabs(selected="main") as tabs:
            # -- Main ------------------------------------------------------------------------------
            with gr.Tab("Main", id="main"):
                with gr.Row():
                    with gr.Column(scale=3):
                        gr.Markdown("### 1. Input")
                        uploads = gr.File(label=f"Upload images and videos (up to {s.max_upload_mb} MB each)",
                                          file_count="multiple", file_types=["image", "video"], elem_id="uploads")
                        path = gr.Textbox(value=s.roots.sample() or "", label="…or a folder or bucket path",
                                          info="Read only inside: " + ", ".join(s.roots.describe()),
                                          placeholder="a folder inside the roots", elem_id="input-path")
                        gr.Markdown("### 2. Video sampling")
                        preset = gr.Radio(params.PRESET_CHOICES, value=preset0, label="Preset",
                                          info="Fills the parameters below; each can then be changed.",
                                          elem_id="preset")
                        video = [_slider(p, init[p.key], f"video-{p.key.split('.')[-1]}") for p in params.VIDEO_PARAMS]
                        with gr.Accordion("3. Analysers and thresholds", open=False, elem_id="analysers"):
                            profile = gr.Dropdown([("default (auto)", "")] + list(PROFILES), value=profile0,
                                                  label="Use profile", info=params.PROFILE_INFO, elem_id="profile")
                            notes = _skip_notes(profile0)
                            toggles = [gr.Checkbox(value=init[f"analyzers.{name}.enabled"], label=label,
                                                   info=f"skipped in this profile: {notes[name]}" if name in notes
                                                   else None, elem_id=f"analyser-{name}")
                                       for name, label in params.ANALYSERS]
                            thresholds = [_slider(p, init[p.key], "thr-" + p.key.replace(".", "-"))
                                          for p in params.THRESHOLDS]
                    with gr.Column(scale=2):
                        with gr.Row():
                            start = gr.Button("Start", variant="primary", elem_id="start")
                            cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
                        status = gr.Markdown("No run started yet.", elem_id="run-status")
                        progress_df = gr.Dataframe(_progress_frame([]), label="Progress per stage (live)",
                                                   interactive=False, column_widths=STAGE_WIDTHS, max_height=640,
                                                   elem_id="progress-table")
                        log = gr.Textbox(label="Run log (last lines; Ray's routine lines left out)", lines=12,
                                         max_lines=12, autoscroll=True, interactive=False, elem_id="run-log")
                        command = gr.Markdown("", elem_id="run-command")
                timer = gr.Timer(1.0, active=False)
            # -- Results ---------------------------------------------------------------------------
            with gr.Tab("Results", id="results"):
                with gr.Row():
                    with gr.Column(scale=1, min_width=260):
                        run_dd = gr.Dropdown(_run_choices(session), value=ALL_RUNS, label="Run", elem_id="f-run")
                        show = gr.Radio(list(SHOW), value="kept", label="Show", elem_id="f-show",
                                        info="kept: what a run keeps; dropped: the rest; rejected: by hand")
                        media = gr.CheckboxGroup([("photos", MEDIA[0]), ("video frames", MEDIA[1])], value=list(MEDIA),
                                                 label="Media", elem_id="f-media")
                        f0 = session.default_filters(None)
                        min_faces = gr.Slider(0, 10, value=f0.min_faces or 0, step=1, label="Minimum faces",
                                              info="0: no face gate", elem_id="f-min-faces")
                        max_faces = gr.Number(value=f0.max_faces, precision=0, minimum=0, label="Maximum faces",
                                              info="empty: no gate", elem_id="f-max-faces")
                        max_nsfw = gr.Slider(0, 1, value=f0.max_nsfw_score if f0.max_nsfw_score is not None else 1,
                                             step=0.01, label="Maximum NSFW score", info="1: no NSFW gate",
                                             elem_id="f-max-nsfw")
                        min_sharp = gr.Slider(0, 3000, value=f0.min_sharpness or 0, step=10, label="Minimum sharpness",
                                              info="variance of the Laplacian; 0: no gate", elem_id="f-min-sharp")
                        min_side = gr.Slider(0, 2048, value=f0.min_side or 0, step=16, label="Minimum side (px)",
                                             elem_id="f-min-side")
                        max_yaw = gr.Number(value=f0.max_abs_yaw, minimum=0, maximum=180,
                                            label="Maximum head yaw (degrees, either side)",
                                            info="the largest face; needs InsightFace's head pose; empty: no gate",
                                            elem_id="f-max-yaw")
                        blurry = gr.Checkbox(value=f0.drop_blurry, label="Drop blurry", elem_id="f-blurry")
                        dups = gr.Checkbox(value=False, label="Include near / exact duplicates", elem_id="f-dups")
                        sort = gr.Dropdown(list(SORTS), value="best video score first", label="Sort",
                                           elem_id="f-sort")
                        where = gr.Textbox(value=f0.where or "", label="Extra SQL over stored columns",
                                           elem_id="f-where",
                                           placeholder="e.g. quality_brightness > 0.3 AND width >= 512")
                        refresh = gr.Button("Refresh", elem_id="f-refresh")
                    with gr.Column(scale=3):
                        count_md = gr.Markdown("", elem_id="results-count")
                        gallery = gr.Gallery(label="Kept images and frames (click one for its details)", columns=6,
                                             height=420, allow_preview=False, object_fit="cover",
                                             elem_id="results-gallery")
                        with gr.Row(elem_id="detail"):
                            detail_img = gr.Image(label="Detail", interactive=False, height=460, elem_id="detail-image")
                            with gr.Column():
                                lineage_md = gr.Markdown("Click a picture in the gallery.", elem_id="detail-lineage")
                                gr.Markdown(_legend(), elem_classes=["rc-help"])
                                with gr.Row():
                                    keep_btn = gr.Button("Keep", elem_id="label-keep")
                                    reject_btn = gr.Button("Reject", variant="stop", elem_id="label-reject")
                                    clear_btn = gr.Button("Clear label", elem_id="label-clear")
                                    similar_btn = gr.Button("Find similar frames", variant="primary",
                                                            elem_id="find-similar")
                                label_md = gr.Markdown("", elem_id="label-status")
                        detail_json = gr.JSON(label="Every stored attribute", elem_id="detail-json")
            # -- Search ----------------------------------------------------------------------------
            with gr.Tab("Search", id="search"):
                with gr.Row():
                    with gr.Column(scale=1):
                        search_img = gr.Image(type="filepath", label="Query image (upload or paste)",
                                              sources=["upload", "clipboard"], elem_id="search-image")
                        search_id = gr.Textbox(label="…or a stored row's id (Find similar in Results fills it)",
                                               elem_id="search-id")
                        k = gr.Slider(1, 48, value=12, step=1, label="Results (k)", elem_id="search-k")
                        restrict = gr.Checkbox(value=False, label="Only rows the Results filters keep",
                                               elem_id="search-restrict")
                        search_btn = gr.Button("Search similar", variant="primary", elem_id="search-go")
                        text_ok, text_msg = session.text_search()
                        text_info = gr.Markdown(text_msg, elem_id="search-text-info")
                        search_text = gr.Textbox(label="Text query (CLIP)", interactive=text_ok,
                                                 placeholder="a person in a red coat, full body", elem_id="search-text")
                        text_btn = gr.Button("Search by text", interactive=text_ok, elem_id="search-text-go")
                    with gr.Column(scale=3):
                        search_msg = gr.Markdown("", elem_id="search-status")
                        search_gallery = gr.Gallery(label="Nearest frames (click one to search from it)",
                                                    columns=6, height=520, allow_preview=False,
                                                    elem_id="search-gallery")
                        hit_ids = gr.State([])
            # -- Export ----------------------------------------------------------------------------
            with gr.Tab("Export", id="export") as export_tab:
                gr.Markdown("Exports the rows the **Results** tab keeps with its current run and filters "
                            "(manual keep / reject applied). Written into the server's work folder, then zipped.")
                export_info = gr.Markdown("", elem_id="export-rows")
                formats = gr.CheckboxGroup([(label, key) for key, label in exports.FORMATS],
                                           value=exports.DEFAULT_FORMATS, label="Formats", elem_id="export-formats")
                with gr.Row():
                    kohya_name = gr.Textbox("person", label="kohya class name", elem_id="export-name")
                    trigger = gr.Textbox("", label="Trigger word (caption start; empty: the class name)",
                                         elem_id="export-trigger")
                    repeats = gr.Slider(1, 100, value=10, step=1, label="Repeats per epoch", elem_id="export-repeats")
                export_btn = gr.Button("Export and zip", variant="primary", elem_id="export-go")
                export_msg = gr.Markdown("", elem_id="export-status")
                export_file = gr.File(label="Download", interactive=False, elem_id="export-file")
            # -- Plots -----------------------------------------------------------------------------
            with gr.Tab("Plots", id="plots") as plots_tab:
                gr.Markdown("For the run chosen in **Results**; its filters split the histograms into "
                            "kept (green) and not kept (grey).")
                plots_btn = gr.Button("Refresh plots", elem_id="plots-refresh")
                funnel_plot = gr.BarPlot(None, x="stage", y="count", color="measure", color_map=plots.FUNNEL_COLOURS,
                                         height=360,
                                         x_label_angle=-30, label="Per-stage funnel",
                                         elem_id="funnel-plot")
                funnel_df = gr.Dataframe(_progress_frame([]), label="Funnel", interactive=False, max_height=640,
                                         column_widths=STAGE_WIDTHS, elem_id="funnel-table")
                hist_plots = []
                for i in range(0, len(plots.SCORES), 2):
                    with gr.Row():
                        for column, title in plots.SCORES[i:i + 2]:
                            hist_plots.append(gr.BarPlot(None, x="bin", y="count", color="rows",
                                                         color_map=plots.HIST_COLOURS,
                                                         label=title, height=260, x_label_angle=-45,
                                                         elem_id=f"hist-{column}"))

        filter_inputs = [run_dd, show, media, min_faces, max_faces, max_nsfw, min_sharp, min_side, max_yaw, blurry,
                         dups, where]

        # -- handlers -------------------------------------------------------------------------------
        def fill_preset(name: str) -> list[Any]:
            return params.preset_values(name)

        def fill_profile(name: str) -> list[Any]:
            return _analyser_boxes(name)

        def on_start(files: list[str] | None, folder: str, preset_name: str, profile_name: str, *vals: Any):
            values = {p.key: v for p, v in zip(params.VIDEO_PARAMS, vals[:len(params.VIDEO_PARAMS)])}
            rest = vals[len(params.VIDEO_PARAMS):]
            values.update({f"analyzers.{name}.enabled": v for (name, _), v in zip(params.ANALYSERS, rest)})
            values.update({p.key: v for p, v in zip(params.THRESHOLDS, rest[len(params.ANALYSERS):])})
            try:
                ctx = session.start(files, folder, preset_name, profile_name, values)
            except PathRefused as exc:
                return f"**Refused.** {exc}", _progress_frame([]), "", "", gr.Timer(active=False)
            except UserError as exc:
                return f"**Not started.** {exc}", _progress_frame([]), "", "", gr.Timer(active=False)
            argv = ["raycurate", *ctx.process.argv[3:]]
            return (f"**Starting** `{ctx.process.request.input_uri}` → `{ctx.process.request.out_dir}`",
                    _progress_frame([]), "", "The same run from a shell:\n```\n" + shlex.join(argv) + "\n```",
                    gr.Timer(active=True))

        def on_tick():
            p = session.poll()
            return (p.status, _progress_frame(p.rows), p.log, gr.Timer(active=p.running),
                    gr.skip() if p.running else p.run_id)

        def on_cancel():
            return session.cancel()

        def gallery_update(f: Filters, sort_by: str):
            if session.results.table() is None:
                return [], "No results yet: start a run in **Main**.", []
            try:
                items, keys, n = session.gallery(f, sort_by)
            except Exception as exc:   # a bad extra SQL: say so, keep the page usable
                return [], f"**Query refused by LanceDB:** `{str(exc).splitlines()[0][:300]}`", []
            return items, _count_text(f, n, len(items)), keys

        def on_filters(*vals: Any):
            *fvals, sort_by = vals
            return gallery_update(_filters(*fvals), sort_by)

        def on_run_done(run_id: str | None):
            """A run ended: list it, select it, set its filters, show its gallery."""
            f = session.default_filters(run_id) if run_id else session.default_filters(None)
            items, count, keys = gallery_update(f, "best video score first")
            ok, msg = session.text_search()
            return [session.db_summary(), gr.Dropdown(choices=_run_choices(session), value=f.run_id or ALL_RUNS),
                    *_filter_values(f)[1:], items, count, keys, msg, gr.Textbox(interactive=ok),
                    gr.Button(interactive=ok)]

        def on_load():
            runs = session.results.runs()
            out = on_run_done(runs[0][0] if runs else None)
            if session.run is None:   # leave the status alone: a click may already have answered
                return out + [gr.skip(), gr.Timer(active=False)]
            return out + [session.poll().status, gr.Timer(active=session.runner.busy())]

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
                    return ("Pick a picture first.", *gallery_update(_filters(*fvals), sort_by), gr.skip())
                n = session.results.set_label(key[0], label)
                what = f"**{label}**" if label else "cleared"
                row = session.results.row(*key) or {}
                note = (" (it is a duplicate: its keeper stands for it unless duplicates are included)"
                        if label == "keep" and row.get("duplicate_of") else "")
                return (f"Manual label {what} on {n} row(s) of this content{note}.",
                        *gallery_update(_filters(*fvals), sort_by), row and _jsonable(row))
            return on_label

        def on_similar(key: Any, kk: float, only_kept: bool, *fvals: Any):
            if not key:
                return gr.skip(), gr.skip(), gr.skip(), [], "Pick a picture in Results first.", []
            return (gr.Tabs(selected="search"), None, key[0],
                    *_search(content_id=key[0], k=kk, only_kept=only_kept, fvals=fvals))

        def on_pick_hit(evt: gr.SelectData, ids: list[str], kk: float, only_kept: bool, *fvals: Any):
            if not ids or evt.index is None or evt.index >= len(ids):
                return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return None, ids[evt.index], *_search(content_id=ids[evt.index], k=kk, only_kept=only_kept, fvals=fvals)

        def _search(*, k: float, only_kept: bool, fvals: Any, **query: Any):
            where = session.results.where(_filters(*fvals).with_(show="kept")) if only_kept else None
            try:
                return session.search(k=int(k), where=where, **query)
            except UserError as exc:
                return [], f"**Search refused.** {exc}", []

        def on_search(image: str | None, content_id: str, kk: float, only_kept: bool, *fvals: Any):
            if image:
                return _search(image=image, k=kk, only_kept=only_kept, fvals=fvals)
            return _search(content_id=content_id, k=kk, only_kept=only_kept, fvals=fvals)

        def on_text(text: str, kk: float, only_kept: bool, *fvals: Any):
            return _search(text=text, k=kk, only_kept=only_kept, fvals=fvals)

        def on_export(fmts: list[str], name: str, trig: str, reps: float, *fvals: Any):
            f = _filters(*fvals).with_(show="kept")
            if session.results.table() is None:
                return "Nothing to export yet: run a curation first.", None
            try:
                cfg = exports.export_config(fmts or [], name=name, trigger=trig, repeats=int(reps),
                                            include_duplicates=f.include_duplicates)
                done = exports.export_zip(s.db, s.folder("exports"), session.results.where(f), cfg)
            except Exception as exc:
                return f"**Export failed.** {exc}", None
            size = os.path.getsize(done.zip_path) / 1e6
            return (f"{done.summary} → `{done.folder}` · zip {size:.1f} MB", done.zip_path)

        def on_export_info(*fvals: Any):
            f = _filters(*fvals).with_(show="kept")
            if session.results.table() is None:
                return "Nothing to export yet: run a curation first."
            try:
                n = session.results.count(f)
            except Exception as exc:
                return f"**Query refused by LanceDB:** `{str(exc).splitlines()[0][:300]}`"
            scope = f"run `{f.run_id}`" if f.run_id else "all runs"
            return f"**{n}** rows to export ({scope}, the Results filters)."

        def on_plots(*fvals: Any):
            f = _filters(*fvals)
            run_id = f.run_id or (session.results.runs() or [(None, 0)])[0][0]
            rows = session.funnel_rows(run_id)
            frame, order = plots.funnel(rows)
            # a plot takes its value with x, y and colour again (gradio 6 drops a sort given alone)
            out = [gr.BarPlot(frame if len(frame) else None, x="stage", y="count", color="measure", sort=order,
                              color_map=plots.FUNNEL_COLOURS,
                              label=f"Per-stage funnel of run {run_id or '-'} (green kept, grey dropped, red errors, "
                                    "light grey pending; bar height = the stage's input)"),
                   _progress_frame(rows)]
            for title, hist, bins in session.histograms(f.with_(run_id=run_id)):
                out.append(gr.BarPlot(hist if len(hist) else None, x="bin", y="count", color="rows", sort=bins,
                                      color_map=plots.HIST_COLOURS,
                                      label=title if len(hist) else f"{title}: no values"))
            return out

        # -- wiring -----------------------------------------------------------------------------------
        preset.change(fill_preset, preset, video)
        profile.change(fill_profile, profile, toggles)
        start.click(on_start, [uploads, path, preset, profile, *video, *toggles, *thresholds],
                    [status, progress_df, log, command, timer])
        timer.tick(on_tick, None, [status, progress_df, log, timer, finished])
        cancel.click(on_cancel, None, status)
        done_outputs = [db_md, run_dd, *filter_inputs[1:], gallery, count_md, keys_state, text_info, search_text,
                        text_btn]
        finished.change(on_run_done, finished, done_outputs)
        demo.load(on_load, None, done_outputs + [status, timer])
        for comp in filter_inputs + [sort]:
            comp.change(on_filters, filter_inputs + [sort], [gallery, count_md, keys_state],
                        trigger_mode="always_last")
        refresh.click(on_filters, filter_inputs + [sort], [gallery, count_md, keys_state])
        gallery.select(on_select, keys_state, [detail_img, lineage_md, detail_json, selected, label_md])
        for btn, lab in ((keep_btn, "keep"), (reject_btn, "reject"), (clear_btn, None)):
            btn.click(labeller(lab), [selected, *filter_inputs, sort],
                      [label_md, gallery, count_md, keys_state, detail_json])
        hits_out = [search_gallery, search_msg, hit_ids]
        similar_btn.click(on_similar, [selected, k, restrict, *filter_inputs], [tabs, search_img, search_id, *hits_out])
        search_gallery.select(on_pick_hit, [hit_ids, k, restrict, *filter_inputs], [search_img, search_id, *hits_out])
        search_img.upload(lambda: "", None, search_id)
        search_btn.click(on_search, [search_img, search_id, k, restrict, *filter_inputs], hits_out)
        text_btn.click(on_text, [search_text, k, restrict, *filter_inputs], hits_out)
        export_tab.select(on_export_info, filter_inputs, export_info)
        export_btn.click(on_export, [formats, kohya_name, trigger, repeats, *filter_inputs], [export_msg, export_file])
        plot_outputs = [funnel_plot, funnel_df, *hist_plots]
        plots_btn.click(on_plots, filter_inputs, plot_outputs)
        plots_tab.select(on_plots, filter_inputs, plot_outputs)
    return demo


def _legend() -> str:
    from .draw import LEGEND

    return LEGEND


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    from .results import jsonable

    return jsonable(row)


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
