#!/usr/bin/env python
"""Images/s of the Ray pipeline with 1 vs 2 CPU workers, measured one after the other in one run.

Same images (``--n`` distinct JPEGs made from tests/data, as bench_images.py
makes them), same analysers (the no-download set: quality, content vector,
OpenCV faces, NudeNet), same LanceDB sink; only the local Ray's CPU count
changes, and with it how many actors the pools may hold: with 1 CPU the face
pool starts one actor (the default two do not fit), with 2 CPUs the defaults.
Dedup and export are not part of it (the pipeline only).

    .venv/bin/python scripts/bench_scale.py            # 200 images
    .venv/bin/python scripts/bench_scale.py --n 100
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_images import make_images  # noqa: E402


def run(files, settings, cpus: int, db: str) -> tuple[float, int, dict]:
    import ray

    from raycurate.engine import run_pipeline, sized_settings

    ray.init(num_cpus=cpus, include_dashboard=False, logging_level="ERROR")
    try:
        settings = sized_settings(settings)[0]   # once, as a run sizes its pools
        t = time.perf_counter()
        result = run_pipeline(files, settings, db_uri=db, run_id=f"scale-{cpus}")
        seconds = time.perf_counter() - t
    finally:
        ray.shutdown()
    pools = {name: (r.min_actors, r.max_actors, r.num_cpus) for name, r in result.actors.items()}
    return seconds, result.rows_written, pools


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()

    from raycurate.config import load_settings
    from raycurate.sources import list_media

    work = Path(tempfile.mkdtemp(prefix="rc-bench-scale-"))
    try:
        (work / "images").mkdir()
        make_images(work / "images", args.n)
        files = [f for f in list_media(str(work / "images")) if f.media_type == "image"]
        base = [("analyzers.emotion.enabled", False), ("analyzers.pose.enabled", False),
                ("analyzers.clip.enabled", False), ("analyzers.face.detector", "opencv_haar")]
        results = {}
        for cpus in (1, 2):
            extra = [("analyzers.face.min_actors", 1)] if cpus == 1 else []
            settings = load_settings(overrides=base + extra)
            seconds, rows, pools = run(files, settings, cpus, str(work / f"db{cpus}"))
            assert rows == len(files), (rows, len(files))
            results[cpus] = seconds
            print(f"{cpus} CPU worker(s): {seconds:.1f} s, {len(files) / seconds:.2f} images/s; pools "
                  f"(min, max actors, CPUs each): {pools}", flush=True)
        print(f"\n{len(files)} images: 1 CPU {len(files) / results[1]:.2f} images/s, 2 CPUs "
              f"{len(files) / results[2]:.2f} images/s: ratio 2 / 1 = {results[1] / results[2]:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
