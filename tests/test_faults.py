"""Worker deaths: a killed actor is restarted and its batch retried; a file that kills a worker twice
becomes an error row and the run goes on (raycurate/faults.py)."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from raycurate.faults import KILL_LIMIT, CrashLedger, guarded

from .conftest import DATA, IMAGES


class Died(BaseException):
    """Stands in for a worker's death in the pure-Python tests."""


def _run_until_done(ledger, keys, poison, deaths_before_ok=None):
    """Call guarded() the way Ray retries a task: again after every death, until it returns."""
    attempts, deaths = 0, 0
    seen = []

    def process(indices):
        out = []
        for i in indices:
            if keys[i] in poison:
                raise Died(keys[i])
            if deaths_before_ok and deaths_before_ok.get(keys[i], 0) > 0:
                deaths_before_ok[keys[i]] -= 1
                raise Died(keys[i])
            seen.append(keys[i])
            out.append(f"ok:{keys[i]}")
        return out

    while True:
        attempts += 1
        try:
            return guarded(ledger, "decode", keys, process, lambda i: f"crashed:{keys[i]}"), attempts, deaths
        except Died:
            deaths += 1
            assert attempts < 20, "guarded() did not end the retry loop"


def test_a_file_that_kills_twice_becomes_an_error_and_its_batch_mates_are_kept():
    ledger = CrashLedger()
    keys = [f"f{i}.jpg" for i in range(6)]
    out, attempts, deaths = _run_until_done(ledger, keys, poison={"f2.jpg", "f4.jpg"})
    assert out == ["ok:f0.jpg", "ok:f1.jpg", "crashed:f2.jpg", "ok:f3.jpg", "crashed:f4.jpg", "ok:f5.jpg"]
    # the batch's death, then each poison file's own death when tried alone: 3 deaths, 4 attempts
    assert deaths == 3 and attempts == 4
    report = ledger.report()
    assert report["crashed_files"] == 2 and [c["item"] for c in report["crashed"]] == ["f2.jpg", "f4.jpg"]
    assert report["kill_limit"] == KILL_LIMIT == 2


def test_one_death_is_a_retry_not_an_error():
    ledger = CrashLedger()
    keys = ["a", "b", "c"]
    out, attempts, deaths = _run_until_done(ledger, keys, poison=set(), deaths_before_ok={"b": 1})
    assert out == ["ok:a", "ok:b", "ok:c"] and deaths == 1 and attempts == 2
    assert ledger.report()["retried_batches"] == 1 and ledger.report()["crashed_files"] == 0
    # a batch that ended is forgotten: the same keys later are a fresh batch
    out, attempts, deaths = _run_until_done(ledger, keys, poison=set())
    assert out == ["ok:a", "ok:b", "ok:c"] and attempts == 1


def test_without_a_ledger_the_batch_is_just_processed():
    assert guarded(None, "x", ["a", "b"], lambda idx: [i * 10 for i in idx], lambda i: None) == [0, 10]


# ---------------------------------------------------------------------------------------------
# The real thing: a run on a local Ray whose workers SIGKILL themselves (RAYCURATE_TEST_KILL).
# ---------------------------------------------------------------------------------------------

ARGS = ["--set", "decode.batch_size=4", "--set", "decode.rows_per_write=4", "--set", "analyzers.face.enabled=false",
        "--set", "analyzers.nsfw.enabled=false", "--set", "filter.min_faces=null", "--set", "ray.num_cpus=2"]


def _run(tmp_path, inp, kill_rule, extra=()):
    out = tmp_path / "out"
    env = {**os.environ, "RAYCURATE_TEST_KILL": kill_rule, "RAYCURATE_TEST_KILL_DIR": str(tmp_path)}
    env.pop("RAY_ADDRESS", None)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "raycurate.cli", "run", str(inp), "--out", str(out), *ARGS, *extra],
                          env=env, capture_output=True, text=True, timeout=420)
    seconds = time.perf_counter() - t
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out, json.loads((out / "manifest.json").read_text()), seconds


def _rows(db, table="images"):
    import lancedb

    return lancedb.connect(str(db)).open_table(table).to_arrow().to_pylist()


