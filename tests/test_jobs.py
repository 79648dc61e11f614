"""`raycurate submit` against a real Ray head started on loopback with `ray start --head`."""
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import IMAGES, stop_group

RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def agent_ports() -> list[str]:
    """Free ports for a node's agents: the defaults (52365 ...) are held by any other Ray on this machine
    (the test session's own, another node), and an agent that cannot bind leaves the node without a job
    agent ("No available agent to submit job")."""
    return [f"--dashboard-agent-listen-port={_free_port()}", f"--dashboard-agent-grpc-port={_free_port()}",
            f"--metrics-export-port={_free_port()}", f"--runtime-env-agent-port={_free_port()}"]


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """A one-node Ray cluster of its own (2 CPUs), stopped (its process group killed) afterwards."""
    port, dash = _free_port(), _free_port()
    temp = Path(tempfile_dir := f"/tmp/rc-head-{os.getpid()}")
    shutil.rmtree(temp, ignore_errors=True)
    # Ray 2.60 turns token authentication on: the head and the client share one token
    env = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
           # the job's entrypoint runs `python` from the head's PATH: the environment ray was started from
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    env.pop("RAY_ADDRESS", None)
    log = open(tmp_path_factory.mktemp("head") / "ray-start.log", "wb")   # never an unread pipe: it would fill
    proc = subprocess.Popen([RAY, "start", "--head", "--block", f"--port={port}", f"--dashboard-port={dash}",
                             "--dashboard-host=127.0.0.1", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                             "--num-gpus=0", f"--temp-dir={tempfile_dir}", "--include-dashboard=true",
                             *agent_ports()],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{dash}"
    deadline = time.time() + 120
    import urllib.request

    while time.time() < deadline:
        assert proc.poll() is None, Path(log.name).read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"{address}/api/version", timeout=2):
                break
        except OSError as exc:   # up but refusing without a token counts as up too
            if "401" in str(exc) or "403" in str(exc):
                break
            time.sleep(1)
    yield {"address": address, "env": env, "temp": temp}
    stop_group(proc)
    log.close()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow   # a Ray head and a job's run (25 s)
def test_submit_a_run_to_a_local_head_and_read_its_table(head, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "raycurate.cli", "submit", "--address", head["address"], str(IMAGES / "faces"),
         "--out", str(out), "--set", "video.enabled=false", "--set", "analyzers.face.use_profile=false"],
        env=head["env"], capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "submitted job" in log and "SUCCEEDED" in log
    assert "kept" in log and "table" in log          # the run's end-of-run summary, streamed back
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["ray"]["address"] == "auto"
    assert manifest["counts"]["rows_written"] == 4

    import lancedb

    rows = lancedb.connect(str(out / "db")).open_table("images").to_arrow().to_pylist()
    assert sorted(r["uri"].rsplit("/", 1)[1] for r in rows) == sorted(p.name for p in (IMAGES / "faces").iterdir())
    assert all(r["face_error"] is None for r in rows)


def test_submit_without_address_or_with_bad_config_fails_fast(tmp_path, capsys):
    from raycurate.cli import main

    os.environ.pop("RAY_API_SERVER_ADDRESS", None)
    assert main(["submit", str(IMAGES), "--out", str(tmp_path / "o")]) == 2
    assert "--address" in capsys.readouterr().err
    assert main(["submit", "--address", "http://127.0.0.1:1", str(IMAGES), "--out", str(tmp_path / "o"),
                 "--set", "decode.batch_size=0"]) == 2
    assert "decode.batch_size" in capsys.readouterr().err


@pytest.mark.slow   # a Ray head (30 s)
def test_submit_without_the_token_is_one_clear_error(head, tmp_path):
    env = {k: v for k, v in head["env"].items() if k not in ("RAY_AUTH_TOKEN",)}
    env["HOME"] = str(tmp_path)              # no ~/.ray/auth_token either
    proc = subprocess.run([sys.executable, "-m", "raycurate.cli", "submit", "--address", head["address"],
                           str(IMAGES / "faces"), "--out", str(tmp_path / "o")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "token" in err[0] and "RAY_AUTH_TOKEN" in err[0]
