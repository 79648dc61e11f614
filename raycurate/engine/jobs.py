"""``raycurate submit``: run a curation as a Ray job on a cluster.

The client resolves the whole configuration here (defaults, profile, preset,
``--config``, ``--set``), so the cluster runs exactly what was asked, and ships
it with the code as the job's ``working_dir``: a temporary folder holding the
``raycurate`` package (its defaults, presets and profiles inside) and ``job-config.yaml``. The cluster's
nodes need the same Python packages (the Docker image, or ``scripts/setup.sh``
on each node); ``INPUT`` and ``OUT`` are paths the cluster can read and write
(a shared filesystem or a bucket); the entrypoint runs ``python`` from the
head's PATH, so start Ray from the environment that holds raycurate's
dependencies. Logs stream back while the job runs; the
job's last lines are raycurate's end-of-run summary.

Token authentication (Ray 2.60 turns it on for clusters it starts locally):
the client sends the token Ray finds in ``RAY_AUTH_TOKEN``,
``RAY_AUTH_TOKEN_PATH`` or its default token file; ``ray get-auth-token``
prints it on the head node.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from ..settings import Settings, as_dict

PACKAGE_DIR = Path(__file__).resolve().parent.parent   # raycurate/, not raycurate/engine/
JOB_CONFIG = "job-config.yaml"
AGENT_WAIT_S = 90.0   # how long to wait for a freshly started head's job agent
# The client's storage settings reach the job's driver through these (raycurate/storage.py reads them);
# the driver then hands them to every task and actor. Secrets given in the config travel in job-config.yaml.
PASSED_ENV = ("RAYCURATE_MODELS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
              "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "GOOGLE_APPLICATION_CREDENTIALS",
              "GOOGLE_CLOUD_PROJECT", "STORAGE_EMULATOR_HOST")


def job_config(settings: Settings) -> dict[str, Any]:
    """The run's settings for a job, as the mapping ``job-config.yaml`` holds: the job's driver joins the
    cluster it runs on."""
    ray = dataclasses.replace(settings.ray, address="auto", num_cpus=None, num_gpus=None)
    return as_dict(dataclasses.replace(settings, ray=ray))


def stage_working_dir(settings: Settings, dest: Path) -> Path:
    """``dest`` with the package (configs included) and the resolved config: what the cluster receives."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(PACKAGE_DIR, dest / "raycurate", ignore=ignore)
    (dest / JOB_CONFIG).write_text(yaml.safe_dump(job_config(settings), sort_keys=False))
    return dest


def entrypoint(input_uri: str, out: str, db: str | None, verbose: bool = False, wait_lock: bool = False) -> str:
    """The job's command: ``python -m raycurate.cli run ...`` (``wait_lock``: ``--wait``, for an OUT that
    another run holds)."""
    import shlex

    args = ["python", "-m", "raycurate.cli", "run", input_uri, "--out", out, "--config", JOB_CONFIG]
    if db:
        args += ["--db", db]
    if verbose:
        args.append("--verbose")
    if wait_lock:
        args.append("--wait")
    return " ".join(shlex.quote(a) for a in args)


def submit(address: str, input_uri: str, out: str, settings: Settings, *, db: str | None = None,
           wait: bool = True, job_id: str | None = None,
           print_fn: Any = None, verbose: bool = False, wait_lock: bool = False) -> tuple[str, str]:
    """Submit the run; with ``wait``, stream its logs until it ends. Returns (job id, final status).
    ``verbose``: the job's log holds Ray's lines too (default: they go to OUT/logs/ on the cluster);
    ``wait_lock``: the job waits for a run holding OUT (``run --wait``) instead of failing."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    print_fn = print_fn or (lambda text: print(text, end="", flush=True))
    client = JobSubmissionClient(address)
    with tempfile.TemporaryDirectory(prefix="raycurate-job-") as tmp:
        working_dir = stage_working_dir(settings, Path(tmp))
        env = {k: os.environ[k] for k in PASSED_ENV if os.environ.get(k)}
        env["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] = "0"
        deadline = time.monotonic() + AGENT_WAIT_S
        while True:
            try:
                job = client.submit_job(entrypoint=entrypoint(input_uri, out, db, verbose, wait_lock),
                                        submission_id=job_id,
                                        runtime_env={"working_dir": str(working_dir), "env_vars": env},
                                        metadata={"tool": "raycurate", "input": input_uri, "out": out})
                break
            except RuntimeError as exc:   # a cluster that just started: its job agent is not up yet
                if "No available agent" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(2.0)
    print_fn(f"[raycurate] submitted job {job} to {address}\n")
    if not wait:
        return job, str(client.get_job_status(job))

    async def tail() -> None:
        async for lines in client.tail_job_logs(job):
            print_fn(lines)

    try:
        asyncio.run(tail())
    except Exception as exc:  # the log stream can drop; the status below is what counts
        print_fn(f"[raycurate] log stream ended: {type(exc).__name__}: {exc}\n")
    status = client.get_job_status(job)
    while status not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
        time.sleep(1.0)
        status = client.get_job_status(job)
    if status != JobStatus.SUCCEEDED:
        info = client.get_job_info(job)
        print_fn(f"[raycurate] job {job} {status}: {info.message}\n")
    return job, str(status)
