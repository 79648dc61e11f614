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

Weights, as the "weights" column says:
  none      quality and content (no model);
  shipped   face (OpenCV Haar cascades in the opencv wheel), nsfw (NudeNet 320n in its wheel);
  real      emotion, pose, clip, insightface when they are present and verified in the models
            directory (--models-dir, else models.dir / $RAYCURATE_MODELS / ~/.cache/raycurate/models);
  random-weight real architecture   where they are absent: DeepFace's own EmotionModel,
            ultralytics yolo11n-pose.yaml, open_clip ViT-B-32, built in a temporary models
            directory (same FLOPs as the real models; outputs meaningless; pose's post-processing
            (NMS) depends on how many boxes pass ``conf``, so its speed may differ a little).
InsightFace's real SCRFD-10G / ArcFace-R50 are never built here: without their weights the row
says not measured, unless --insightface-stand-in measures the tests' tiny signature-compatible
nets (labelled "tiny stand-in nets, speed NOT representative").
Emotion gets the face boxes of the OpenCV face analyser (run once beforehand, not timed) on the
same images; a second row gives its rate per face crop. CLIP has two rows: ``clip`` with
``aesthetic: null`` (embedding + zero-shot prompts) and ``clip-aesthetic`` as configured (plus the
aesthetic head, which reads the embedding of its own paired CLIP: a second image pass).
On a GPU machine the device column says where a library really ran (DeepFace picks cuda by itself
whenever torch sees a GPU; onnxruntime without a CUDA provider stays on the CPU).

    .venv/bin/python scripts/bench_analyzers.py                      # all analysers, n=64, bs 1,8,32, CPU
    .venv/bin/python scripts/bench_analyzers.py --n 8                # a quick check
    .venv/bin/python scripts/bench_analyzers.py --analyzers pose,clip --batch-sizes 1,32 --threads 1
    .venv/bin/python scripts/bench_analyzers.py --repeat 3                # fastest of 3 passes (busy machine)
    .venv/bin/python scripts/bench_analyzers.py --analyzers insightface --insightface-stand-in
    .venv/bin/python scripts/bench_analyzers.py --device cuda        # CPU rows + cuda rows (GPU-capable ones)
    .venv/bin/python scripts/bench_analyzers.py --device cuda --cuda-only
"""
from __future__ import annotations

import argparse
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

ROOT = Path(__file__).resolve().parent.parent
IMAGE_DIRS = [ROOT / "tests" / "data" / "images" / d
              for d in ("faces", "face_recognition", "negatives", "neardup/base_images")]
ORDER = ("quality", "content", "face", "insightface", "emotion", "nsfw", "pose", "clip", "clip-aesthetic")
GPU_CAPABLE = frozenset({"insightface", "emotion", "nsfw", "pose", "clip", "clip-aesthetic"})

SHIPPED = {"face": "shipped (OpenCV Haar cascades, opencv wheel)", "nsfw": "shipped (NudeNet 320n, nudenet wheel)"}
RANDOM = "random-weight real architecture"
NOTES = {"clip": "aesthetic: null (embedding + zero-shot prompts)",
         "clip-aesthetic": "as configured: + aesthetic head, which reads its paired CLIP (a 2nd image pass)",
         "face": "detector: opencv_haar",
         "insightface": "detector: insightface; onnxruntime threads: InsightFace's default (not --threads)"}


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


def prepare(name: str, cfg: dict, user_root: Path, tmp_root: Path, args: argparse.Namespace
            ) -> tuple[str, dict, dict, str]:
    """(config section name, section, models section, weights label) for one row's analyser."""
    key = {"insightface": "face", "clip-aesthetic": "clip"}.get(name, name)
    section = dict(cfg["analyzers"][key])
    section["num_cpus"] = args.threads   # quality/face set cv2's threads from it
    models_cfg = {"dir": str(user_root), "profile": "auto"}
    tmp_cfg = {"dir": str(tmp_root), "profile": "auto"}
    if name in ("quality", "content"):
        return key, section, models_cfg, "none (no model)"
    if name == "face":
        section["detector"] = "opencv_haar"
        return key, section, models_cfg, SHIPPED["face"]
    if name == "nsfw":
        section["intra_op_threads"] = args.threads
        return key, section, models_cfg, SHIPPED["nsfw"]
    if name == "insightface":
        section["detector"] = "insightface"
        if model_ok("insightface-buffalo_l", user_root):
            return key, section, models_cfg, "real (buffalo_l)"
        if not args.insightface_stand_in:
            raise NotMeasured(f"insightface-buffalo_l is absent/unverified in {user_root}; the real SCRFD-10G / "
                              "ArcFace-R50 cannot be built offline (--insightface-stand-in measures the tests' "
                              "tiny nets, whose speed is NOT representative)")
        write_insightface(tmp_root)
        return key, section, tmp_cfg, ("tiny stand-in nets, speed NOT representative (the random detector "
                                       "reports up to max_faces faces, each run through the per-face nets)")
    if name == "emotion":
        if model_ok("deepface-emotion", user_root):
            os.environ["DEEPFACE_HOME"] = str(user_root / "deepface")
            return key, section, models_cfg, "real"
        write_emotion(tmp_root)
        return key, section, tmp_cfg, RANDOM + " (DeepFace EmotionModel)"
    if name == "pose":
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


