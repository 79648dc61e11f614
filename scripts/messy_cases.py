"""Messy-pile cases of issue 21, run through a checkout's own CLI: the before/after measurement.

Run from a raycurate checkout's root (its tests/data is the source of the small piles):

    python scripts/messy_cases.py [--checkout DIR] [--cases 1,4] [--json FILE] [--timeout S]

Each case builds its input folders in a fresh temporary directory, runs
``sys.executable -m raycurate.cli ...`` with cwd = the checkout (so that checkout's raycurate is the
one imported), and prints one line saying what happened; --json writes the details. Every CLI starts
in its own session; one that outlives its timeout is killed with its whole group (SIGKILL) and reported
'hung', and processes a run leaves behind in its session are killed and counted ('left N').
Cases: 1 same video twice, 2 directory symlink loop, 3 OUT inside INPUT, 4 the same command again,
5 two runs on one OUT at once, 6 Ctrl-C / SIGTERM, 7 damaged DB, 8 odd entries, 9 unchanged rerun time.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

FAST = ["--profile", "fast-cpu", "--set", "analyzers.nsfw.enabled=false"]
# As tests/test_resume.py: slow enough to be caught half-way, rows stored four at a time.
SLOW = ["--set", "decode.rows_per_write=4", "--set", "decode.batch_size=4", "--set", "analyzers.nsfw.enabled=false",
        "--set", "video.enabled=false", "--set", "filter.min_faces=null", "--set", "analyzers.face.detector=opencv_haar"]
LIVE: dict[int, subprocess.Popen] = {}   # pid (= session and group id) -> the CLI still running


class Ctx:
    def __init__(self, checkout: Path, tmp: Path, timeout: float):
        self.checkout, self.tmp, self.timeout, self.n = checkout, tmp, timeout, 0
        self.data = checkout / "tests" / "data"

    def start(self, args: list[str]) -> tuple[subprocess.Popen, Path]:
        self.n += 1
        log = self.tmp / f"cmd{self.n}"
        cmd = [sys.executable, "-m", "raycurate.cli", *map(str, args)]
        with open(f"{log}.out", "wb") as so, open(f"{log}.err", "wb") as se:
            proc = subprocess.Popen(cmd, cwd=self.checkout, stdout=so, stderr=se, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        LIVE[proc.pid] = proc
        proc.started, proc.cmd = time.monotonic(), cmd
        return proc, log

    def finish(self, proc: subprocess.Popen, log: Path, timeout: float | None = None) -> dict:
        """Wait for the CLI (SIGKILL to its group on timeout), clean its session, read its output."""
        hung = False
        try:
            proc.wait(timeout=(timeout or self.timeout) - (time.monotonic() - proc.started))
        except subprocess.TimeoutExpired:
            hung = True
            kill_group(proc.pid)
            proc.wait()
        wall = time.monotonic() - proc.started
        left = reap_session(proc.pid)
        LIVE.pop(proc.pid, None)
        out = Path(f"{log}.out").read_text(errors="replace")
        err = Path(f"{log}.err").read_text(errors="replace")
        lines = [ln for ln in err.splitlines() if ln.strip()]
        tb = "Traceback (most recent call last)" in err
        exc = next((ln.strip() for ln in reversed(lines) if re.match(r"\s*[\w.]+(Error|Exception|Interrupt)\b", ln)),
                   None) if tb else None
        return {"cmd": " ".join(proc.cmd[3:]), "rc": "hung" if hung else proc.returncode, "wall_s": round(wall, 1),
                "traceback": tb, "exception": exc, "stderr_lines": len(lines),
                "first_err": lines[0][:150] if lines else "", "left_behind": left,
                "kept": _kept(out),
                "listed": _listed(err), "stderr_tail": lines[-5:], "stdout_tail": out.splitlines()[-3:]}

    def run(self, *args, timeout: float | None = None) -> dict:
        return self.finish(*self.start(list(args)), timeout=timeout)


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def reap_session(sid: int, wait: float = 15.0) -> int:
    """Processes still in the CLI's session after it ended: wait a little, then SIGKILL them; how many."""
    deadline, pids = time.monotonic() + wait, []
    while time.monotonic() < deadline:
        pids = subprocess.run(["pgrep", "-s", str(sid)], capture_output=True, text=True).stdout.split()
        if not pids:
            return 0
        time.sleep(0.5)
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(pids)


