#!/usr/bin/env python
"""Whole ``raycurate run`` invocations (process start to exit: Python, Ray's start, model loads, the run, its
report) against their single-process / decode-only baselines, side by side in one invocation (issue 23).

(a) photos: ``--n`` distinct JPEGs made from tests/data (scripts/bench_images.py ``make_images``: random crops,
    scales, flips; never byte copies, which the catalogue would dedup). ``raycurate run`` on them against
    bench_images.py's single-process loop (``--side loop``: the same analyser classes, the same LanceDB sink),
    that too timed as a whole process (imports and model loads included). Images/s of both, run / loop, and the
    peak RSS (and PSS) of each whole process tree (scripts/proc_memory.py TreePeak: Ray's GCS, raylet, agents
    and workers included), run / loop.
(b) video: a ``--seconds`` (60) 1080p 30 fps slideshow of the people photos of tests/data/images/people
    (scripts/clips.py ``write_slideshow``: a slow zoom or pan per photo, hard cuts between them). Decode only
    (scripts/bench_video.py ``decode_only``: the youtube preset's decoders and sample rate, in this process)
    against ``raycurate run --preset youtube`` on a folder holding only the clip; decode_s / run_s is the run's
    fraction of decode-only speed.
(c) mixed: ``raycurate run --preset youtube`` on a folder holding the photos and the clip (hard links), against
    the photos-only and video-only runs of (a) and (b) (run here too when ``--only mixed``): mixed / (photos +
    video) under 1 means one run of both beats two runs.

Every run gets a fresh OUT (its DB the default OUT/db), so nothing is skipped as already catalogued; all run
with ``--set ray.num_cpus=--cpus`` (and any ``--set`` given here, which the loop gets too), from this checkout
(cwd and PYTHONPATH: Ray's workers import this raycurate). The memory sampler (every 0.2 s) runs during the
subprocesses only, the same for run and loop; decode-only is not sampled. The command line, date, git commit,
CPU count and load average are printed at the start and the end: wall times on a shared machine are noisy.

    .venv/bin/python scripts/bench_run.py                               # 312 photos, a 60 s clip, all three
    .venv/bin/python scripts/bench_run.py --n 3000 --json run.json      # also the numbers as JSON
    .venv/bin/python scripts/bench_run.py --only photos --skip-loop     # one run of the photos, no baseline
    .venv/bin/python scripts/bench_run.py --only video --seconds 10     # a quick look at the video path
    .venv/bin/python scripts/bench_run.py --keep /tmp/rb                # the inputs and OUTs left under /tmp/rb
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT)]   # this checkout's raycurate and scripts
import clips  # noqa: E402
from bench_images import make_images, side_process  # noqa: E402
from bench_video import decode_only  # noqa: E402
from proc_memory import TreePeak  # noqa: E402

PARTS = ("photos", "video", "mixed")
SHOT_SECONDS = 3.0   # a photo's time on screen in the slideshow (60 s: each of the 20 people photos once)


def stamp() -> dict:
    """When, on what: date, git commit (``+dirty`` with uncommitted changes), CPUs, load average."""
    def git(*a: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True).stdout.strip()

    return {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "commit": git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain", "-uno") else ""),
            "cpu_count": os.cpu_count(), "loadavg": [round(v, 2) for v in os.getloadavg()]}


def print_stamp(when: str, s: dict) -> None:
    print(f"[{when}] {s['date']}  commit {s['commit']}  {s['cpu_count']} CPUs  "
          f"load average {' '.join(f'{v:.2f}' for v in s['loadavg'])}", flush=True)


def make_slideshow(path: Path, seconds: float, fps: int = 30, size=(1920, 1080)) -> dict:
    """``seconds`` of 1080p: the people photos in name order (again from the first when the clip outlasts
    them), about :data:`SHOT_SECONDS` each, zooms and pans in turn, hard cuts; write_slideshow's truth."""
    names = sorted(clips.people())
    n = max(1, round(seconds / SHOT_SECONDS))
    shots = [clips.Shot(names[k % len(names)], clips.MOTIONS[k % len(clips.MOTIONS)], seconds / n)
             for k in range(n)]
    return clips.write_slideshow(path, shots, fps=fps, size=size, background="blur")


