#!/usr/bin/env python
"""Images/s and peak memory of the whole pipeline on local Ray vs a plain single-process loop.

Both sides run the same stage classes (configs/default.yaml) over the same images and write the same rows
to LanceDB. Each side runs in a process of its own, one after the other, and is measured as a whole process
tree (scripts/proc_memory.py: Ray's raylet, GCS, agents and workers included): peak summed RSS, PSS (shared
pages split between the processes that map them) and USS (private memory); the Ray side's processes at its
RSS peak are listed. The Ray side starts Ray the way ``raycurate run`` does (engine.cluster.start_ray with
the config's ``ray`` section, ``ray.num_cpus`` set to ``--cpus``); its time does not count the start.
Finally the two tables are compared: every analyser's columns must hold the same values on both sides.

    .venv/bin/python scripts/bench_images.py            # ~200 images made from tests/data
    .venv/bin/python scripts/bench_images.py --n 312 --cpus 2

With ``--against KEY=VALUE`` (repeatable) the loop is skipped: the Ray pipeline runs
twice in one Ray session on the same images, first with that override, then with
the defaults (plus any ``--set``), and the ratio of the two is printed, e.g.

    .venv/bin/python scripts/bench_images.py --against analyzers.face.detector=opencv_haar
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT)]   # this checkout's raycurate, not an installed one
from proc_memory import TreePeak  # noqa: E402
# columns that differ between two runs of the same rows by design
VOLATILE = ("uri", "run_id", "analyzed_at")   # (rows are matched by file name)
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


def single_process(files, settings, db_dir: str) -> int:
    """The same work in a plain loop, through the same classes the Ray stages wrap:
    read + decode, each analyser's actor class called directly, the same LanceDB sink, which stores the rows
    ``decode.rows_per_write`` at a time as they come, without their pixels, as a run does (the loop's memory
    does not grow with the number of images)."""
    import pyarrow as pa

    from raycurate.analyzers import active_analyzers
    from raycurate.engine.actors import actor_class, without_pixels
    from raycurate.engine.sink import LanceSink
    from raycurate.rows import read_and_decode
    from raycurate.schemas import images_schema

    s = settings
    stages = [actor_class(name, getattr(s.analyzers, name), s.models)()
              for name in active_analyzers(s.analyzers, s.models)[0]]
    dec = s.decode
    sink = LanceSink(db_dir, images_schema(), "bench")
    written, blocks, pending = 0, [], 0
    for i in range(0, len(files), dec.batch_size):
        chunk = files[i:i + dec.batch_size]
        batch = read_and_decode(pa.table({"uri": [f.uri for f in chunk], "size": [f.size for f in chunk]}),
                                max_side=dec.max_side, max_pixels=dec.max_pixels)
        for stage in stages:
            batch = stage(batch)
        blocks.append(without_pixels(batch))
        pending += batch.num_rows
        if pending >= dec.rows_per_write:
            written += sink.write(blocks, None)
            blocks, pending = [], 0
    return written + (sink.write(blocks, None) if blocks else 0)


def workers_use_this_checkout() -> None:
    """Refuse to measure another raycurate: Ray's workers find it from their working directory (the driver's),
    where an installed one may come first."""
    import ray

    where = ray.get(ray.remote(num_cpus=0)(lambda: __import__("raycurate").__file__).remote())
    if not where.startswith(str(ROOT)):
        raise SystemExit(f"Ray's workers import {where}, not this checkout's raycurate: run from {ROOT}")


def ray_side(files, settings, db_dir: str, cpus: int) -> tuple[int, float]:
    """The pipeline on a local Ray started as ``raycurate run`` starts it (its pools sized once, as a run sizes
    them); rows written and Ray's start (s)."""
    from dataclasses import replace

    import ray

    from raycurate.engine import run_pipeline, sized_settings
    from raycurate.engine.cluster import start_ray

    settings = replace(settings, ray=replace(settings.ray, num_cpus=cpus))
    t = time.perf_counter()
    start_ray(settings.ray)
    init_s = time.perf_counter() - t
    workers_use_this_checkout()
    result = run_pipeline(files, sized_settings(settings)[0], db_uri=db_dir, run_id="bench")
    ray.shutdown()
    return result.rows_written, init_s


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-5) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def differences(db_a: str, db_b: str) -> dict[str, int]:
    """Rows whose value differs, per column, between two image tables of the same files (timings, run ids and
    times left out; floats within 1e-4)."""
    from raycurate.store.table import open_images_table

    def rows(db: str) -> dict[str, dict]:
        return {r["uri"].rsplit("/", 1)[-1]: r for r in open_images_table(db).to_arrow().to_pylist()}

    a, b = rows(db_a), rows(db_b)
    out: dict[str, int] = {}
    if a.keys() != b.keys():
        out["(rows)"] = len(a.keys() ^ b.keys())
    for key in a.keys() & b.keys():
        for col, value in a[key].items():
            if col in VOLATILE or col.endswith("_ms") or _same(value, b[key].get(col)):
                continue
            out[col] = out.get(col, 0) + 1
    return out


def side_main(args, settings) -> int:
    """One side in this process, over the images already in ``--images``; prints its result as JSON."""
    from raycurate.sources import list_media

    files = [f for f in list_media(args.images) if f.media_type == "image"]
    t = time.perf_counter()
    if args.side == "loop":
        rows, init_s = single_process(files, settings, args.db), 0.0
    else:
        rows, init_s = ray_side(files, settings, args.db, args.cpus)
    seconds = time.perf_counter() - t - init_s
    print("RESULT " + json.dumps({"rows": rows, "seconds": seconds, "init_s": init_s}), flush=True)
    return 0