def _kept(out: str) -> str | None:
    """The summary line 'kept X of Y images (...), exported Z', without the path."""
    m = re.search(r"kept\s+\d+ of \d+[^\n]*?(?= ->|$)", out, re.M)
    return re.sub(r"\s+", " ", m.group(0)) if m else None


def _listed(err: str) -> int | None:
    m = re.search(r"\[raycurate\] (\d+) files", err)
    return int(m.group(1)) if m else None


def brief(r: dict) -> str:
    """rc, traceback (with its exception) or the last stderr line, and what was left behind."""
    rc = r["rc"]
    s = f"rc {rc}" + (f" (killed by {signal.Signals(-rc).name})" if isinstance(rc, int) and rc < 0 else "")
    if r["traceback"]:
        s += f", traceback ({(r['exception'] or '?')[:110]})"
    elif rc not in (0, "hung") and r["stderr_tail"]:
        s += f", last stderr line '{r['stderr_tail'][-1][:110]}'"
    return s + (f", left {r['left_behind']} processes" if r["left_behind"] else "")


def manifest(out: Path) -> dict | None:
    try:
        return json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def photos(ctx: Ctx, dest: Path, n: int, dirs=("faces", "face_recognition", "exif")) -> list[Path]:
    """n photos (jpg/png) from tests/data/images, faces first."""
    dest.mkdir(parents=True, exist_ok=True)
    src = [p for d in dirs for p in sorted((ctx.data / "images" / d).iterdir()) if p.suffix in (".jpg", ".png")]
    for p in src[:n]:
        shutil.copy2(p, dest / p.name)
    return [dest / p.name for p in src[:n]]


def slow_pile(ctx: Ctx, dest: Path) -> int:
    """48 distinct files as tests/test_resume.py: 12 photos, 4 copies each with different trailing bytes."""
    dest.mkdir(parents=True)
    src = sorted(p for d in ("faces", "face_recognition", "negatives") for p in (ctx.data / "images" / d).iterdir()
                 if p.suffix in (".jpg", ".png"))[:12]
    for p in src:
        for k in range(4):
            (dest / f"{p.stem}_{k}{p.suffix}").write_bytes(p.read_bytes() + b"\0" * (k + 1))
    return len(src) * 4


def tables(db: Path, inp: Path) -> dict:
    """Rows of the images, frames, stage3 and videos tables, counted by the video (or name) they belong to."""
    import lancedb

    rel = lambda u: os.path.relpath(u, inp) if u and u.startswith(str(inp)) else (u or "-")  # noqa: E731
    conn, res = lancedb.connect(str(db)), {}
    for name, cols in (("images", ["uri", "source_video_uri"]), ("frames", ["video_uri", "video_id"]),
                       ("stage3", ["video_id", "selected", "frame_path"]), ("videos", ["uri", "video_id"])):
        try:
            rows = conn.open_table(name).to_arrow().select(cols).to_pylist()
        except Exception as e:  # noqa: BLE001 - a missing or unreadable table is a result
            res[name] = {"error": f"{type(e).__name__}: {str(e)[:100]}"}
            continue
        if name == "images":
            by = Counter(rel(r["source_video_uri"]) if r["source_video_uri"] else "photos" for r in rows)
            res[name] = {"rows": len(rows), "by": dict(by),
                         "winner_names": sorted(os.path.basename(r["uri"]) for r in rows if r["source_video_uri"])}
        elif name == "frames":
            res[name] = {"rows": len(rows), "by": dict(Counter(f"{rel(r['video_uri'])}@{r['video_id'][:8]}"
                                                               for r in rows))}
        elif name == "stage3":
            sel = [r for r in rows if r["selected"]]
            res[name] = {"rows": len(rows), "winners": len(sel), "by": dict(Counter(r["video_id"][:8] for r in sel)),
                         "winner_files": sorted(os.path.basename(r["frame_path"] or "-") for r in sel)}
        else:
            res[name] = {"rows": len(rows), "by": dict(Counter(f"{rel(r['uri'])}@{r['video_id'][:8]}" for r in rows))}
    return res


