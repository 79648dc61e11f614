#!/usr/bin/env python
"""Kill test: a run killed with SIGKILL at random moments and started again ends where one uninterrupted run
ends: no row lost, no row twice, the same exported set.

What it runs (the machinery is tests/kill_pile.py, kill_runs.py and kill_compare.py, shared with
tests/test_kill.py):

1. A pile in a temp folder: ``--photos`` (default 100) distinct photos (those of tests/data/images, then
   rescaled, cropped and re-encoded JPEG copies), 10 exact copies of them under other names in other folders,
   5 broken files (truncated JPEG and PNG, zero-byte .jpg, random bytes named .png, a text named .jpg), the 6
   clips of tests/data/videos and one of them again under another name in another folder.
2. ``python -m raycurate.cli run PILE --out OUT_clean --profile fast-cpu --set video.max_frames=4 --set
   decode.rows_per_write=8`` (the default profile's analysers with lighter models and frames; the photos' rows
   stored 8 at a time, so that a kill finds them half stored; ``--args`` replaces the options), timed; then
   the same command on a copy of OUT_clean (nothing to analyse), timed.
3. Into OUT_killed, ``--kills`` (default 10) starts of the same command, each killed with SIGKILL: odd ones
   the driver (its process group, then whatever is left of its session: the local Ray it started), even ones
   one random Ray worker of the run (a ``ray::`` process of its pipeline: a decoding task or an analyser's
   actor; raycurate's bookkeeping actors only while there is none; never an idle worker nor Ray's own).
   When: before start ``n``, ``left`` is the share of the clean run's images and frames rows OUT_killed's DB
   lacks, and the window ``W`` = ``left`` x the clean run's analysis time (its manifest's video path and
   image path) x 2 / (``r`` + 1), ``r`` the starts left (this one included): the analysis still to do,
   spread over the kills still to come. The kill comes ``u`` x ``W`` after the start's pipeline has Ray
   workers at work; with nothing left, ``u`` x the unchanged rerun's time after the start. After a worker
   kill the run goes on for at most ``v`` x ``W`` (nothing left: ``v`` x the clean run's time), then its
   session is killed. ``u``, ``v``: uniform over 0.05..0.9, drawn with ``--seed``. After each kill: the rows
   of each table and the keys held twice. Then one uninterrupted run, which must exit 0.
4. OUT_killed against OUT_clean: rows per table; keys held by two rows (images: id, frames and stage3:
   (video_id, frame_index), videos: (video_id, segment), videos_done: video_id, files: uri, faces: face_id);
   rows lost or extra (images ids, frames (video_id, frame_index), faces face_id); the duplicate marks of
   images and frames (``duplicate_of`` per row); the ids of metadata.jsonl; OUT/images (names and bytes); the
   names of the files table (:func:`raycurate.ingest.names_of`).

Exit 0 only when every check passes. ``--json FILE``: the details (every kill, every lost or extra key).
``--keep``: leave the temp folder (its path is printed). The runs' output goes to WORK/runs.log.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this checkout's raycurate and tests/kill_*

from tests.kill_compare import Check, as_json, compare, kill_header  # noqa: E402
from tests.kill_pile import build_pile  # noqa: E402
from tests.kill_runs import killed_runs, measure_clean, run_command  # noqa: E402

ARGS = "--profile fast-cpu --set video.max_frames=4 --set decode.rows_per_write=8"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--photos", type=int, default=100)
    ap.add_argument("--args", default=ARGS, help=f"options of every run (default: {ARGS!r})")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    a = ap.parse_args(argv)
    t_all = time.time()
    tmp = tempfile.TemporaryDirectory(prefix="kill_test_")
    work = Path(tmp.name)
    if a.keep:
        tmp._finalizer.detach()   # noqa: SLF001 (left for the user to look at)
    try:
        return _run(a, work, t_all)
    finally:
        print(f"work folder: {work}" + ("" if a.keep else " (removed)"))
        if not a.keep:
            tmp.cleanup()


def _run(a: argparse.Namespace, work: Path, t_all: float) -> int:
    pile = build_pile(work / "pile", photos=a.photos, seed=a.seed)
    print(f"pile: {pile.photos} photos, {pile.duplicates} exact copies, {pile.broken} broken files, "
          f"{pile.videos} clips + {pile.video_copies} copy")
    args, log = shlex.split(a.args), work / "runs.log"
    clean_out, killed_out = str(work / "OUT_clean"), str(work / "OUT_killed")
    clean = measure_clean(pile.root, clean_out, args, log)
    print(f"clean run: exit {clean.rc}, {clean.wall_s:.1f} s, Ray workers at work after {clean.workers_s or 0:.1f} s, "
          f"analysis {clean.analysis_s:.1f} s; an unchanged rerun {clean.rerun_s:.1f} s  "
          f"({' '.join(run_command('PILE', 'OUT', args)[1:])})")
    if clean.rc != 0:
        print(f"FAIL: the clean run exited {clean.rc} (see {log})")
        return 1
    print(f"kills: {a.kills}, seed {a.seed}")
    print(kill_header())
    kills, final_rc = killed_runs(run_command(pile.root, killed_out, args),
                                           str(Path(killed_out) / "db"), clean, kills=a.kills, seed=a.seed, log=log)
    checks = [Check("final run exits 0", final_rc == 0, f"exit {final_rc}")]
    checks += compare(clean_out, killed_out)
    for c in checks:
        print(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
    ok = all(c.ok for c in checks)
    total = time.time() - t_all
    print(f"{'PASS' if ok else 'FAIL'}: {sum(c.ok for c in checks)} of {len(checks)} checks; "
          f"{len(kills)} kills; {total / 60:.1f} min")
    if a.json:
        Path(a.json).write_text(json.dumps(as_json(pile=pile, kills=kills, checks=checks, clean=clean, seed=a.seed,
                                                            args=args, minutes=round(total / 60, 1)),
                                           indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
