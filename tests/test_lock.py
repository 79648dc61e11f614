"""One writer per OUT (raycurate/lock.py): a live lock refuses a second run in one line, a stale one is taken
over with a note, ``--wait`` waits; locally, in another process, through the CLI, and in a bucket (moto's S3)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from raycurate import storage
from raycurate.cli import main
from raycurate.lock import LOCK_FILE, LockHeld, hold

from .conftest import IMAGES, OUT, REGION, stop_group
from .test_resume import ARGS, held, hold_env

HOST = socket.gethostname()


def _iso(delta_s: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=delta_s)).isoformat(timespec="seconds")


def _record(**kw) -> dict:
    rec = {"host": "elsewhere", "pid": 1, "started_at": _iso(-3600), "lease_until": _iso(-60), "nonce": "old",
           "argv": ["raycurate", "run", "photos", "--out", "out"]}
    return {**rec, **kw}


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_holder_gets_one_line_naming_the_first_and_release_leaves_nothing(tmp_path):
    out, db = tmp_path / "out", tmp_path / "elsewhere" / "db"
    with hold(str(out), str(db), argv=["raycurate", "run", "in", "--out", str(out)]) as info:
        assert sorted(info.roots) == sorted([str(out), str(db)]) and not info.notes
        rec = json.loads((out / LOCK_FILE).read_text())
        assert (rec["host"], rec["pid"], rec["nonce"]) == (HOST, os.getpid(), info.nonce)
        assert rec["argv"][-1] == str(out) and json.loads((db / LOCK_FILE).read_text())["nonce"] == info.nonce
        for other_out, other_db in ((out, tmp_path / "db2"), (tmp_path / "out2", db)):   # OUT or the DB held
            with pytest.raises(LockHeld) as exc:
                with hold(str(other_out), str(other_db)):
                    pass
            msg = str(exc.value)
            assert "\n" not in msg and f"pid {os.getpid()} on {HOST}" in msg and rec["started_at"] in msg
            assert msg.endswith("wait for it, or pass --wait")
        assert not (tmp_path / "out2" / LOCK_FILE).exists() and not (tmp_path / "db2" / LOCK_FILE).exists()
    assert not (out / LOCK_FILE).exists() and not (db / LOCK_FILE).exists()
    with pytest.raises(RuntimeError):   # released on an exception too
        with hold(str(out), str(out / "db")):
            raise RuntimeError("boom")
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == []


def test_a_holder_in_another_process_is_named(tmp_path):
    out = tmp_path / "out"
    code = ("import sys, time; from raycurate.lock import hold\n"
            "with hold(sys.argv[1], sys.argv[1] + '/db'):\n    print('held', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld, match=f"pid {proc.pid} on {HOST}"):
            with hold(str(out), str(out / "db")):
                pass
    finally:
        stop_group(proc)
    # killed (SIGTERM ends it before its `finally`): its lock is left, and its pid is gone on this host
    assert json.loads((out / LOCK_FILE).read_text())["pid"] == proc.pid
    lines = []
    with hold(str(out), str(out / "db"), log=lines.append) as info:
        assert len(info.notes) == 2 and all("its process is gone" in n and f"pid {proc.pid}" in n for n in info.notes)
    assert len(lines) == 2


def test_expired_lease_and_dead_pid_are_taken_over_with_a_note(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    stale = _record(lease_until=_iso(-5))
    (out / LOCK_FILE).write_text(json.dumps(stale))
    lines = []
    with hold(str(out), str(out), log=lines.append) as info:   # the DB's root is OUT's: one lock
        assert info.roots == [str(out)]
        assert info.notes == [f"took over the lock on {out} of the run `raycurate run photos --out out` (pid 1 on "
                              f"elsewhere, started {stale['started_at']}): its lease expired at {stale['lease_until']}"]
        assert lines == [f"[raycurate] {info.notes[0]}"]
        assert json.loads((out / LOCK_FILE).read_text())["nonce"] == info.nonce
    (out / LOCK_FILE).write_text(json.dumps(_record(host=HOST, pid=_dead_pid(), lease_until=_iso(600))))
    with hold(str(out), str(out), log=lambda _: None) as info:
        assert len(info.notes) == 1 and "its process is gone" in info.notes[0]
    (out / LOCK_FILE).write_text(json.dumps(_record(host="elsewhere", pid=_dead_pid(), lease_until=_iso(600))))
    with pytest.raises(LockHeld, match="pid .* on elsewhere"):   # another host's pid says nothing: its lease holds
        with hold(str(out), str(out)):
            pass
    assert json.loads((out / LOCK_FILE).read_text())["nonce"] == "old"   # a live lock is left alone


def test_the_lease_is_renewed_while_the_run_lives(tmp_path):
    out = tmp_path / "out"
    with hold(str(out), str(out), lease_s=1.0, renew_s=0.2):
        time.sleep(2.0)   # twice the lease: without renewals it would have expired
        rec = json.loads((out / LOCK_FILE).read_text())
        assert datetime.fromisoformat(rec["lease_until"]) > datetime.now(timezone.utc)
        with pytest.raises(LockHeld):
            with hold(str(out), str(out), lease_s=1.0):
                pass


def test_wait_polls_until_the_holder_leaves_or_its_lease_ends(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    # another host's run whose lease ends in 1.5 s: the waiter says so once, then takes it over
    stale = _record(lease_until=_iso(1.5))
    (out / LOCK_FILE).write_text(json.dumps(stale))
    lines: list[str] = []
    t0 = time.monotonic()
    with hold(str(out), str(out), wait=True, log=lines.append, poll_s=0.1) as info:
        assert 0.3 < time.monotonic() - t0 < 10 and "its lease expired" in info.notes[0]
    assert lines[0] == f"[raycurate] waiting for the run holding {out}: pid 1 on elsewhere, started " \
                       f"{stale['started_at']}"
    assert [line for line in lines if "waiting" in line] == lines[:1]
    # a live holder in this process that leaves after a second: the waiter gets the lock once it is free
    got: list = []

    def waiter():
        with hold(str(out), str(out), wait=True, log=lines.append, poll_s=0.1) as second:
            got.append((time.monotonic(), second.notes))

    with hold(str(out), str(out)):
        thread = threading.Thread(target=waiter)
        thread.start()
        deadline = time.monotonic() + 30
        while sum("waiting" in line for line in lines) < 2:   # the waiter found the lock held and says so
            assert time.monotonic() < deadline, "the waiter never said it waits"
            time.sleep(0.05)
        time.sleep(0.5)   # a few of its polls (poll_s=0.1) while the lock is held
        assert not got and thread.is_alive()
        left = time.monotonic()
    thread.join(timeout=10)
    assert got and got[0][0] >= left and got[0][1] == []   # freed, not taken over
    assert not (out / LOCK_FILE).exists()


def test_lock_in_a_bucket(s3):
    storage.configure({"s3": {"endpoint_url": s3.endpoint, "access_key_id": s3.key_id,
                              "secret_access_key": s3.secret, "region": REGION}})
    out = f"s3://{OUT}/locked"
    key = f"locked/{LOCK_FILE}"

    def keys():   # pyarrow leaves an empty folder marker ("locked/") where a deleted file was the last one
        return sorted(o["Key"] for o in s3.client.list_objects_v2(Bucket=OUT, Prefix="locked/").get("Contents", [])
                      if not o["Key"].endswith("/"))

    with hold(out, f"{out}/db", settle_s=0.2, argv=["raycurate", "--set",
                                                    f"storage.s3.secret_access_key={s3.secret}"]) as info:
        assert keys() == sorted([key, f"locked/db/{LOCK_FILE}"])
        rec = json.loads(s3.client.get_object(Bucket=OUT, Key=key)["Body"].read())
        assert rec["nonce"] == info.nonce and rec["pid"] == os.getpid() and s3.secret not in json.dumps(rec)
        with pytest.raises(LockHeld, match=f"{out} is in use by another run \\(pid {os.getpid()} on {HOST}"):
            with hold(out, f"{out}/db", settle_s=0.2):
                pass
    assert keys() == []
    s3.client.put_object(Bucket=OUT, Key=key, Body=json.dumps(_record()).encode())
    with hold(out, out, settle_s=0.2, log=lambda _: None) as info:
        assert len(info.notes) == 1 and "its lease expired" in info.notes[0]
    assert keys() == []


# -- the CLI ---------------------------------------------------------------------------------------

def test_a_second_run_on_a_held_out_exits_2_naming_the_first_then_waits_with_wait(tmp_path, ray_session, capfd):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    for p in sorted((IMAGES / "faces").iterdir())[:3]:
        (inp / p.name).write_bytes(p.read_bytes())
    cmd = [sys.executable, "-m", "raycurate.cli", "run", str(inp), "--out", str(out), *ARGS]
    # the first run is held at its first file (raycurate/faults.py) until the test lets it go: it holds the lock
    # while the second is refused, whatever the machine's speed
    env, _ = hold_env(inp, out / "db", tmp_path / "held", first=0)
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                             env=env)
    try:
        deadline = time.time() + 120
        while not ((out / LOCK_FILE).exists() and held(tmp_path / "held")):
            assert first.poll() is None and time.time() < deadline, "the first run did not take the lock and hold"
            time.sleep(0.1)
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert first.poll() is None, "the first run ended before the second was refused"
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"raycurate: error: {out} is in use by another run (pid "
                                                        f"{first.pid} on {HOST}, started ")
        assert "wait for it, or pass --wait" in lines[0] and "Traceback" not in second.stdout
        capfd.readouterr()
        # let the first go on 2 s after this run starts waiting for it (it takes the lock at once: no Ray yet)
        go_on = threading.Timer(2.0, lambda: [p.unlink() for p in (tmp_path / "held").glob("hold-*.json")])
        go_on.start()
        assert main(["run", str(inp), "--out", str(out), *ARGS, "--wait"]) == 0
        go_on.join()
        # it waited (the line below) for the lock the first releases at its very end; the first process may
        # still be leaving (Ray's shutdown) when this one, with nothing new to analyse, is done
        assert first.wait(timeout=120) == 0
    finally:
        stop_group(first)
    err = capfd.readouterr().err
    assert err.count("[raycurate] waiting for the run holding") == 1 and f"pid {first.pid} on {HOST}" in err
    assert not (out / LOCK_FILE).exists() and not (out / "db" / LOCK_FILE).exists()
    m = json.loads((out / "manifest.json").read_text())   # the first run stored them: nothing new to analyse
    assert m["counts"]["rows_written"] == 0 and m["ingest"]["already_stored"]["image"] == 3


def test_release_held_releases_every_lock_of_the_process(tmp_path):
    from raycurate.lock import release_held

    a, b = tmp_path / "a", tmp_path / "b"
    with hold(str(a), str(a / "db")), hold(str(b), str(b)):
        assert (a / LOCK_FILE).exists() and (a / "db" / LOCK_FILE).exists() and (b / LOCK_FILE).exists()
        release_held()   # what a SIGTERM's quick exit does
        assert not any(p.name == LOCK_FILE for p in tmp_path.rglob("*"))
    assert not any(p.name == LOCK_FILE for p in tmp_path.rglob("*"))


def test_submit_passes_wait_to_the_jobs_run():
    """`raycurate submit --wait` makes the job's `raycurate run` wait for a run holding OUT."""
    import shlex

    from raycurate.cli import _parser
    from raycurate.engine.jobs import entrypoint

    args = _parser().parse_args(["submit", "in", "--out", "out", "--wait", "--address", "http://head:8265"])
    assert args.wait and not args.no_wait
    assert shlex.split(entrypoint("in", "out", None, wait_lock=args.wait))[-1] == "--wait"
    assert "--wait" not in shlex.split(entrypoint("in", "out", None))
