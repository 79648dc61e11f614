"""A real ``raycurate run`` (a child process, no terminal): live progress lines with counts before the end,
Ray's lines in OUT/logs/ and not on the console, all of them back with ``--verbose``."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .conftest import IMAGES, copy_into

pytestmark = pytest.mark.slow   # a subprocess run (45 s)

# fast on the CPU (OpenCV faces, no NSFW), small batches so that counts move several times
ARGS = ["--set", "decode.batch_size=4", "--set", "decode.rows_per_write=4", "--set", "analyzers.nsfw.enabled=false",
        "--set", "video.enabled=false", "--set", "filter.min_faces=null", "--set", "analyzers.face.detector=opencv_haar",
        "--set", "analyzers.face.batch_size=4", "--set", "ray.num_cpus=2"]
NOISE = ("core_worker.cc", "minimum number of concurrent actors", "streaming_executor", "Token authentication",
         "UserWarning", "XNNPACK")   # XNNPACK: TFLite's notice (FER, BlazePose), which Ray forwards as it stops
LINE = re.compile(r"^\[raycurate\] images \d+:\d\d: decoded (\d+)/(\d+)")


def _run(inp, out, *extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "raycurate.cli", "run", str(inp), "--out", str(out), *ARGS, *extra],
                          capture_output=True, text=True, timeout=480)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_a_run_shows_live_progress_and_keeps_rays_lines_in_its_logs(tmp_path):
    inp = tmp_path / "in"
    copy_into(inp, IMAGES / "faces", IMAGES / "face_recognition")
    proc = _run(inp, tmp_path / "out")
    console = proc.stdout + proc.stderr
    total = int(re.search(r"\[raycurate\] \d+ files: (\d+) images", proc.stderr).group(1))
    lines = [line for line in proc.stderr.splitlines() if LINE.match(line)]
    assert lines and lines[-1].endswith("(done)"), proc.stderr
    assert all(int(LINE.match(line).group(2)) == total for line in lines)
    live = [line for line in lines[:-1] if int(LINE.match(line).group(1)) > 0]   # counts before the end
    assert live, proc.stderr
    assert f"stored {total}/{total}" in lines[-1]
    for noise in NOISE:
        assert noise not in console, f"{noise!r} on the console:\n{console}"
    log = (tmp_path / "out" / "logs" / "raycurate.log").read_text()
    assert "core_worker.cc" in log and "Execution plan of Dataset" in log and "XNNPACK" in log
    assert (tmp_path / "out" / "logs" / "progress-images.json").exists()

    loud = _run(inp, tmp_path / "loud", "--verbose")
    assert "Execution plan of Dataset" in loud.stderr and "core_worker.cc" in loud.stderr
    assert any(LINE.match(line) for line in loud.stderr.splitlines())