def actual_device(a: Any) -> str:
    """Where the analyser really runs (a library may fall back to the CPU with a warning)."""
    try:
        if a.name == "nsfw":
            return a._detector.onnx_session.get_providers()[0].replace("ExecutionProvider", "").lower()
        if a.name == "face" and hasattr(a.detector, "provider"):
            return a.detector.provider.replace("ExecutionProvider", "").lower()
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
                ) -> tuple[float, int, int, str | None]:
    """(seconds, images, face crops, first error) of ceil(n / bs) full batches after one warm-up batch
    (the fastest of ``repeat`` passes)."""
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
    for _ in range(repeat):   # the fastest pass: the least disturbed by other work on the machine
        sync(device)
        start = time.perf_counter()
        outs = [a(b) for b in batches]
        sync(device)
        seconds = min(seconds, time.perf_counter() - start)
        first_error = first_error or next((e for e in map(error_of, outs) if e is not None), None)
    crops = sum(len(boxes or []) for b in batches for boxes in b.get("face_boxes", []))
    return seconds, bs * len(batches), crops, first_error


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
    section["device"] = device
    n = args.n
    row = Row(label, weights, device)
    crop_row = Row(f"{label} (per face crop)", weights, device, unit="crops/s") if "face_boxes" in context \
        and name == "emotion" else None
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
        crops_by_bs: dict[int, int] = {}
        for bs in args.batch_sizes:
            apply_threads(args.threads)
            seconds, images, crops, error = run_batches(a, pool, context, bs, n, row.device, args.repeat)
            if error is not None:
                row.failed = True
                notes.append(f"FAILED at bs={bs}: {error}")
                break
            row.rates[bs] = images / seconds
            if crop_row is not None:
                crops_by_bs[bs] = crops
                crop_row.rates[bs] = crops / seconds if crops else 0.0
            print(f"  {name:<12} {row.device:<6} bs={bs:<3} {images:>4} images {seconds:7.2f} s "
                  f"{images / seconds:8.2f} img/s", flush=True)
        if crop_row is not None:
            crop_row.setup_s = row.setup_s
            crop_row.device = row.device
            crop_row.note = ("face crops timed (OpenCV face boxes): "
                             + ", ".join(f"bs {bs}: {c} in {math.ceil(n / bs) * bs} images"
                                         for bs, c in crops_by_bs.items()))
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
    """The face analyser's columns for every image of the pool (OpenCV cascades), for emotion."""
    from raycurate.analyzers import build_analyzer

    section = {**cfg["analyzers"]["face"], "detector": "opencv_haar", "device": "cpu", "num_cpus": threads}
    face = build_analyzer("face", section, {"dir": str(root), "profile": "auto"})
    out = face({"image": pool, "error": [None] * len(pool)})
    return {k: v for k, v in out.items() if k.startswith("face_")}


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
             f"cv2 {cv2.getNumThreads()}, onnxruntime nsfw {threads})", f"torch {torch.__version__}"]
    if hasattr(os, "getloadavg"):
        parts.append("load average %.1f %.1f %.1f" % os.getloadavg())
    if "cuda" in devices:
        parts.append(f"GPU: {torch.cuda.get_device_name(0)}")
    return "; ".join(parts)


