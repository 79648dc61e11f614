#!/usr/bin/env python
"""Peak memory of a whole run (``raycurate run``, the CLI, and every process it starts) over 10 and then 100
short videos, one run each, side by side: does memory grow with the number of videos?

The clips are made here: ``--seconds`` s, 480x854 (vertical, short-form), 30 fps, H.264, each a textured
background of its own with a real face (tests/data) moving across it. Each run starts its own local Ray
(``--cpus``), default settings.

    .venv/bin/python scripts/bench_video_memory.py
    .venv/bin/python scripts/bench_video_memory.py --set cascade.stage1.max_actors=1   # any run setting
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


sys.path.insert(0, str(Path(__file__).resolve().parent))
from clips import write_clip  # noqa: E402
from proc_memory import TreePeak  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def make_clips(folder: Path, n: int, seconds: float, fps: int = 30, size=(480, 854)) -> None:
    """``n`` portrait clips of ``seconds``, one shot each (its own background), a real face moving down."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        write_clip(folder / f"clip{k:03d}.mp4", shots=("astronaut",), shot_frames=int(seconds * fps), fps=fps,
                   size=size, face_width=200, motion="down", seed=k)


def run(folder: Path, out: Path, cpus: int, sets: list[str]) -> tuple[float, TreePeak, int]:
    cmd = [sys.executable, "-m", "raycurate.cli", "run", str(folder), "--out", str(out),
           "--set", f"ray.num_cpus={cpus}", *[a for kv in sets for a in ("--set", kv)]]
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
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed on to raycurate run")
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
            seconds, peak, rc = run(folder, work / f"out{n}", args.cpus, args.set)
            results.append((n, seconds, peak, rc))
            top = sorted(peak.by_name.items(), key=lambda kv: -kv[1])[:6]
            print(f"{n} videos: rc {rc}, {seconds:.1f} s, peak RSS {peak.rss / 1e9:.2f} GB, "
                  f"PSS {peak.pss / 1e9:.2f} GB, USS {peak.uss / 1e9:.2f} GB;"
                  " largest at the RSS peak: " + ", ".join(f"{k.split(' ', 1)[1]} {v / 1e6:.0f} MB" for k, v in top))
        base = results[0]
        for n, seconds, peak, rc in results[1:]:
            print(f"{n} vs {base[0]} videos: peak RSS x{peak.rss / base[2].rss:.3f}, "
                  f"PSS x{peak.pss / base[2].pss:.3f}, USS x{peak.uss / base[2].uss:.3f}, "
                  f"time x{seconds / base[1]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
