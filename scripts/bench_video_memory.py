#!/usr/bin/env python
"""Peak memory of a whole run (``raycurate run``, the CLI, and every process it starts) over 10 and then 100
short videos, one run each, side by side: does memory grow with the number of videos?

The clips are made here: ``--seconds`` s, 480x854 (vertical, short-form), 30 fps, H.264, each a textured
background of its own with a real face (tests/data) moving across it. Each run starts its own local Ray
(``--cpus``), default settings.

    .venv/bin/python scripts/bench_video_memory.py
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proc_memory import TreePeak  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def make_clips(folder: Path, n: int, seconds: float, fps: int = 30, size=(480, 854)) -> None:
    import av
    import cv2

    face = cv2.imread(str(ROOT / "tests/data/images/faces/skimage_astronaut.png"))[40:300, 130:360]
    face = cv2.cvtColor(cv2.resize(face, (200, 226)), cv2.COLOR_BGR2RGB)
    w, h = size
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        rng = np.random.default_rng(k)
        base = cv2.resize(rng.integers(0, 255, (16, 9, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
        with av.open(str(folder / f"clip{k:03d}.mp4"), "w") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"preset": "ultrafast", "crf": "23"}
            frames = int(seconds * fps)
            for i in range(frames):
                frame = base.copy()
                y = int((h - 226) * i / frames)
                frame[y:y + 226, 140:340] = face
                for pkt in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(pkt)
            for pkt in stream.encode():
                container.mux(pkt)


def run(folder: Path, out: Path, cpus: int) -> tuple[float, TreePeak, int]:
    cmd = [sys.executable, "-m", "raycurate.cli", "run", str(folder), "--out", str(out),
           "--set", f"ray.num_cpus={cpus}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    with TreePeak(proc.pid) as peak:
        rc = proc.wait()
    return time.perf_counter() - t, peak, rc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", default="10,100")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--cpus", type=int, default=2)
    args = ap.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    work = Path(tempfile.mkdtemp(prefix="rc-vmem-"))
    try:
        t = time.perf_counter()
        make_clips(work / "all", max(counts), args.seconds)
        print(f"made {max(counts)} clips of {args.seconds:g} s in {time.perf_counter() - t:.1f} s")
        results = []
        for n in counts:
            folder = work / f"in{n}"
            folder.mkdir()
            for k in range(n):
                os.link(work / "all" / f"clip{k:03d}.mp4", folder / f"clip{k:03d}.mp4")
            seconds, peak, rc = run(folder, work / f"out{n}", args.cpus)
            results.append((n, seconds, peak, rc))
            top = sorted(peak.by_name.items(), key=lambda kv: -kv[1])[:6]
            print(f"{n} videos: rc {rc}, {seconds:.1f} s, peak RSS {peak.rss / 1e9:.2f} GB, peak USS {peak.uss / 1e9:.2f} GB;"
                  " largest at the RSS peak: " + ", ".join(f"{k.split(' ', 1)[1]} {v / 1e6:.0f} MB" for k, v in top))
        base = results[0]
        for n, seconds, peak, rc in results[1:]:
            print(f"{n} vs {base[0]} videos: peak RSS x{peak.rss / base[2].rss:.3f}, peak USS x{peak.uss / base[2].uss:.3f}, "
                  f"time x{seconds / base[1]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
