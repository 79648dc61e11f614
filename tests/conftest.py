from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

DATA = Path(__file__).resolve().parent / "data"
IMAGES = DATA / "images"
# photo sets kept for one measure each (the held-apart identity set, the selection benchmark's slideshow): not
# part of the general pile the other tests run on
SET_APART = ("lfw_heldout", "people")


def general_images() -> list[Path]:
    """The folders of tests/data/images the general tests run on (every one but :data:`SET_APART`)."""
    return sorted(p for p in IMAGES.iterdir() if p.is_dir() and p.name not in SET_APART)

os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")

# moto's S3 server (the `s3` fixture): buckets IN and OUT, the photos, a video
IN, OUT, REGION = "raycurate-in", "raycurate-out", "us-east-1"
PHOTOS = [IMAGES / "faces" / n for n in ("matplotlib_grace_hopper.jpg", "pillow_hopper.jpg", "skimage_astronaut.png")] \
    + [IMAGES / "face_recognition" / "obama.jpg"] + [IMAGES / "negatives" / n for n in ("grass.jpg", "skimage_coffee.png")]
SMALL = PHOTOS[2:5]   # no two of them near duplicates (the two Hoppers are)
VIDEO = DATA / "videos" / "counter.mp4"
AWS_VARS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
            "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE")


@pytest.hookimpl(tryfirst=True)   # before -m deselects: the slow mark added here counts
def pytest_collection_modifyitems(config, items):
    """The tiers (scripts/test.sh, pyproject's markers): a test on the shared local Ray (``ray_session``) is
    ``slow`` wherever it is written."""
    for item in items:
        if "ray_session" in getattr(item, "fixturenames", ()) and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow)


_CUDA: list[bool] = []


def pytest_runtest_setup(item):
    """A ``gpu`` test selected (``-m gpu``, or a ``-m`` that does not exclude it) is skipped, one clear line,
    where no CUDA device is read."""
    if item.get_closest_marker("gpu") is None:
        return
    if not _CUDA:
        from raycurate.gpu_sizing import read_local_gpus

        _CUDA.append(bool(read_local_gpus()[0]))
    if not _CUDA[0]:
        pytest.skip("needs a CUDA device: none read (nvml, torch)")


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session (2 CPUs, like CI)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, logging_level="WARNING")
    yield ray
    ray.shutdown()


def copy_into(dest: Path, *sources: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for src in sources:
        if src.is_dir():
            shutil.copytree(src, dest / src.name)
        else:
            shutil.copy2(src, dest / src.name)


def stop_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    """End a process started with ``start_new_session=True`` and everything it started: SIGTERM to its
    process group, SIGKILL if it is still there after ``timeout`` seconds."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server on a free loopback port, authentication on (an IAM user's key); buckets IN (the photos,
    a video) and OUT. Skipped without boto3 and moto."""
    boto3 = pytest.importorskip("boto3")
    pytest.importorskip("moto.server")
    import requests
    from moto.server import ThreadedMotoServer
    from raycurate import storage

    logging.getLogger("werkzeug").setLevel(logging.WARNING)   # one line per request otherwise
    saved = {k: os.environ.pop(k) for k in AWS_VARS if k in os.environ}   # nothing from the machine
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        bootstrap = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id="bootstrap",
                         aws_secret_access_key="bootstrap")
        # moto's backends live in this process: start from none (another module's server made the user)
        requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
        iam = boto3.client("iam", **bootstrap)
        iam.create_user(UserName="raycurate")
        iam.put_user_policy(UserName="raycurate", PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="raycurate")["AccessKey"]
        requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()  # auth from now
        client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=key["AccessKeyId"],
                              aws_secret_access_key=key["SecretAccessKey"])
        for bucket in (IN, OUT):
            client.create_bucket(Bucket=bucket)
        for p in PHOTOS:
            client.upload_file(str(p), IN, f"photos/{p.name}")
        client.upload_file(str(VIDEO), IN, f"photos/clips/{VIDEO.name}")
        for p in SMALL:
            client.upload_file(str(p), IN, f"small/{p.name}")
        yield SimpleNamespace(endpoint=endpoint, key_id=key["AccessKeyId"], secret=key["SecretAccessKey"],
                              client=client)
    finally:
        try:
            requests.post(f"{endpoint}/moto-api/reset-auth", data=b"inf", timeout=10)
        finally:
            server.stop()
            os.environ.update(saved)
            storage.configure(None)
