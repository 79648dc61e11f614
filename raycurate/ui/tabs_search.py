"""The Search tab: nearest frames to an uploaded picture, a stored row or a CLIP text query; nearest faces
to an uploaded face ("Find this face") and an identity's faces; and Results' "Find similar frames", which
opens it."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gradio as gr

from .face_hits import face_search
from .session import Session, UserError
from .tabs_results import filters_from


def build_search_tab(ui: SimpleNamespace, session: Session) -> None:
    """Lay out the Search tab (inside ``gr.Tabs``); its components become attributes of ``ui``."""
    with gr.Tab("Search", id="search"):
        with gr.Row():
            with gr.Column(scale=1):
                ui.search_img = gr.Image(type="filepath", label="Query image (upload or paste)",
                                         sources=["upload", "clipboard"], elem_id="search-image")
                ui.search_id = gr.Textbox(label="…or a stored row's id (Find similar in Results fills it)",
                                          elem_id="search-id")
                ui.k = gr.Slider(1, 48, value=12, step=1, label="Results (k)", elem_id="search-k")
                ui.restrict = gr.Checkbox(value=False, label="Only rows the Results filters keep",
                                          elem_id="search-restrict")
                ui.search_btn = gr.Button("Search similar", variant="primary", elem_id="search-go")
                text_ok, text_msg = session.text_search()
                ui.text_info = gr.Markdown(text_msg, elem_id="search-text-info")
                ui.search_text = gr.Textbox(label="Text query (CLIP)", interactive=text_ok,
                                            placeholder="a person in a red coat, full body", elem_id="search-text")
                ui.text_btn = gr.Button("Search by text", interactive=text_ok, elem_id="search-text-go")
                ui.face_img = gr.Image(type="filepath", label="Find this face (its largest face; faces table)",
                                       sources=["upload", "clipboard"], elem_id="search-face")
                ui.identity_id = gr.Textbox(label="…or an identity id (its faces, sharpest first)",
                                            placeholder="id-000001", elem_id="search-identity")
                ui.face_btn = gr.Button("Find this face", elem_id="search-face-go")
            with gr.Column(scale=3):
                ui.search_msg = gr.Markdown("", elem_id="search-status")
                ui.search_gallery = gr.Gallery(label="Nearest frames (click one to search from it)",
                                               columns=6, height=520, allow_preview=False,
                                               elem_id="search-gallery")
                ui.hit_ids = gr.State([])


def run_search(session: Session, *, k: float, only_kept: bool, fvals: Any, **query: Any):
    """The hits' gallery, a status line and the hits' ids; ``only_kept`` applies the Results filters."""
    where = session.results.where(filters_from(*fvals).with_(show="kept")) if only_kept else None
    try:
        return session.search(k=int(k), where=where, **query)
    except UserError as exc:
        return [], f"**Search refused.** {exc}", []


def run_face_search(session: Session, *, k: float, face: str | None = None, identity: str | None = None):
    """The face hits' gallery, a status line and the hits' image ids (the Results filters do not apply)."""
    try:
        return face_search(session, face=face, identity=identity, k=int(k))
    except UserError as exc:
        return [], f"**Face search refused.** {exc}", []


def wire_search(ui: SimpleNamespace, session: Session) -> None:
    """Find similar (from Results), a click on a hit, Search similar and Search by text."""
    def on_similar(key: Any, kk: float, only_kept: bool, *fvals: Any):
        if not key:
            return gr.skip(), gr.skip(), gr.skip(), [], "Pick a picture in Results first.", []
        return (gr.Tabs(selected="search"), None, key[0],
                *run_search(session, content_id=key[0], k=kk, only_kept=only_kept, fvals=fvals))

    def on_pick_hit(evt: gr.SelectData, ids: list[str], kk: float, only_kept: bool, *fvals: Any):
        if not ids or evt.index is None or evt.index >= len(ids) or not ids[evt.index]:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return None, ids[evt.index], *run_search(session, content_id=ids[evt.index], k=kk, only_kept=only_kept,
                                                 fvals=fvals)

    def on_search(image: str | None, content_id: str, kk: float, only_kept: bool, *fvals: Any):
        if image:
            return run_search(session, image=image, k=kk, only_kept=only_kept, fvals=fvals)
        return run_search(session, content_id=content_id, k=kk, only_kept=only_kept, fvals=fvals)

    def on_face(face: str | None, identity: str, kk: float):
        if face:
            return run_face_search(session, face=face, k=kk)
        return run_face_search(session, identity=identity, k=kk)

    def on_text(text: str, kk: float, only_kept: bool, *fvals: Any):
        return run_search(session, text=text, k=kk, only_kept=only_kept, fvals=fvals)

    inputs = ui.filter_inputs
    hits_out = [ui.search_gallery, ui.search_msg, ui.hit_ids]
    ui.similar_btn.click(on_similar, [ui.selected, ui.k, ui.restrict, *inputs],
                         [ui.tabs, ui.search_img, ui.search_id, *hits_out])
    ui.search_gallery.select(on_pick_hit, [ui.hit_ids, ui.k, ui.restrict, *inputs],
                             [ui.search_img, ui.search_id, *hits_out])
    ui.search_img.upload(lambda: "", None, ui.search_id)
    ui.search_btn.click(on_search, [ui.search_img, ui.search_id, ui.k, ui.restrict, *inputs], hits_out)
    ui.text_btn.click(on_text, [ui.search_text, ui.k, ui.restrict, *inputs], hits_out)
    ui.face_img.upload(lambda: "", None, ui.identity_id)
    ui.face_btn.click(on_face, [ui.face_img, ui.identity_id, ui.k], hits_out)


__all__ = ["build_search_tab", "run_face_search", "run_search", "wire_search"]
