"""A two-node local Ray cluster (`ray start --head` + `ray start --address`), each node declaring one
logical GPU: actor pools spread over both nodes and fractional GPUs pack as the rule in docs/concepts/engine.md says."""
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
from .test_jobs import _free_port, agent_ports

pytestmark = pytest.mark.slow   # two Ray nodes and a run on them (85 s)

RAY = str(Path(sys.executable).with_name("ray"))

# The driver: a run joined to the cluster, then the placement of every actor it started.
DRIVER = r'''
import json, sys
from raycurate.config import load_settings
from raycurate.run import curate

address, images, out, dashboard = sys.argv[1:5]
settings = load_settings(overrides=[
    ("ray.address", address), ("ray.gpu_memory_gb", 4.0),
    # NudeNet on "cuda", batch 8: (400 MB + 8 x 25 MB) x 1.2 = 720 MB of a 4 GB card -> 0.176 -> 0.25 GPU
    ("analyzers.nsfw.device", "cuda"), ("analyzers.nsfw.batch_size", 8), ("analyzers.nsfw.min_actors", 8),
    ("analyzers.face.enabled", False), ("video.enabled", False), ("filter.min_faces", None),
    ("decode.batch_size", 4)])
report = curate(images, out_dir=out, settings=settings)
import ray
from ray.util.state import list_actors, list_nodes

nodes = {n.node_id: n.node_name for n in list_nodes(address=dashboard)}
rows = []
for a in list_actors(address=dashboard, detail=True, limit=10000):
    name = a.repr_name or a.class_name or ""
    rows.append({"actor": name, "class": a.class_name, "node_id": a.node_id, "state": a.state,
                 "resources": a.required_resources})
print("PLACEMENT " + json.dumps({"nodes": list(nodes), "actors": rows,
                                 "ray": report.manifest.get("ray"), "model_check": report.manifest["model_check"],
                                 "rows": report.counts["rows_written"]}))
'''


def _start(args, env):
    return subprocess.Popen([RAY, "start", "--block", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)




@pytest.fixture(scope="module")
def two_nodes():
    port, dash = _free_port(), _free_port()
    temp = f"/tmp/rc-2n-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    env = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    env.pop("RAY_ADDRESS", None)
    head = _start(["--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2", "--num-gpus=1",
                   f"--temp-dir={temp}", "--include-dashboard=true", f"--dashboard-port={dash}",
                   "--dashboard-host=127.0.0.1", *agent_ports()], env)
    address = f"127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:   # the head's GCS takes connections: a worker node can join
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert head.poll() is None and time.time() < deadline, "the head node did not start"
            time.sleep(0.2)
    worker = _start([f"--address={address}", "--node-ip-address=127.0.0.1", "--num-cpus=2", "--num-gpus=1",
                     *agent_ports()], env)
    check = ("import ray,sys; ray.init(address=sys.argv[1]); import time\n"
             "for _ in range(120):\n"
             "    if len([n for n in ray.nodes() if n['Alive']]) == 2: break\n"
             "    time.sleep(1)\n"
             "print(len([n for n in ray.nodes() if n['Alive']]))")
    n = subprocess.run([sys.executable, "-c", check, address], env=env, capture_output=True, text=True, timeout=180)
    try:
        assert n.stdout.strip().endswith("2"), n.stdout + n.stderr
        yield {"address": address, "env": env, "dashboard": f"http://127.0.0.1:{dash}"}
    finally:
        stop_group(worker)
        stop_group(head)
        shutil.rmtree(temp, ignore_errors=True)


def test_pools_spread_over_two_nodes_and_fractional_gpus_pack(two_nodes, tmp_path):
    # Ray Data starts a pool's actors without waiting for them: four images can be through before the
    # eighth is placed (seen in CI, one actor never given a node). Placement is what is tested: wait for all.
    env = {**two_nodes["env"], "RAY_DATA_DEFAULT_WAIT_FOR_MIN_ACTORS_S": "180"}
    proc = subprocess.run([sys.executable, "-c", DRIVER, two_nodes["address"], str(IMAGES / "faces"),
                           str(tmp_path / "out"), two_nodes["dashboard"]], env=env, capture_output=True, text=True, timeout=600)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("PLACEMENT ")]
    assert proc.returncode == 0 and line, (proc.stdout + proc.stderr)[-4000:]
    info = json.loads(line[0][len("PLACEMENT "):])
    assert info["rows"] == 4 and len(info["nodes"]) == 2
    assert len(info["model_check"]) == 2                          # weights checked on both nodes
    assert info["ray"]["nsfw"]["num_gpus"] == 0.25
    nsfw = [a for a in info["actors"] if "Nsfw" in a["actor"]]
    per_node: dict = {}
    for a in nsfw:
        per_node[a["node_id"]] = per_node.get(a["node_id"], 0) + 1
        assert (a["resources"] or {}).get("GPU") == 0.25
    table = [f"{a['actor'][:48]:<48} node {(a['node_id'] or '-')[:8]} {a['state']} {a['resources']}" for a in info["actors"]]
    print("\nplacement:\n" + "\n".join(table))
    assert len(nsfw) == 8 and sorted(per_node.values()) == [4, 4]   # four 0.25-GPU actors per 1-GPU node
