"""Quiet by default: while output is routed, what C code, Python's stderr, warnings and loggers write goes to
the log file; raycurate's own lines go to the console (no Ray here)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import logging, os, sys, warnings
    from raycurate.console import console, routed_output, say, verbose

    log = sys.argv[1]
    with routed_output(log, verbose=sys.argv[2] == "1"):
        os.write(2, b"E core_worker.cc: from C\\n")
        print("a library's print", flush=True)
        print("a library on stderr", file=sys.stderr, flush=True)
        warnings.warn("The minimum number of concurrent actors")
        logging.getLogger("ray.data").warning("Ray Data INFO-ish line")
        say("[raycurate] mine " + str(verbose()))
    os.write(2, b"after: back on the terminal\\n")
    print("stdout after", flush=True)
""")


def _run(tmp_path, verbose: bool) -> tuple[subprocess.CompletedProcess, str]:
    log = tmp_path / "logs" / "raycurate.log"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(log), "1" if verbose else "0"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc, log.read_text() if log.exists() else ""


def test_routed_output_sends_everything_but_raycurates_lines_to_the_log(tmp_path):
    proc, log = _run(tmp_path, verbose=False)
    assert proc.stderr.splitlines() == ["[raycurate] mine False", "after: back on the terminal"]
    assert proc.stdout.splitlines() == [
        f"[raycurate] Ray's and the libraries' lines go to {tmp_path / 'logs' / 'raycurate.log'} (--verbose shows "
        "them here)", "stdout after"]
    for line in ("E core_worker.cc: from C", "a library's print", "a library on stderr",
                 "The minimum number of concurrent actors", "Ray Data INFO-ish line"):
        assert line in log
    assert "[raycurate] mine" not in log


def test_verbose_moves_nothing(tmp_path):
    proc, log = _run(tmp_path, verbose=True)
    assert "E core_worker.cc: from C" in proc.stderr and "The minimum number of concurrent actors" in proc.stderr
    assert "[raycurate] mine True" in proc.stderr and "a library's print" in proc.stdout
    assert log == ""


def test_a_captured_stderr_is_the_console(tmp_path, capsys):
    from raycurate.console import console, routed_output, say

    with routed_output(str(tmp_path / "logs" / "raycurate.log")):
        say("[raycurate] to the console")
        print("to the log", file=sys.stderr)
    err = capsys.readouterr().err
    assert "[raycurate] to the console" in err and "to the log" not in err
    assert (tmp_path / "logs" / "raycurate.log").read_text() == "to the log\n"
    assert console() is sys.stderr
