#!/usr/bin/env python
"""What a run keeps of a video of many distinct photos of people: photos and people covered, rows merged across
photos, the largest distance of a marked row from its keeper.

The clip (scripts/clips.py ``write_slideshow``) shows the photos of tests/data/images/people (20 photos of 12
people, several of the same person, in name order: one person's photos follow each other), ``--seconds`` each,
hard cuts between them, each photo fitted to the frame and moving (slow zoom in, pan right, zoom out, pan left,
in turn). It is run as a user would: ``raycurate run`` on a folder holding it, the YouTube preset, the default
config otherwise (``--set`` adds overrides). Then the run's OUT and DB are read against the clip's truth
(tests/selection.py): the ``images`` table's winners and the ``frames`` table, each marked row's distance to its
keeper recomputed from the stored vectors.

Target (issue 22): every photo with a face CenterFace finds (on the photo itself) is covered by a kept row, and
no row is marked beyond its column's threshold. Exit 0 when every clip meets it, 1 when one misses it.

    .venv/bin/python scripts/bench_selection.py                      # 1080p, 3 s a photo, blurred backdrop
    .venv/bin/python scripts/bench_selection.py --background black   # black bars beside the photos
    .venv/bin/python scripts/bench_selection.py --json out.json --keep /tmp/sel   # also JSON; keep OUT
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests import selection  # noqa: E402

clips = selection.load_clips()


def run_clip(work: Path, background: str, args: argparse.Namespace) -> tuple[selection.Score, dict]:
    names = sorted(clips.people())[: args.photos or None]
    shots = [clips.Shot(p, clips.MOTIONS[k % len(clips.MOTIONS)], args.seconds) for k, p in enumerate(names)]
    inp, out = work / "in", work / "out"
    inp.mkdir(parents=True)
    t = time.perf_counter()
    truth = clips.write_slideshow(inp / f"people_{background}.mp4", shots, fps=args.fps, size=args.size,
                                  background=background)
    made = time.perf_counter() - t
    cmd = [sys.executable, "-m", "raycurate.cli", "run", str(inp), "--out", str(out), "--preset", "youtube",
           *[a for kv in args.set for a in ("--set", kv)]]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    ran = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"raycurate run failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    score = selection.measure(out, truth, clips.PEOPLE)
    return score, {"clip_s": round(made, 1), "run_s": round(ran, 1), "command": " ".join(cmd[1:])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds per photo")
    ap.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT of the clip")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--photos", type=int, default=0, help="the first N photos by name (0: all)")
    ap.add_argument("--background", default="blur,black",
                    help=f"the backdrop beside the photos, comma-separated, one clip and run each: "
                         f"{', '.join(clips.BACKGROUNDS)}")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed on to raycurate run")
    ap.add_argument("--json", metavar="PATH", help="also write the numbers as JSON ('-': stdout)")
    ap.add_argument("--keep", metavar="DIR", help="make the clips and OUTs under DIR and leave them there")
    args = ap.parse_args()
    args.size = tuple(int(v) for v in args.size.lower().split("x"))
    backgrounds = args.background.split(",")
    if unknown := [b for b in backgrounds if b not in clips.BACKGROUNDS]:
        ap.error(f"--background {','.join(unknown)}: one of {', '.join(clips.BACKGROUNDS)}")
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="rc-selbench-"))
    results = {}
    try:
        for background in backgrounds:
            score, timing = run_clip(base / background, background, args)
            print(f"== {background} backdrop: clip made in {timing['clip_s']} s, raycurate run {timing['run_s']} s "
                  f"({timing['command']})")
            print(selection.format_score(score) + "\n")
            results[background] = {**score.as_dict(), **timing}
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    if args.json:
        text = json.dumps(results, indent=1)
        print(text) if args.json == "-" else Path(args.json).write_text(text + "\n")
    return 0 if all(r["target_met"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