@pytest.mark.slow   # a subprocess run (19 s)
def test_killed_actor_restarts_and_a_poison_file_becomes_an_error_row(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    photos = sorted(p for d in ("faces", "negatives", "face_recognition")
                    for p in (IMAGES / d).iterdir() if p.suffix in (".jpg", ".png"))[:11]
    for p in photos:
        (inp / p.name).write_bytes(p.read_bytes())
    poison = inp / "poison.jpg"             # a file that crashes the decoder's native code, every time
    poison.write_bytes(photos[0].read_bytes() + b"poison")
    victim = photos[5].name                 # the quality actor dies once while this file's batch is in it
    out, manifest, seconds = _run(tmp_path, inp, f"decode:poison.jpg;quality:{victim}:once")

    rows = _rows(out / "db")
    uris = [r["uri"] for r in rows]
    assert len(photos) == 11
    assert len(rows) == 12 and len(set(uris)) == 12, "every file is one row: nothing lost, nothing twice"
    by_name = {os.path.basename(r["uri"]): r for r in rows}
    assert by_name["poison.jpg"]["error"].startswith("WorkerDied: a worker died twice while decoding")
    for name, r in by_name.items():
        if name != "poison.jpg":
            assert r["error"] is None and r["quality_error"] is None and r["quality_sharpness"] is not None, name
    assert by_name[victim]["quality_sharpness"] is not None         # its batch was retried on a new actor
    faults = manifest["faults"]["images"]
    print(f"faults: {faults} ({seconds:.1f} s)")
    assert faults["crashed_files"] == 1 and faults["crashed"] == [{"scope": "decode", "item": str(poison)}]
    assert faults["retried_batches"] >= 2      # the poison's decode batch and the quality actor's batch
    assert any(e["uri"] == str(poison) and "WorkerDied" in e["error"] for e in manifest["errors"])
    assert manifest["counts"]["decode_errors"] == 1


@pytest.mark.slow   # a subprocess run (28 s)
def test_a_video_that_kills_its_decoder_twice_is_an_error_and_the_other_videos_go_on(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    for name in ("counter.mp4", "testvideo.mp4"):
        (inp / name).write_bytes((DATA / "videos" / name).read_bytes())
    out, manifest, seconds = _run(tmp_path, inp, "video:counter.mp4",
                                  extra=["--preset", "youtube", "--set", "video.max_frames=6"])
    videos = {os.path.basename(r["uri"]): r for r in _rows(out / "db", "videos")}
    assert videos["counter.mp4"]["error"].startswith("WorkerDied: a worker died twice while decoding")
    assert videos["testvideo.mp4"]["error"] is None and videos["testvideo.mp4"]["frames_decoded"] > 0
    frames = _rows(out / "db", "frames")
    assert frames and {os.path.basename(f["video_uri"]) for f in frames} == {"testvideo.mp4"}
    faults = manifest["faults"]["video"]
    print(f"video faults: {faults} ({seconds:.1f} s)")
    assert faults["crashed_files"] == 1 and faults["crashed"][0]["scope"] == "video"


def test_a_hold_writes_its_marker_sleeps_and_goes_on_once_the_marker_is_removed(tmp_path):
    """RAYCURATE_TEST_HOLD: the worker that reaches a matching item says so (a marker: the key, its pid) and
    sleeps; other scopes and items pass at once; removing the marker lets it go on."""
    from raycurate.faults import fault_point, hold_marker

    env = {**os.environ, "RAYCURATE_TEST_HOLD": "decode:b.jpg;quality:c.jpg", "RAYCURATE_TEST_KILL_DIR": str(tmp_path)}
    code = ("import sys; from raycurate.faults import fault_point\n"
            "fault_point('quality', ['/in/b.jpg']); fault_point('decode', ['/in/a.jpg'])\n"
            "print('passed', flush=True)\n"
            "fault_point('decode', ['/in/a.jpg', '/in/b.jpg']); print('went on', flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "passed"   # another scope's item, an item that does not match
        marker = Path(hold_marker(str(tmp_path), "decode", "b.jpg"))
        deadline = time.time() + 30
        while not marker.exists():
            assert proc.poll() is None and time.time() < deadline, "no marker"
            time.sleep(0.05)
        assert json.loads(marker.read_text()) == {"scope": "decode", "match": "b.jpg", "key": "/in/b.jpg",
                                                  "pid": proc.pid}
        time.sleep(0.5)
        assert proc.poll() is None   # held
        marker.unlink()
        assert proc.stdout.readline().strip() == "went on" and proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    fault_point("decode", ["/in/b.jpg"])   # this process has no RAYCURATE_TEST_HOLD: nothing happens
