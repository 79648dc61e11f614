"""A run killed with SIGKILL half-way is resumed by running it again: nothing stored twice, nothing lost."""
import json
import os
import signal
import subprocess
import sys
import time

from raycurate.cli import main

from .conftest import IMAGES

N_COPIES = 4
# Rows decoded and stored four at a time, so that the table grows while the run goes on; two CPUs whatever the
# machine: one fused pool of two actors, fed the files in the listing's order (sorted by uri), one batch each
# at a time. A run is stopped half-way by holding it (:func:`hold_env`), not by being slow.
ARGS = ["--set", "decode.rows_per_write=4", "--set", "decode.batch_size=4", "--set", "analyzers.nsfw.enabled=false",
        "--set", "video.enabled=false", "--set", "filter.min_faces=null", "--set", "analyzers.face.detector=opencv_haar",
        "--set", "ray.num_cpus=2"]
BATCH = 4   # decode.batch_size


def _images(folder):
    """48 distinct files: 12 real photos, 4 copies each with different trailing bytes (new content ids)."""
    folder.mkdir()
    sources = sorted(p for d in ("faces", "face_recognition", "negatives") for p in (IMAGES / d).iterdir()
                     if p.suffix in (".jpg", ".png"))[:12]
    for p in sources:
        data = p.read_bytes()
        for k in range(N_COPIES):
            (folder / f"{p.stem}_{k}{p.suffix}").write_bytes(data + b"\0" * (k + 1))
    return len(sources) * N_COPIES


def _stored(db):
    import lancedb

    try:
        table = lancedb.connect(str(db)).open_table("images")
    except Exception:   # not created yet
        return []
    return table.search().select(["uri", "run_id"]).limit(None).to_list()


def hold_env(inp, db, markers, *, first: int) -> tuple[dict[str, str], list[str]]:
    """The environment of a run that holds (``RAYCURATE_TEST_HOLD``, raycurate/faults.py) on every other batch
    of the files it has still to do, from the batch at ``first`` (a multiple of :data:`BATCH`): the ``first``
    files before it go through and are stored, the held batches are not (a worker that reaches a held file
    sleeps until it is killed), so the run never ends and always leaves files for the next one. Each held
    worker writes a marker in ``markers``. The environment and the held uris."""
    todo = sorted({str(p) for p in inp.iterdir()} - {r["uri"] for r in _stored(db)})
    held = todo[first::2 * BATCH]
    assert held, f"{len(todo)} files left: nothing to hold"
    markers.mkdir()
    env = {**os.environ, "RAYCURATE_TEST_HOLD": ";".join(f"decode:{uri}" for uri in held),
           "RAYCURATE_TEST_KILL_DIR": str(markers)}
    env.pop("RAY_ADDRESS", None)   # its own local Ray, whose workers get this environment
    return env, held


def held(markers) -> list[str]:
    """The uris the run's workers hold on now (their markers, each written whole)."""
    return [json.loads(p.read_text())["key"] for p in markers.glob("hold-*.json")]


def _assert_group_gone(pgid, timeout=15.0):
    """A killed driver's local Ray processes are in its process group and die with it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    left = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True).stdout.split()
    raise AssertionError(f"processes of the killed run left: {left}")


def test_sigkill_half_way_then_resume(tmp_path, ray_session):
    inp, out = tmp_path / "in", tmp_path / "out"
    total = _images(inp)
    cmd = [sys.executable, "-m", "raycurate.cli", "run", str(inp), "--out", str(out), *ARGS]
    # held from the third batch on: the first two (8 files) are stored, the held batches never are
    env, holds = hold_env(inp, out / "db", tmp_path / "held", first=2 * BATCH)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env=env)
    deadline = time.time() + 240
    try:   # a condition, not a race: the held run cannot end, and its first 8 rows do arrive
        while not (held(tmp_path / "held") and len(_stored(out / "db")) >= 8):
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.time() < deadline, f"no held worker and 8 rows after 240 s: {len(_stored(out / 'db'))} rows"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)    # the driver and the local Ray it started
        proc.wait(timeout=30)
    _assert_group_gone(proc.pid)
    before = _stored(out / "db")
    assert 8 <= len(before) < total, f"not killed half-way: {len(before)} of {total} rows"
    assert not set(holds) & {r["uri"] for r in before}, "a held file was stored"
    state = json.loads((out / ".raycurate-run.json").read_text())
    assert state["state"] == "running" and {r["run_id"] for r in before} == {state["run_id"]}

    assert main(["run", str(inp), "--out", str(out), *ARGS]) == 0
    after = _stored(out / "db")
    uris = [r["uri"] for r in after]
    expected = {str(p) for p in inp.iterdir()}
    duplicates = len(uris) - len(set(uris))
    missing = expected - set(uris)
    print(f"resume: rows before kill {len(before)}, after the next run {len(after)}, duplicates {duplicates}, "
          f"missing {len(missing)} (of {total})")
    assert duplicates == 0 and not missing and len(after) == total
    assert {(r["uri"], r["run_id"]) for r in before} <= {(r["uri"], r["run_id"]) for r in after}   # kept as stored
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["run_id"] != state["run_id"]   # a new run, which did only what the killed one had not
    assert manifest["ingest"]["already_stored"]["image"] == len(before)
    assert manifest["counts"]["rows_written"] == total - len(before)
    assert manifest["counts"]["catalogue"] == total
    took_over = manifest["lock"]["took_over"]   # the killed driver's lock: its pid is gone on this host
    assert len(took_over) == 2 and all(f"pid {proc.pid} on" in n and "its process is gone" in n for n in took_over)
    assert json.loads((out / ".raycurate-run.json").read_text())["state"] == "finished"