def link_all(files, dest: Path) -> None:
    """``files`` into ``dest`` as hard links (copies where a link cannot be made): same bytes, no copy."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        try:
            os.link(f, dest / f.name)
        except OSError:
            shutil.copy2(f, dest / f.name)


def count_rows(db: Path, table: str) -> int:
    from raycurate.store.table import open_table

    try:
        return open_table(str(db), table).count_rows()
    except FileNotFoundError:
        return 0


def raycurate_run(inp: Path, out: Path, args, preset: str | None) -> dict:
    """``raycurate run INPUT --out OUT`` in a process of its own (a fresh OUT, its DB OUT/db), measured as a
    whole process tree from its start to its exit; its output goes to OUT's sibling ``<name>.log``."""
    cmd = [sys.executable, "-m", "raycurate.cli", "run", str(inp), "--out", str(out),
           *(["--preset", preset] if preset else []), "--set", f"ray.num_cpus={args.cpus}",
           *[a for kv in args.set for a in ("--set", kv)]]
    if out.exists():
        shutil.rmtree(out)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}   # a local Ray of its own, always
    env["PYTHONPATH"] = str(ROOT)
    log = out.with_name(out.name + ".log")
    print(f"  $ {shlex.join(['python', *cmd[1:]])}", flush=True)
    with open(log, "w") as fh:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            with TreePeak(proc.pid) as peak:
                rc = proc.wait()
        except BaseException:   # interrupted: end the run (and its Ray) we started, no one else's
            for p in [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]:
                try:
                    p.terminate()
                except psutil.Error:
                    pass
            raise
        wall = time.perf_counter() - t
    if rc != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        raise SystemExit(f"raycurate run failed (exit {rc}); the end of {log}:\n" + "\n".join(tail))
    db = out / "db"
    # the run's own time, as its summary states it ("raycurate run <id>: 15.7 s"): the rest is Python's start,
    # imports and the CLI before it
    said = re.search(r"^raycurate run \S+: ([0-9.]+) s", log.read_text(errors="replace"), re.M)
    return {"command": shlex.join(cmd[1:]), "wall_s": wall, "rc": rc, "run_says_s": float(said[1]) if said else None,
            "peak_rss": peak.rss, "peak_pss": peak.pss, "peak_uss": peak.uss, "cpu_s": peak.cpu_s,
            "images_rows": count_rows(db, "images"), "frames_rows": count_rows(db, "frames"),
            "at_rss_peak": {name: dict(zip(("rss", "pss", "uss", "shm"), v)) for name, v in peak.detail.items()},
            "cpu_s_by_process": peak.cpu_by_name}


def memory_detail(run: dict, top: int = 14) -> None:
    """The run's processes at its RSS peak, largest PSS first: where its memory is; then where its CPU time went."""
    rows = sorted(run["at_rss_peak"].items(), key=lambda kv: -kv[1]["pss"])
    print(f"  {'process at the RSS peak':<52}{'RSS MB':>8}{'PSS MB':>8}{'USS MB':>8}{'shm MB':>8}")
    for name, m in rows[:top]:
        print(f"  {name[:52]:<52}{mb(m['rss']):>8}{mb(m['pss']):>8}{mb(m['uss']):>8}{mb(m['shm']):>8}")
    if len(rows) > top:
        rest = rows[top:]
        print(f"  {f'{len(rest)} more':<52}{mb(sum(m['rss'] for _, m in rest)):>8}"
              f"{mb(sum(m['pss'] for _, m in rest)):>8}{mb(sum(m['uss'] for _, m in rest)):>8}")
    cpu = sorted(run["cpu_s_by_process"].items(), key=lambda kv: -kv[1])
    print("  CPU s by process: " + ", ".join(f"{name} {s:.1f}" for name, s in cpu[:8])
          + f", {len(cpu) - 8} more {sum(s for _, s in cpu[8:]):.1f}" * (len(cpu) > 8))


def bench_photos(work: Path, photos: Path, n: int, args) -> dict:
    """(a): ``raycurate run`` on the photos, and (unless ``--skip-loop``) the single-process loop."""
    print(f"\n== (a) photos: {n} images, {sum(p.stat().st_size for p in photos.iterdir()) / 1e6:.1f} MB", flush=True)
    run = raycurate_run(photos, work / "out_photos", args, None)
    if run["images_rows"] != n:
        raise SystemExit(f"raycurate run stored {run['images_rows']} rows for {n} photos")
    result = {"n": n, "run": {**run, "images_per_s": n / run["wall_s"]}}
    if not args.skip_loop:
        print("  $ python scripts/bench_images.py --side loop (the loop, in a process of its own)", flush=True)
        side, peak, wall = side_process("loop", photos, work / "db_loop", args.cpus, args.set)
        if side["rows"] != n:
            raise SystemExit(f"the loop stored {side['rows']} rows for {n} photos")
        result["loop"] = {"wall_s": wall, "loop_s": side["seconds"], "before_loop_s": wall - side["seconds"],
                          "images_per_s": n / wall, "peak_rss": peak.rss, "peak_pss": peak.pss, "peak_uss": peak.uss,
                          "cpu_s": peak.cpu_s}
        result["ratio_images_per_s"] = result["run"]["images_per_s"] / result["loop"]["images_per_s"]
        result["ratio_peak_rss"] = run["peak_rss"] / max(1, peak.rss)
    return result