def side_process(side: str, images: Path, db: Path, cpus: int, sets=()) -> tuple[dict, TreePeak, float]:
    """``side`` (``loop`` or ``ray``) over the images in ``images``, in a process of its own measured as a whole
    process tree: its RESULT (rows, seconds, init_s: the side's own timing), its :class:`TreePeak` and its
    wall time from the process's start to its exit (Python's start, imports and model loads included)."""
    cmd = [sys.executable, __file__, "--side", side, "--images", str(images), "--db", str(db),
           "--cpus", str(cpus)] + [a for s in sets for a in ("--set", s)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # run from the checkout: Ray's workers find raycurate from their working directory, which is the driver's
    # (PYTHONPATH alone let them import an installed raycurate instead)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    with TreePeak(proc.pid) as peak:
        out, _ = proc.communicate()
    wall_s = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"the {side} side failed (rc {proc.returncode}):\n{out}")
    result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
    return result, peak, wall_s


def run_side(side: str, args, work: Path) -> tuple[dict, TreePeak]:
    """``side`` in a process of its own, measured as a whole process tree."""
    return side_process(side, work / "images", work / f"db_{side}", args.cpus, args.set)[:2]


def compare(files, settings, other, label: str, work: Path, cpus: int) -> int:
    """The Ray pipeline with ``other``, then with ``settings``, in one Ray session; images/s, memory, ratio."""
    from dataclasses import replace

    import ray

    from raycurate.engine import run_pipeline, sized_settings
    from raycurate.engine.cluster import start_ray

    start_ray(replace(settings.ray, num_cpus=cpus))
    workers_use_this_checkout()
    results = []
    for name, c in ((label, sized_settings(other)[0]), ("defaults", sized_settings(settings)[0])):
        with TreePeak(os.getpid()) as mem:
            t = time.perf_counter()
            # one run id per pipeline: workers cache the crash ledger's handle by its name, which holds the run id
            result = run_pipeline(files, c, db_uri=str(work / f"db_{len(results)}"), run_id=f"bench{len(results)}")
            seconds = time.perf_counter() - t
        assert result.rows_written == len(files), (result.rows_written, len(files))
        results.append((name, seconds, mem.rss))
        print(f"  {name}: {seconds:.1f} s", flush=True)
    ray.shutdown()
    print()
    print(f"{'Ray pipeline (local)':<44}{'seconds':>9}{'images/s':>10}{'tree RSS MB':>13}")
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
    ap.add_argument("--reference", metavar="DB", help="also compare the Ray side's rows with this table (a "
                    "kept db_ray of an earlier run on the same --n)")
    ap.add_argument("--side", choices=("loop", "ray"), help=argparse.SUPPRESS)   # one side, in a child
    ap.add_argument("--images", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    args = ap.parse_args()

    from raycurate.config import load_settings, parse_set
    from raycurate.sources import list_media

    settings = load_settings(overrides=[parse_set(s) for s in args.set])
    if args.side:
        return side_main(args, settings)
    work = Path(tempfile.mkdtemp(prefix="rc-bench-"))
    try:
        (work / "images").mkdir()
        make_images(work / "images", args.n)
        files = [f for f in list_media(str(work / "images")) if f.media_type == "image"]
        print(f"{len(files)} images, {sum(f.size for f in files) / 1e6:.1f} MB, {args.cpus} CPUs", flush=True)
        if args.against:
            other = load_settings(overrides=[parse_set(s) for s in args.set + args.against])
            return compare(files, settings, other, " ".join(args.against), work, args.cpus)

        sides = {side: run_side(side, args, work) for side in ("loop", "ray")}
        for side, (result, _) in sides.items():
            assert result["rows"] == len(files), (side, result["rows"], len(files))
        print()
        print(sides["ray"][1].table())
        print()
        print(f"{'whole process tree':<26}{'seconds':>9}{'images/s':>10}{'CPU s':>8}{'peak RSS MB':>13}{'PSS MB':>8}"
              f"{'USS MB':>8}")
        for side, title in (("loop", "single-process loop"), ("ray", "Ray pipeline (local)")):
            result, peak = sides[side]
            print(f"{title:<26}{result['seconds']:>9.2f}{len(files) / result['seconds']:>10.2f}{peak.cpu_s:>8.1f}"
                  f"{peak.rss / 1e6:>13.0f}{peak.pss / 1e6:>8.0f}{peak.uss / 1e6:>8.0f}")
        (loop, loop_peak), (ray_r, ray_peak) = sides["loop"], sides["ray"]
        print(f"(+ Ray's start {ray_r['init_s']:.1f} s, not counted in its seconds; counted in its memory and CPU s)")
        print(f"ratio Ray / loop: {loop['seconds'] / ray_r['seconds']:.2f}x images/s, "
              f"{ray_peak.rss / max(1, loop_peak.rss):.1f}x peak RSS")
        diff = differences(str(work / "db_loop"), str(work / "db_ray"))
        print("rows differing, Ray vs loop: " + (json.dumps(diff) if diff else "none"))
        if args.reference:
            diff = differences(args.reference, str(work / "db_ray"))
            print(f"rows differing, Ray vs {args.reference}: " + (json.dumps(diff) if diff else "none"))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