def image_ids(db: Path) -> list[str]:
    import lancedb

    try:
        return lancedb.connect(str(db)).open_table("images").to_arrow().column("id").to_pylist()
    except Exception:  # noqa: BLE001 - not created yet
        return []


def fmt_counts(t: dict) -> str:
    if "error" in t:
        return t["error"]
    by = ", ".join(f"{k} {v}" for k, v in sorted(t["by"].items()))
    return f"{t['rows']} rows [{by}]"


# ---------------------------------------------------------------------------------------------- cases
def case1(ctx: Ctx) -> tuple[str, dict]:
    inp, out = ctx.tmp / "in", ctx.tmp / "out"
    for sub in ("sub1", "sub2"):
        (inp / sub).mkdir(parents=True)
        shutil.copy2(ctx.data / "videos" / "faces_two_shots.mp4", inp / sub / "clip.mp4")
    photos(ctx, inp, 2)
    first = ctx.run("run", inp, "--out", out)
    t = tables(out / "db", inp)
    again = ctx.run("run", inp, "--out", out)
    im = t["images"]
    names = im.get("winner_names", [])
    winners = f"{im['by']} ({len(names)} winner rows, {len(set(names))} distinct names)" if "by" in im else im
    line = (f"{brief(first)}, manifest {'yes' if manifest(out) else 'no'}; image rows by video {winners}; "
            f"frames {fmt_counts(t['frames'])}; stage3 winners {t['stage3'].get('winners', t['stage3'])}; "
            f"videos {fmt_counts(t['videos'])}; again: {brief(again)}")
    return line, {"first": first, "tables": t, "again": again}


def case2(ctx: Ctx) -> tuple[str, dict]:
    inp, out = ctx.tmp / "in", ctx.tmp / "out"
    n = len(photos(ctx, inp, 10))
    (inp / "d").mkdir()
    os.symlink("..", inp / "d" / "up")
    r = ctx.run("run", inp, "--out", out, *FAST)
    m = manifest(out)
    listed = m["input"]["files"] if m else r["listed"]
    return f"{n} photos + d/up -> ..: listed {listed} files, {brief(r)}, '{r['kept']}'", {"photos": n, "listed": listed, "run": r}


def case3(ctx: Ctx) -> tuple[str, dict]:
    inp = ctx.tmp / "in"
    n = len(photos(ctx, inp, 10))
    runs = [ctx.run("run", inp, "--out", inp / "out", *FAST) for _ in range(2)]
    m = manifest(inp / "out")
    listed = [r["listed"] for r in runs]
    return (f"{n} photos, --out INPUT/out: run 1 {brief(runs[0])}; run 2 {brief(runs[1])}; files listed {listed}"
            f", kept {[r['kept'] for r in runs]}{'' if m else '; no manifest'}", {"photos": n, "runs": runs, "listed": listed})


def case4(ctx: Ctx) -> tuple[str, dict]:
    inp, out = ctx.tmp / "in", ctx.tmp / "out"
    n = len(photos(ctx, inp, 15))
    lines, runs = [], []
    for _ in range(2):
        runs.append(ctx.run("run", inp, "--out", out))
        meta = out / "metadata.jsonl"
        lines.append(len(meta.read_text().splitlines()) if meta.exists() else None)
    images = len(list((out / "images").glob("*"))) if (out / "images").exists() else 0
    train = {d.name: len(list(d.glob("*.*"))) for d in sorted((out / "train").glob("*"))} if (out / "train").exists() \
        else {}
    return (f"{n} photos: run 1 {brief(runs[0])} '{runs[0]['kept']}'; run 2 {brief(runs[1])} '{runs[1]['kept']}'; "
            f"metadata.jsonl lines {lines[0]} -> {lines[1]}; after run 2 images/ {images} files, train/ {train}",
            {"photos": n, "runs": runs, "metadata_lines": lines, "images_files": images, "train_files": train})