def table(rows: list[Row], batch_sizes: list[int]) -> str:
    head = ["analyser", "weights", "device"] + [f"bs {bs}" for bs in batch_sizes] + ["ms/img (best bs)",
                                                                                     "setup s", "notes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        rates = [f"{r.rates[bs]:.2f}" if bs in r.rates else "-" for bs in batch_sizes]
        best = max(r.rates.values()) if r.rates else 0.0
        ms = f"{1000.0 / best:.1f}" if best > 0 else "-"
        if r.unit != "img/s" and best > 0:
            ms += " per crop"
        setup = f"{r.setup_s:.2f}" if r.setup_s is not None else "-"
        lines.append("| " + " | ".join([r.analyzer, r.weights, r.device, *rates, ms, setup, r.note]) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--analyzers", default=",".join(ORDER), help=f"comma list of {', '.join(ORDER)}")
    ap.add_argument("--batch-sizes", default="1,8,32")
    ap.add_argument("--n", type=int, default=64, help="images per measurement (each batch size: ceil(n/bs) batches)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="cuda: also measure the GPU-capable analysers on cuda (when torch sees a GPU)")
    ap.add_argument("--cuda-only", action="store_true", help="with --device cuda: skip their CPU rows")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch / onnxruntime / cv2 threads")
    ap.add_argument("--repeat", type=int, default=1, help="timed passes per batch size; the fastest is kept")
    ap.add_argument("--max-side", type=int, default=1024, help="images are scaled to at most this longest side")
    ap.add_argument("--models-dir", default=None, help="where real weights are looked for (default: models.dir)")
    ap.add_argument("--insightface-stand-in", action="store_true",
                    help="measure InsightFace with the tests' tiny nets (speed NOT representative)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary models directory")
    args = ap.parse_args()
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    if args.n < 1 or args.repeat < 1 or args.threads < 1 or not args.batch_sizes or min(args.batch_sizes) < 1:
        ap.error("--n, --repeat, --threads and every batch size must be >= 1")
    names = [s.strip() for s in args.analyzers.split(",") if s.strip()]
    unknown = [s for s in names if s not in ORDER]
    if unknown:
        ap.error(f"unknown analysers {unknown}; known: {', '.join(ORDER)}")
    names = [s for s in ORDER if s in names]

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
        if "emotion" in names:
            context = face_context(cfg, user_root, pool, args.threads)
            print(f"face boxes for emotion (OpenCV cascades): {sum(map(len, context['face_boxes']))} faces "
                  f"in {len(pool)} images", flush=True)

        rows: list[Row] = []
        for name in names:
            for device in (devices if name in GPU_CAPABLE else ["cpu"]):
                t = time.perf_counter()
                rows.extend(measure(name, device, cfg, user_root, tmp_root, pool, context, args))
                print(f"  {name} on {device}: {time.perf_counter() - t:.1f} s in all", flush=True)

        unit = "img/s" if all(r.unit == "img/s" for r in rows) else "img/s (crops/s on the per-face-crop row)"
        print()
        print(f"{unit} by batch size; ms/img = 1000 / the best img/s; setup = model load, not timed")
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