def bench_video(work: Path, clip_dir: Path, clip: Path, truth: dict, args) -> dict:
    """(b): decode only (youtube preset's decoders and sample rate) against ``raycurate run --preset youtube``."""
    from raycurate.config import load_settings, parse_set

    video = load_settings(preset="youtube", overrides=[parse_set(s) for s in args.set]).video
    print(f"\n== (b) video: {clip.name}, {truth['frames']} frames at {truth['fps']} fps, "
          f"{'x'.join(map(str, truth['size']))}, {len(truth['shots'])} shots, {clip.stat().st_size / 1e6:.1f} MB",
          flush=True)
    backend, decoded, decode_s = decode_only(str(clip), tuple(video.decoders), video.sample_rate)
    print(f"  decode only: {decode_s:.1f} s ({backend}, {decoded} frames, every {video.sample_rate}th converted)",
          flush=True)
    run = raycurate_run(clip_dir, work / "out_video", args, "youtube")
    seconds = truth["frames"] / truth["fps"]
    return {"clip": {"seconds": seconds, "frames": truth["frames"], "size": truth["size"],
                     "shots": len(truth["shots"]), "bytes": clip.stat().st_size},
            "decode": {"backend": backend, "frames_decoded": decoded, "sample_rate": video.sample_rate,
                       "decode_s": decode_s, "fps": truth["frames"] / decode_s},
            "run": {**run, "fps": truth["frames"] / run["wall_s"]},
            "fraction_of_decode_speed": decode_s / run["wall_s"]}


def bench_mixed(work: Path, mixed: Path, photos_s: float, video_s: float, args) -> dict:
    """(c): one run on the photos and the clip together, against the photos-only and video-only runs."""
    print("\n== (c) mixed: the photos and the clip in one folder", flush=True)
    run = raycurate_run(mixed, work / "out_mixed", args, "youtube")
    return {"run": run, "photos_s": photos_s, "video_s": video_s,
            "ratio_mixed_over_sum": run["wall_s"] / (photos_s + video_s)}


def mb(b: float) -> str:
    return f"{b / 1e6:.0f}"


def says(run: dict) -> None:
    if run["run_says_s"] is not None:
        print(f"  (the run's own summary says {run['run_says_s']:.1f} s of its {run['wall_s']:.1f} s: the rest is "
              f"Python's start, imports and the CLI before it)")