def case5(ctx: Ctx) -> tuple[str, dict]:
    inp, out = ctx.tmp / "in", ctx.tmp / "out"
    total = slow_pile(ctx, inp)
    args = ["run", inp, "--out", out, *SLOW]
    a = ctx.start(args)
    time.sleep(3)
    b = ctx.start(args)
    ra, rb = ctx.finish(*a, timeout=3 * ctx.timeout), ctx.finish(*b, timeout=3 * ctx.timeout)
    third = ctx.run(*args, timeout=3 * ctx.timeout)
    ids = image_ids(out / "db")
    first = lambda r: r["first_err"][:100]  # noqa: E731
    return (f"{total} photos, two runs 3 s apart: A {brief(ra)} (stderr 1: '{first(ra)}'); B {brief(rb)} "
            f"(stderr 1: '{first(rb)}'); third run {brief(third)}; rows {len(ids)} ({len(set(ids))} distinct)",
            {"a": ra, "b": rb, "third": third, "rows": len(ids), "distinct_rows": len(set(ids)), "photos": total})


def _interrupt(ctx: Ctx, inp: Path, out: Path, sig: int) -> dict:
    """Start a slow run, send sig to its group once rows are being stored (or after 60 s), wait for it."""
    proc, log = ctx.start(["run", inp, "--out", out, *SLOW])
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60 and proc.poll() is None and len(image_ids(out / "db")) < 4:
        time.sleep(0.5)
    rows_at_signal, sent_at, ended = len(image_ids(out / "db")), round(time.monotonic() - t0, 1), proc.poll()
    if ended is None:
        os.killpg(proc.pid, sig)
    r = ctx.finish(proc, log, timeout=time.monotonic() - proc.started + 90)   # 90 s to stop after the signal
    return {**r, "signal_at_s": sent_at, "rows_at_signal": rows_at_signal, "ended_before_signal": ended is not None}


def case6(ctx: Ctx) -> tuple[str, dict]:
    inp = ctx.tmp / "in"
    total = slow_pile(ctx, inp)
    out = ctx.tmp / "out_int"
    ri = _interrupt(ctx, inp, out, signal.SIGINT)
    again = ctx.run("run", inp, "--out", out, *SLOW)
    ids = image_ids(out / "db")
    rt = _interrupt(ctx, inp, ctx.tmp / "out_term", signal.SIGTERM)
    return (f"SIGINT at {ri['signal_at_s']} s ({ri['rows_at_signal']} rows stored): {brief(ri)}, "
            f"{ri['stderr_lines']} stderr lines; rerun {brief(again)}, rows {len(ids)} ({len(set(ids))} distinct, "
            f"of {total}); SIGTERM at {rt['signal_at_s']} s: {brief(rt)}, {rt['stderr_lines']} stderr lines",
            {"sigint": ri, "rerun": again, "rows": len(ids), "distinct_rows": len(set(ids)), "photos": total,
             "sigterm": rt})


def _damage_commands(ctx: Ctx, inp: Path, out: Path, id_prefix: str) -> dict:
    db = out / "db"
    return {"export": ctx.run("export", db, "--out", out.parent / f"{out.name}_export"),
            "search": ctx.run("search", db, "--id", id_prefix),
            "report": ctx.run("report", db),
            "identities": ctx.run("identities", db),
            "run": ctx.run("run", inp, "--out", out, *FAST)}


def case7(ctx: Ctx) -> tuple[str, dict]:
    inp, out = ctx.tmp / "in", ctx.tmp / "out"
    photos(ctx, inp, 4)
    first = ctx.run("run", inp, "--out", out, *FAST)
    ids = image_ids(out / "db")
    if first["rc"] != 0 or not ids:
        return f"the first run failed: {brief(first)}", {"first": first}
    a, b = ctx.tmp / "out_a", ctx.tmp / "out_b"
    shutil.copytree(out, a, symlinks=True)
    shutil.copytree(out, b, symlinks=True)
    removed = max((a / "db" / "images.lance" / "data").iterdir(), key=lambda p: p.stat().st_mtime)  # the last write
    removed.unlink()
    garbled = max((b / "db" / "images.lance" / "_versions").glob("*.manifest"), key=lambda p: p.stat().st_mtime)
    garbled.write_bytes(b"garbage, not a lance manifest\n" * 10)
    res = {"first": first, "removed": removed.name, "garbled": garbled.name,
           "a_data_file_removed": _damage_commands(ctx, inp, a, ids[0][:8]),
           "b_version_garbled": _damage_commands(ctx, inp, b, ids[0][:8])}
    parts = []
    for key, label in (("a_data_file_removed", "(a) data file removed"), ("b_version_garbled", "(b) manifest garbled")):
        cmds = "; ".join(f"{c} rc {r['rc']}, traceback {'yes' if r['traceback'] else 'no'}, '{r['first_err'][:150]}'"
                         + (f" [{r['exception'][:100]}]" if r["exception"] else "") for c, r in res[key].items())
        parts.append(f"{label}: {cmds}")
    return " | ".join(parts), res


