#!/usr/bin/env python
"""Images/s of the whole pipeline on local Ray vs a plain single-process loop.

Both sides run the same stage classes (configs/default.yaml) over the same images
and write the same rows to LanceDB; they are measured one after the other in
one process run, and the ratio is printed. Peak memory is the peak of the
machine's used memory above what it was before each side started (sampled
every 0.1 s), which counts every Ray worker; the single-process side also
reports its own peak RSS.

    .venv/bin/python scripts/bench_images.py            # ~200 images made from tests/data
    .venv/bin/python scripts/bench_images.py --n 400 --cpus 2

With ``--against KEY=VALUE`` (repeatable) the loop is skipped: the Ray pipeline runs
twice in one Ray session on the same images, first with that override, then with
the defaults (plus any ``--set``), and the ratio of the two is printed, e.g.

    .venv/bin/python scripts/bench_images.py --against analyzers.face.detector=opencv_haar
"""
from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "tests" / "data" / "images" / d for d in ("faces", "face_recognition", "negatives", "exif")]
SOURCES.append(ROOT / "tests" / "data" / "images" / "neardup" / "base_images")


def make_images(dest: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` distinct JPEGs: random crops, scales and flips of the real test images."""
    rng = random.Random(seed)
    bases = []
    for folder in SOURCES:
        for p in sorted(folder.iterdir()):
            try:
                im = ImageOps.exif_transpose(Image.open(p)).convert("RGB")
            except Exception:
                continue
            if min(im.size) >= 64:
                bases.append(im)
    out = []
    for i in range(n):
        im = bases[i % len(bases)]
        w, h = im.size
        cw, ch = int(w * rng.uniform(0.75, 1.0)), int(h * rng.uniform(0.75, 1.0))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        crop = im.crop((x, y, x + cw, y + ch))
        scale = rng.uniform(0.6, 1.2)
        crop = crop.resize((max(64, int(cw * scale)), max(64, int(ch * scale))))
        if rng.random() < 0.5:
            crop = ImageOps.mirror(crop)
        path = dest / f"img_{i:04d}.jpg"
        crop.save(path, "JPEG", quality=rng.randint(80, 95))
        out.append(path)
    return out


class MemoryPeak:
    """Peak of system used memory above its value at start, sampled in a thread."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> "MemoryPeak":
        self.base = psutil.virtual_memory().used
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, psutil.virtual_memory().used - self.base)
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def single_process(files, cfg, db_dir: str) -> int:
    """The same work in a plain loop, through the same classes the Ray stages wrap:
    read + decode, each analyser's actor class called directly, the same LanceDB sink."""
    import pyarrow as pa

    from raycurate.analyzers import active_analyzers
    from raycurate.config import typed
    from raycurate.engine.actors import actor_class
    from raycurate.engine.sink import LanceSink
    from raycurate.rows import read_and_decode
    from raycurate.store.schema import images_schema

    s = typed(cfg)
    stages = [actor_class(name, getattr(s.analyzers, name), s.models)()
              for name in active_analyzers(s.analyzers, s.models)[0]]
    dec = cfg["decode"]
    blocks = []
    for i in range(0, len(files), dec["batch_size"]):
        chunk = files[i:i + dec["batch_size"]]
        batch = read_and_decode(pa.table({"uri": [f.uri for f in chunk], "size": [f.size for f in chunk]}),
                                max_side=dec["max_side"], max_pixels=dec["max_pixels"])
        for stage in stages:
            batch = stage(batch)
        blocks.append(batch)
    return LanceSink(db_dir, images_schema(), "bench").write(blocks, None)


def compare(files, cfg, other, label: str, work: Path, cpus: int) -> int:
    """The Ray pipeline with ``other``, then with ``cfg``, in one Ray session; images/s, memory, ratio."""
    import ray

    from raycurate.engine import run_pipeline

    ray.init(num_cpus=cpus, include_dashboard=False, logging_level="ERROR")
    results = []
    for name, c in ((label, other), ("defaults", cfg)):
        with MemoryPeak() as mem:
            t = time.perf_counter()
            # one run id per pipeline: workers cache the crash ledger's handle by its name, which holds the run id
            result = run_pipeline(files, c, db_uri=str(work / f"db_{len(results)}"), run_id=f"bench{len(results)}")
            seconds = time.perf_counter() - t
        assert result.rows_written == len(files), (result.rows_written, len(files))
        results.append((name, seconds, mem.peak))
        print(f"  {name}: {seconds:.1f} s", flush=True)
    ray.shutdown()
    print()
    print(f"{'Ray pipeline (local)':<44}{'seconds':>9}{'images/s':>10}{'peak mem MB':>13}")
    for name, seconds, peak in results:
        print(f"{name:<44}{seconds:>9.2f}{len(files) / seconds:>10.2f}{peak / 1e6:>13.0f}")
    print(f"ratio defaults / {label}: {results[0][1] / results[1][1]:.2f}x images/s")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--cpus", type=int, default=os.cpu_count())
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (both sides)")
    ap.add_argument("--against", action="append", default=[], metavar="KEY=VALUE",
                    help="compare the Ray pipeline with these overrides against the defaults (no loop)")
    args = ap.parse_args()

    from raycurate.config import load_config, parse_set
    from raycurate.sources import list_media

    cfg = load_config(overrides=[parse_set(s) for s in args.set])
    work = Path(tempfile.mkdtemp(prefix="rc-bench-"))
    try:
        (work / "images").mkdir()
        make_images(work / "images", args.n)
        files = [f for f in list_media(str(work / "images")) if f.media_type == "image"]
        print(f"{len(files)} images, {sum(f.size for f in files) / 1e6:.1f} MB, {args.cpus} CPUs", flush=True)
        if args.against:
            other = load_config(overrides=[parse_set(s) for s in args.set + args.against])
            return compare(files, cfg, other, " ".join(args.against), work, args.cpus)

        with MemoryPeak() as mem_loop:
            t = time.perf_counter()
            n_loop = single_process(files, cfg, str(work / "db_loop"))
            loop_s = time.perf_counter() - t
        loop_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

        import ray

        from raycurate.engine import run_pipeline

        t = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="ERROR")
        init_s = time.perf_counter() - t
        with MemoryPeak() as mem_ray:
            t = time.perf_counter()
            result = run_pipeline(files, cfg, db_uri=str(work / "db_ray"), run_id="bench")
            ray_s = time.perf_counter() - t
        ray.shutdown()

        assert n_loop == result.rows_written == len(files), (n_loop, result.rows_written, len(files))
        print()
        print(f"{'':<26}{'seconds':>9}{'images/s':>10}{'peak mem MB':>13}")
        print(f"{'single-process loop':<26}{loop_s:>9.2f}{len(files) / loop_s:>10.2f}{mem_loop.peak / 1e6:>13.0f}"
              f"   (its own peak RSS {loop_rss:.0f} MB)")
        print(f"{'Ray pipeline (local)':<26}{ray_s:>9.2f}{len(files) / ray_s:>10.2f}{mem_ray.peak / 1e6:>13.0f}"
              f"   (+ ray.init {init_s:.1f} s, not counted)")
        print(f"ratio Ray / loop: {loop_s / ray_s:.2f}x images/s, {mem_ray.peak / max(1, mem_loop.peak):.1f}x memory")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