def report(res: dict, detail: bool = False) -> None:
    print("\n" + "=" * 96)
    if "photos" in res:
        p = res["photos"]
        print(f"(a) photos, {p['n']} images{'':<14}{'wall s':>9}{'images/s':>10}{'CPU s':>8}{'peak RSS MB':>13}"
              f"{'PSS MB':>8}{'USS MB':>8}")
        for key, title in (("run", "raycurate run (whole process)"), ("loop", "single-process loop (whole)")):
            if key in p:
                r = p[key]
                print(f"{title:<40}{r['wall_s']:>9.1f}{r['images_per_s']:>10.2f}{r['cpu_s']:>8.0f}"
                      f"{mb(r['peak_rss']):>13}{mb(r['peak_pss']):>8}{mb(r['peak_uss']):>8}")
        says(p["run"])
        if detail:
            memory_detail(p["run"])
        if "loop" in p:
            print(f"  (the loop's process: {p['loop']['loop_s']:.1f} s in the loop, model loads included, "
                  f"{p['loop']['before_loop_s']:.1f} s before it: Python, imports, settings)")
            print(f"  ratio run / loop: {p['ratio_images_per_s']:.2f}x images/s, {p['ratio_peak_rss']:.2f}x peak RSS")
    if "video" in res:
        v = res["video"]
        print(f"\n(b) video, {v['clip']['seconds']:.0f} s {'x'.join(map(str, v['clip']['size']))}, "
              f"{v['clip']['frames']} frames{'':<6}{'wall s':>9}{'frames/s':>10}{'CPU s':>8}{'peak RSS MB':>13}")
        d, r = v["decode"], v["run"]
        print(f"{'decode only (' + d['backend'] + ', in-process)':<40}{d['decode_s']:>9.1f}{d['fps']:>10.1f}"
              f"{'-':>8}{'-':>13}")
        print(f"{'raycurate run --preset youtube':<40}{r['wall_s']:>9.1f}{r['fps']:>10.1f}{r['cpu_s']:>8.0f}"
              f"{mb(r['peak_rss']):>13}")
        says(r)
        if detail:
            memory_detail(r)
        print(f"  fraction of decode-only speed (decode_s / run_s): {v['fraction_of_decode_speed']:.3f}")
    if "mixed" in res:
        m = res["mixed"]
        print(f"\n(c) mixed{'':<31}{'wall s':>9}{'CPU s':>8}{'peak RSS MB':>13}")
        print(f"{'raycurate run on photos + clip':<40}{m['run']['wall_s']:>9.1f}{m['run']['cpu_s']:>8.0f}"
              f"{mb(m['run']['peak_rss']):>13}")
        print(f"{'photos only + video only':<40}{m['photos_s'] + m['video_s']:>9.1f}"
              f"   ({m['photos_s']:.1f} + {m['video_s']:.1f})")
        says(m["run"])
        if detail:
            memory_detail(m["run"])
        print(f"  ratio mixed / (photos + video): {m['ratio_mixed_over_sum']:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=312, help="photos to make and curate (default 312)")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the 1080p clip (default 60)")
    ap.add_argument("--cpus", type=int, default=os.cpu_count(), help="ray.num_cpus of the runs (default: all)")
    ap.add_argument("--only", choices=PARTS, action="append",
                    help="run only this part (repeatable; mixed runs photos and video too, for its ratio)")
    ap.add_argument("--skip-loop", action="store_true", help="no single-process loop in (a)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="passed on to every raycurate run (and the loop), e.g. analyzers.nsfw.enabled=false")
    ap.add_argument("--memory-detail", action="store_true",
                    help="print each process of the runs at their RSS peak (always in the JSON)")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers as JSON ('-': stdout)")
    ap.add_argument("--keep", metavar="DIR", help="make the inputs and OUTs under DIR and leave them there")
    args = ap.parse_args()
    if args.n < 1 or args.seconds <= 0 or args.cpus < 1:
        ap.error("--n, --seconds and --cpus must be positive")
    parts = set(args.only or PARTS)
    if "mixed" in parts:
        parts |= {"photos", "video"}   # its ratio needs both alone

    command = shlex.join([Path(sys.executable).name, *sys.argv])
    start = stamp()
    print(f"$ {command}")
    print_stamp("start", start)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="rc-runbench-"))
    work.mkdir(parents=True, exist_ok=True)
    res: dict = {}
    try:
        photos = clip_dir = clip = truth = None
        if "photos" in parts:
            photos = work / "photos"
            shutil.rmtree(photos, ignore_errors=True)
            photos.mkdir()
            t = time.perf_counter()
            made = make_images(photos, args.n)
            print(f"made {len(made)} photos in {time.perf_counter() - t:.1f} s", flush=True)
        if "video" in parts:
            clip_dir = work / "video"
            shutil.rmtree(clip_dir, ignore_errors=True)
            clip_dir.mkdir()
            clip = clip_dir / f"people_1080p_{args.seconds:g}s.mp4"
            t = time.perf_counter()
            truth = make_slideshow(clip, args.seconds)
            print(f"made {clip.name} in {time.perf_counter() - t:.1f} s", flush=True)
        if "photos" in parts:
            res["photos"] = bench_photos(work, photos, args.n, args)
        if "video" in parts:
            res["video"] = bench_video(work, clip_dir, clip, truth, args)
        if "mixed" in parts:
            mixed = work / "mixed"
            shutil.rmtree(mixed, ignore_errors=True)
            link_all([*sorted(photos.iterdir()), clip], mixed)
            res["mixed"] = bench_mixed(work, mixed, res["photos"]["run"]["wall_s"], res["video"]["run"]["wall_s"],
                                       args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    end = stamp()
    report(res, args.memory_detail)
    print()
    print(f"$ {command}")
    print_stamp("start", start)
    print_stamp("end", end)
    if args.keep:
        print(f"kept {work}")
    if args.json:
        doc = {"command": command, "start": start, "end": end, "cpus": args.cpus, "set": args.set, **res}
        text = json.dumps(doc, indent=1)
        print(text) if args.json == "-" else Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
