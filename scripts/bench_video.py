#!/usr/bin/env python
"""The video path's throughput against decode alone, per file, in one run.

For each file (testvideo.mp4, and a 60 s 1080p H.264 clip this script makes),
with the YouTube preset, scene detection off and then on:
- decode only: the same decoder reads the file at the same sample rate
  (every 5th frame converted) and nothing else;
- video path: one decode (sampling, motion filter, scene detection fed while
  decoding), Stage 1 and Stage 2 on local Ray actor pools, Stage 3 per video
  and the winners' files (from the pixels kept through the cascade).
Both are given in source frames per second; the ratio is path / decode (cold:
the path's time includes starting its actors and loading their models). The
peak memory (USS and RSS) of the Ray worker that decodes (the task
``sample_videos``) is sampled every 0.1 s. Then, per stage: the frames it saw,
the share it passed, and its analysers' mean time per frame (their stored
``*_ms`` columns).

    .venv/bin/python scripts/bench_video.py
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from clips import write_clip  # noqa: E402


def make_clip(path: Path, seconds: int = 60, fps: int = 30, size=(1920, 1080)) -> Path:
    """A 1080p H.264 clip: six 10 s shots, each a textured background with a real face moving across it."""
    write_clip(path, shots=("astronaut",) * max(1, seconds // 10), shot_frames=10 * fps, fps=fps, size=size)
    return path


def decode_only(path: str, decoders: tuple[str, ...], step: int) -> tuple[str, int, float]:
    from raycurate.video.reader import open_video

    start = time.perf_counter()
    reader = open_video(path, decoders)
    for _ in reader.frames(step=step):
        pass
    return reader.stats.backend, reader.stats.frames_decoded, time.perf_counter() - start


class WorkerPeak:
    """Peak memory of processes whose command line names ``needle`` (Ray sets it to the running task):
    USS (memory private to the process) and RSS (which also counts the pages of Ray's shared object
    store that the worker wrote its output blocks into)."""

    def __init__(self, needle: str) -> None:
        self.needle = needle
        self.peak = 0
        self.peak_uss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for p in psutil.process_iter(["cmdline"]):
                try:
                    if self.needle in " ".join(p.info["cmdline"] or []):
                        mem = p.memory_full_info()
                        self.peak = max(self.peak, mem.rss)
                        self.peak_uss = max(self.peak_uss, mem.uss)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            time.sleep(0.1)

    def __enter__(self) -> "WorkerPeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def stage_ms(db_uri: str, run_id: str) -> dict[str, float]:
    """Mean milliseconds per frame of each stage's analysers (the ``*_ms`` columns stored per frame), over
    the frames each analyser ran on, summed per stage."""
    from raycurate.stages import STAGES
    from raycurate.store import FRAMES_TABLE, open_table

    table = open_table(db_uri, FRAMES_TABLE)
    out = {}
    for name, stage in STAGES.items():
        cols = [f"{a}_ms" for a in stage.analyzer_names + stage.optional_names if f"{a}_ms" in table.schema.names]
        data = table.search().where(f"run_id = '{run_id}'").select(cols).limit(None).to_arrow()
        total = 0.0
        for col in cols:
            values = [v for v in data.column(col).to_pylist() if v is not None]
            total += sum(values) / len(values) if values else 0.0
        out[name] = total
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=60, help="length of the generated 1080p clip")
    ap.add_argument("--cpus", type=int, default=os.cpu_count())
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting for both runs, e.g. video.decord_device=gpu (repeatable)")
    args = ap.parse_args()

    import ray

    from raycurate.config import load_settings, parse_set
    from raycurate.engine import run_video_pipeline, sized_settings
    from raycurate.run_report import video_report
    from raycurate.sources import FileRef

    extra = [parse_set(s) for s in args.set]
    configs = {"off": load_settings(preset="youtube", overrides=[*extra, ("video.scene_detection", False)]),
               "on": load_settings(preset="youtube", overrides=[*extra, ("video.scene_detection", True)])}
    video = configs["off"].video
    work = Path(tempfile.mkdtemp(prefix="rc-vbench-"))
    try:
        t = time.perf_counter()
        clip = make_clip(work / "clip_1080p_60s.mp4", seconds=args.seconds)
        print(f"generated {clip.name} in {time.perf_counter() - t:.1f} s ({clip.stat().st_size / 1e6:.1f} MB)")
        files = [ROOT / "tests/data/videos/testvideo.mp4", clip]
        ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="ERROR")
        configs = {name: sized_settings(s)[0] for name, s in configs.items()}   # once, as a run sizes its pools
        step = video.sample_rate
        rows = []
        for i, (f, scenes) in enumerate((f, s) for f in files for s in ("off", "on")):
            run_settings = configs[scenes]
            backend, n_dec, t_dec = decode_only(str(f), tuple(video.decoders), step)
            with WorkerPeak("sample_videos") as peak:
                t = time.perf_counter()
                res = run_video_pipeline([FileRef(str(f), str(f), f.stat().st_size, "video")], run_settings,
                                         db_uri=str(work / "db"), run_id=f"bench{i}",
                                         frames_dir=str(work / f"frames{i}"))
                t_path = time.perf_counter() - t
            report = video_report(str(work / "db"), f"bench{i}", run_settings, frame_files=len(res.winners))
            rows.append((f.name, scenes, backend, n_dec, t_dec, t_path, (peak.peak_uss, peak.peak),
                         report["counts"], stage_ms(str(work / "db"), f"bench{i}")))
        ray.shutdown()

        print(f"\npreset youtube (sample_rate {step}), {args.cpus} CPUs, decoder as chosen by the path")
        print(f"{'file':<22}{'scenes':<8}{'decoder':<8}{'frames':>7}{'decode fps':>12}{'path fps':>10}"
              f"{'path/decode':>13}{'decode worker peak USS / RSS':>31}")
        for name, scenes, backend, n, t_dec, t_path, (uss, rss), *_ in rows:
            print(f"{name:<22}{scenes:<8}{backend:<8}{n:>7}{n / t_dec:>12.1f}{n / t_path:>10.1f}"
                  f"{t_dec / t_path:>13.3f}{uss / 1e6:>18.0f} MB / {rss / 1e6:.0f} MB")
        print("\nframes kept per stage (sampled -> motion -> stage1 -> stage2 -> stage3 -> selected)")
        for name, scenes, *_, c, _ms in rows:
            st = c["stages"]
            print(f"{name:<22}{scenes:<8}{c['candidates']} -> {c['candidates'] - c['motion_dropped']} -> "
                  f"{st['stage1']['kept']} -> {st['stage2']['kept']} -> {st['stage3']['kept']} -> "
                  f"{st['stage3']['selected']}")
        print("\nper stage: frames in, passed (share), analysers' mean ms per frame")
        for name, scenes, *_, c, ms in rows:
            st = c["stages"]
            parts = []
            for stage in ("stage1", "stage2"):
                n_in, kept = st[stage]["in"], st[stage]["kept"]
                share = f"{kept / n_in:.0%}" if n_in else "-"
                parts.append(f"{stage} {n_in} in, {kept} passed ({share}), {ms[stage]:.1f} ms/frame")
            print(f"{name:<22}{scenes:<8}" + "; ".join(parts))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
