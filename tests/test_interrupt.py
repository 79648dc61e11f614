"""Ctrl-C and SIGTERM during `raycurate run` (raycurate/interrupts.py): the run stops its local Ray, prints one
line, releases its lock and exits 130 / 143, without a traceback; the same command then resumes it.

One folder (48 photos: tests/test_resume.py) is interrupted four times, each run going further (held half-way
by raycurate/faults.py's RAYCURATE_TEST_HOLD, never raced), then finished: SIGINT to the process group (a terminal's Ctrl-C), SIGTERM to the driver alone
(`kill PID`: the driver must stop its Ray itself), SIGINT twice (the second during the shutdown), SIGTERM to
the group before Ray started; the last run stores every photo once, in one run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from raycurate.cli import main
from raycurate.interrupts import MESSAGE
from raycurate.lock import LOCK_FILE

from .test_resume import ARGS, BATCH, _images, _stored, held, hold_env


def _live_in_group(pgid: int) -> list[str]:
    """The processes of group ``pgid`` that still run (zombies waiting for a parent to reap them are dead)."""
    ps = subprocess.run(["ps", "-eo", "pid=,pgid=,stat=,comm="], capture_output=True, text=True).stdout
    return [line.strip() for line in ps.splitlines()
            if line.split()[1] == str(pgid) and not line.split()[2].startswith("Z")]


def _interrupt(cmd: list[str], db, signals: list[int], *, rows: int | None, gap_s: float = 0.5,
               ready=None, group: bool = True, env=None, markers=None) -> subprocess.CompletedProcess:
    """``cmd`` started in its own process group (in ``env``); once ``rows`` rows are stored and a worker holds
    (a marker in ``markers``: :func:`~tests.test_resume.hold_env`), or once ``ready()``, ``signals`` sent to
    the group (or the driver alone) ``gap_s`` apart. The finished process."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=env)
    deadline = time.time() + 240
    try:
        while not (ready() if ready else (held(markers) and len(_stored(db)) >= rows)):
            assert proc.poll() is None, f"the run ended before it was interrupted: {proc.stderr.read()}"
            assert time.time() < deadline, f"no held worker and {rows} rows after 240 s: {len(_stored(db))} rows"
            time.sleep(0.1)
        for k, sig in enumerate(signals):
            if k:
                time.sleep(gap_s)
            (os.killpg if group else os.kill)(proc.pid, sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    left: list[str] = []
    for _ in range(75):   # what the driver did not stop is gone with it within 15 s
        left = _live_in_group(proc.pid)
        if not left:
            break
        time.sleep(0.2)
    assert not left, f"processes of the interrupted run left: {left}"
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _assert_clean(result: subprocess.CompletedProcess, code: int, out) -> None:
    assert result.returncode == code, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == MESSAGE
    assert result.stderr.count(MESSAGE) == 1
    assert not (out / LOCK_FILE).exists()   # released


def test_ctrl_c_and_sigterm_stop_the_run_and_the_same_command_resumes(tmp_path, ray_session):
    inp, out = tmp_path / "in", tmp_path / "out"
    total = _images(inp)
    db = out / "db"
    cmd = [sys.executable, "-m", "raycurate.cli", "run", str(inp), "--out", str(out), *ARGS]

    # Each run holds on every other batch of what it has left from its second on (hold_env): its first batch
    # (4 files) is stored, the held ones are not, and it is interrupted while held: provably half-way.
    def holding(k):
        env, holds = hold_env(inp, db, tmp_path / f"held{k}", first=BATCH)
        return dict(env=env, markers=tmp_path / f"held{k}"), holds

    def none_held(holds):
        assert not set(holds) & {r["uri"] for r in _stored(db)}, "a held file was stored"

    hold, holds = holding(1)
    result = _interrupt(cmd, db, [signal.SIGINT], rows=4, **hold)            # Ctrl-C in a terminal
    _assert_clean(result, 130, out)
    first = len(_stored(db))
    assert 4 <= first < total
    none_held(holds)
    run_id = json.loads((out / ".raycurate-run.json").read_text())["run_id"]

    hold, holds = holding(2)
    result = _interrupt(cmd, db, [signal.SIGTERM], rows=first + 4, group=False, **hold)   # `kill PID`
    _assert_clean(result, 143, out)
    second = len(_stored(db))
    assert f"{first} already in the catalogue" in result.stderr and second < total   # resumed: the rest only
    none_held(holds)

    hold, holds = holding(3)
    result = _interrupt(cmd, db, [signal.SIGINT, signal.SIGINT], rows=second + 4, **hold)   # Ctrl-C twice
    _assert_clean(result, 130, out)
    third = len(_stored(db))
    assert second + 4 <= third < total
    none_held(holds)

    # SIGTERM to the group before Ray started (the lock is taken, then the listing)
    result = _interrupt(cmd, db, [signal.SIGTERM], rows=None, ready=lambda: (out / LOCK_FILE).exists())
    _assert_clean(result, 143, out)

    assert main(["run", str(inp), "--out", str(out), *ARGS]) == 0
    rows = _stored(db)
    uris = [r["uri"] for r in rows]
    print(f"interrupts: rows after SIGINT {first}, after SIGTERM {second}, after SIGINT x2 {third}, at the end "
          f"{len(rows)} of {total}")
    assert len(uris) == len(set(uris)) == total and set(uris) == {str(p) for p in inp.iterdir()}
    assert run_id in {r["run_id"] for r in rows}   # the first run's rows stay: each run did only the rest
    assert json.loads((out / ".raycurate-run.json").read_text())["state"] == "finished"
    assert not (out / LOCK_FILE).exists()


def test_interruptible_in_process_and_a_sigterm_leaves_at_once(tmp_path):
    """Without Ray: a Ctrl-C in the block calls ``stop`` and becomes Interrupted (130); other errors pass
    unchanged and the handlers are put back; SIGTERM runs ``hurry``, says the line and exits 143 at once."""
    from raycurate.interrupts import Interrupted, interruptible

    stopped = []
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(Interrupted) as exc:
            with interruptible(stop=lambda: stopped.append(1)):
                raise KeyboardInterrupt
        assert (exc.value.signum, exc.value.exit_code, stopped) == (signal.SIGINT, 130, [1])
    finally:
        signal.signal(signal.SIGTERM, before[0])
        signal.signal(signal.SIGINT, before[1])
    with pytest.raises(ValueError, match="not an interrupt"):
        with interruptible(stop=lambda: stopped.append(2)):
            raise ValueError("not an interrupt")
    assert stopped == [1] and (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before

    mark = tmp_path / "hurried"
    code = ("import sys, time; from raycurate.interrupts import interruptible\n"
            "with interruptible(hurry=lambda: open(sys.argv[1], 'w').write('yes')):\n"
            "    print('ready', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(mark)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and err.strip().splitlines() == [MESSAGE] and mark.read_text() == "yes"


def test_ctrl_c_in_any_command_is_one_line_and_130(monkeypatch, capsys):
    """Outside a run's own handling (here: `config`, interrupted while it prints), Ctrl-C is the same one line."""
    import raycurate.interrupts as interrupts
    from raycurate.cli import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(interrupts, "_said", False)
    monkeypatch.setattr("yaml.safe_dump", interrupted)
    assert main(["config"]) == 130
    assert capsys.readouterr().err.strip().splitlines() == [MESSAGE]


def test_the_reaper_kills_what_ignores_sigterm_and_spares_a_reused_pid():
    """A process of the local Ray that ignores the leaving driver's SIGTERM (the runtime env agent's web server
    waits for its requests) is killed by the reaper after REAP_AFTER_S; a pid whose start time differs (reused
    by another process) is left alone."""
    import psutil

    from raycurate.engine.cluster import _REAPER, REAP_AFTER_S

    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    deaf, other = (subprocess.Popen([sys.executable, "-c", stubborn], stdout=subprocess.PIPE, text=True)
                   for _ in range(2))
    try:
        assert deaf.stdout.readline().strip() == other.stdout.readline().strip() == "ready"
        deaf.terminate()
        started = time.time()
        reaper = subprocess.run([sys.executable, "-c", _REAPER, str(REAP_AFTER_S),
                                 f"{deaf.pid}:{psutil.Process(deaf.pid).create_time()}",
                                 f"{other.pid}:{psutil.Process(other.pid).create_time() - 5}"], timeout=60)
        assert reaper.returncode == 0
        assert deaf.wait(timeout=5) == -signal.SIGKILL
        assert REAP_AFTER_S - 0.5 <= time.time() - started < REAP_AFTER_S + 10
        assert other.poll() is None   # not the process the reaper was told about
    finally:
        for proc in (deaf, other):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