def case8(ctx: Ctx) -> tuple[str, dict]:
    inp, out = ctx.tmp / "in", ctx.tmp / "out"
    n = len(photos(ctx, inp, 5))
    os.symlink("missing.jpg", inp / "dangling.jpg")
    os.symlink("loop_b.jpg", inp / "loop_a.jpg")
    os.symlink("loop_a.jpg", inp / "loop_b.jpg")
    os.mkfifo(inp / "pipe.jpg")
    r = ctx.run("run", inp, "--out", out, *FAST, timeout=min(ctx.timeout, 180))
    text = (out / "manifest.json").read_text() if (out / "manifest.json").exists() else ""
    seen = {name: name in text for name in ("dangling.jpg", "loop_a.jpg", "loop_b.jpg", "pipe.jpg")}
    hung = r["rc"] == "hung"
    return (f"{n} photos + dangling link, link loop, FIFO: {brief(r)}, hangs {'yes' if hung else 'no'}, "
            f"listed {r['listed']} files, in manifest.json: {seen if text else 'no manifest'}",
            {"photos": n, "run": r, "in_manifest": seen, "manifest_written": bool(text)})


def case9(ctx: Ctx) -> tuple[str, dict]:
    inp, out = ctx.tmp / "sample", ctx.tmp / "out"
    shutil.copytree(ctx.data, inp)
    runs, what = [], []
    for _ in range(2):
        runs.append(ctx.run("run", inp, "--out", out, timeout=4 * ctx.timeout))
        m = manifest(out) or {}
        i, c = m.get("input", {}), m.get("counts", {})
        what.append(f"{i.get('images')} images + {i.get('videos')} videos listed, {c.get('rows_written')} rows "
                    f"written ({c.get('video_frames')} video frames)")
    return (f"bundled sample twice into one OUT: run 1 {runs[0]['wall_s']} s {brief(runs[0])} '{runs[0]['kept']}', "
            f"{what[0]}; run 2 {runs[1]['wall_s']} s {brief(runs[1])} '{runs[1]['kept']}', {what[1]}",
            {"runs": runs, "wall_s": [r["wall_s"] for r in runs], "manifest_counts": what})


CASES = {1: case1, 2: case2, 3: case3, 4: case4, 5: case5, 6: case6, 7: case7, 8: case8, 9: case9}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkout", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("--cases", default=",".join(map(str, CASES)), help="e.g. 1,4 (default: all)")
    ap.add_argument("--json", type=Path, help="write the details here")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per CLI call (cases 5, 9: more)")
    args = ap.parse_args(argv)
    checkout = args.checkout.resolve()
    imported = subprocess.run([sys.executable, "-c", "import raycurate; print(raycurate.__file__)"], cwd=checkout,
                              capture_output=True, text=True).stdout.strip()
    if not imported.startswith(str(checkout)):
        print(f"warning: raycurate imported from {imported}, not {checkout}", file=sys.stderr)
    details = {"checkout": str(checkout), "raycurate": imported, "cases": {}}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        for n in (int(c) for c in args.cases.split(",") if c.strip()):
            t0 = time.monotonic()
            with tempfile.TemporaryDirectory(prefix=f"messy{n}-") as tmp:
                try:
                    line, info = CASES[n](Ctx(checkout, Path(tmp), args.timeout))
                    line = f"case {n}: {line}"
                except Exception as e:  # noqa: BLE001 - the script goes on with the next case
                    line, info = f"case {n}: script error: {type(e).__name__}: {e}", {}
                finally:
                    for pid in list(LIVE):
                        kill_group(pid)
                        reap_session(pid, wait=0)
                        LIVE.pop(pid).wait()
            print(line, flush=True)
            details["cases"][str(n)] = {"line": line, "case_s": round(time.monotonic() - t0, 1), **info}
            if args.json:
                args.json.write_text(json.dumps(details, indent=1, default=str))
    finally:
        for pid in list(LIVE):   # interrupted: no CLI left running
            kill_group(pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
