"""The storage settings of this process: the config's ``storage:`` section, with every key left ``null``
taken from the environment of the process that resolves it: ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION`` /
``AWS_DEFAULT_REGION``; ``STORAGE_EMULATOR_HOST``, ``GOOGLE_APPLICATION_CREDENTIALS``,
``GOOGLE_CLOUD_PROJECT``. Nothing set anywhere: each library's own default chain (``~/.aws``, instance
roles, gcloud's application default credentials). And the redaction of its secrets.

The settings are process-global (:func:`configure`): the driver configures them from the run's
config, resolves the environment once (:func:`resolved`) and hands that to every Ray task and
actor that touches a bucket, which configures its own process with it. So a bucket works on
workers that never saw the driver's environment variables. :mod:`raycurate.storage` turns them into
filesystems and LanceDB options.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import threading
from typing import Any, Mapping

REDACTED = "<redacted>"

DEFAULTS: dict[str, dict[str, Any]] = {
    "s3": {"endpoint_url": None, "region": None, "access_key_id": None, "secret_access_key": None,
           "session_token": None, "anonymous": False, "allow_http": None},
    "gcs": {"endpoint_url": None, "project": None, "anonymous": False, "credentials_file": None},
}

_lock = threading.Lock()
_configured: dict[str, dict[str, Any]] | None = None


def _section(storage: Any) -> dict[str, dict[str, Any]]:
    """``storage`` (a mapping, or the typed ``settings.storage`` section) over the defaults, as plain dicts."""
    if dataclasses.is_dataclass(storage):
        storage = dataclasses.asdict(storage)
    out = copy.deepcopy(DEFAULTS)
    for name, values in (storage or {}).items():
        if name in out and values:
            out[name].update({k: v for k, v in values.items() if k in out[name]})
    return out


def configure(storage: Any) -> None:
    """Use ``storage`` (the typed ``settings.storage`` section, a mapping of it, or :func:`resolved` of it) in
    this process.

    ``None``: the defaults (everything from the environment)."""
    global _configured
    section = _section(storage)
    with _lock:
        _configured = section


def configured() -> dict[str, dict[str, Any]]:
    """The section this process was configured with (defaults when never configured); not resolved."""
    with _lock:
        return copy.deepcopy(_configured) if _configured is not None else copy.deepcopy(DEFAULTS)


def _env(environ: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = environ.get(name)
        if value:
            return value
    return None


def with_scheme(endpoint: str, allow_http: bool | None) -> str:
    return endpoint if "://" in endpoint else ("http://" if allow_http else "https://") + endpoint


def resolve(storage: Any = None, environ: Mapping[str, str] | None = None
            ) -> dict[str, dict[str, Any]]:
    """``storage`` (default: what :func:`configure` set) with every null key filled from ``environ``
    (default: this process's environment).

    Credentials come as a set: given in the config, the environment's are not mixed in (not even its
    session token); else the environment's key id, secret and token. ``allow_http`` null: true when the
    endpoint is ``http://``."""
    section = _section(storage) if storage is not None else configured()
    env = os.environ if environ is None else environ
    s3 = section["s3"]
    if s3["endpoint_url"] is None:
        s3["endpoint_url"] = _env(env, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    if s3["region"] is None:
        s3["region"] = _env(env, "AWS_REGION", "AWS_DEFAULT_REGION")
    if s3["access_key_id"] is None and s3["secret_access_key"] is None:
        s3["access_key_id"] = _env(env, "AWS_ACCESS_KEY_ID")
        s3["secret_access_key"] = _env(env, "AWS_SECRET_ACCESS_KEY")
        if s3["session_token"] is None:
            s3["session_token"] = _env(env, "AWS_SESSION_TOKEN")
    if s3["allow_http"] is None:
        s3["allow_http"] = bool(s3["endpoint_url"]) and s3["endpoint_url"].lower().startswith("http://")
    if s3["endpoint_url"]:
        s3["endpoint_url"] = with_scheme(s3["endpoint_url"], s3["allow_http"])

    gcs = section["gcs"]
    if gcs["endpoint_url"] is None:
        emulator = _env(env, "STORAGE_EMULATOR_HOST")
        if emulator:   # as Google's client libraries do: an emulator takes no credentials
            gcs["endpoint_url"] = with_scheme(emulator, True)
            gcs["anonymous"] = True
    if gcs["project"] is None:
        gcs["project"] = _env(env, "GOOGLE_CLOUD_PROJECT")
    if gcs["credentials_file"] is None:
        gcs["credentials_file"] = _env(env, "GOOGLE_APPLICATION_CREDENTIALS")
    return section


def resolved(storage: Any = None) -> dict[str, dict[str, Any]]:
    """What the driver hands to Ray tasks and actors: :func:`resolve` with this process's environment."""
    return resolve(storage)


def redact(whole: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a whole settings mapping (``settings.as_dict`` of them, as the manifest records them) with the
    storage secrets (``config.SECRET_KEYS``) replaced by ``<redacted>``; a null stays null (it says "from the
    environment")."""
    from .config import SECRET_KEYS

    out = copy.deepcopy(dict(whole))
    for dotted in SECRET_KEYS:
        *parents, leaf = dotted.split(".")
        node: Any = out
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(leaf) is not None:
            node[leaf] = REDACTED
    return out


def redact_argv(argv: list[str] | None) -> list[str] | None:
    """A command line with the values of ``--set`` secrets (``storage.s3.secret_access_key=...``) redacted."""
    from .config import SECRET_KEYS

    if argv is None:
        return None
    out = []
    for arg in argv:
        for dotted in SECRET_KEYS:
            for prefix in (f"{dotted}=", f"--set={dotted}="):
                if arg.startswith(prefix):
                    arg = prefix + REDACTED
        out.append(arg)
    return out


__all__ = ["DEFAULTS", "REDACTED", "configure", "configured", "redact", "redact_argv", "resolve", "resolved",
           "with_scheme"]
