"""The engine: everything that runs on Ray, and the only package of raycurate that imports ray.

:mod:`.cluster` starts or joins Ray, checks the model weights on every node and sizes the actor pools;
:mod:`.ledger` is the crash ledger on Ray; :mod:`.actors` the analyser and stage actors; :mod:`.sink` the
LanceDB sink; :mod:`.progress` the live progress (a counter actor the workers report to, polled by the
driver); :mod:`.graph` the run's one Ray Data graph, made of :mod:`.images` (the image analysis) and
:mod:`.videos` (the video cascade);
:mod:`.jobs` ``raycurate submit``. What needs no Ray lives outside: :mod:`raycurate.rows`,
:mod:`raycurate.video.segments`, :mod:`raycurate.video.finisher` (Stage 3 per video),
:mod:`raycurate.video.stage3` (re-selection on stored scores, a resumed run's stored winners),
:mod:`raycurate.video.frames`.
"""
from .cluster import ensure_models_on_nodes, init_ray, sized_settings
from .graph import GraphResult, photo_items, run_graph
from .images import PipelineResult, run_pipeline
from .videos import VideoPipelineResult, run_video_pipeline

__all__ = ["GraphResult", "PipelineResult", "VideoPipelineResult", "ensure_models_on_nodes", "init_ray",
           "photo_items", "run_graph", "run_pipeline", "run_video_pipeline", "sized_settings"]
