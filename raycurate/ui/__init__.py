"""The web UI: ``raycurate ui [--db DB] [--host 127.0.0.1] [--port 7860] [--root DIR ...]``.

A Gradio app over the same pipeline and LanceDB table as the CLI (see :mod:`raycurate.ui.app`).
Gradio is optional (``pip install 'raycurate[ui]'``) and imported only when the UI starts.

Security: binds to 127.0.0.1 unless told otherwise (there is no login); typed input paths must
resolve inside the configured roots (:mod:`raycurate.ui.paths`); uploads are limited in size and
staged in the work folder; runs are started from an argv list, never through a shell; gradio serves
files only from its upload cache, the thumbnails and the exports of the work folder.
"""
from __future__ import annotations

import importlib.util
import ipaddress
import os
import sys
from typing import Any

INSTALL_HINT = "raycurate ui needs gradio: pip install 'raycurate[ui]'"


def gradio_missing() -> bool:
    return importlib.util.find_spec("gradio") is None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_session(*, db: str | None, workdir: str, roots: list[str], max_upload_mb: int, host: str,
                 port: int, profile: str | None = None) -> Any:
    """The :class:`~raycurate.ui.session.Session` for these settings (no gradio needed)."""
    from ..store.table import resolve_db
    from .paths import Roots
    from .session import Session, Settings

    workdir = os.path.abspath(os.path.expanduser(workdir))
    os.makedirs(workdir, exist_ok=True)
    if db is None:
        db = os.path.join(workdir, "db")
    elif "://" not in db and os.path.isdir(db):
        db = resolve_db(db)
    elif "://" not in db:
        db = os.path.abspath(db)
    settings = Settings(db=db, workdir=workdir, roots=Roots.from_list(roots), max_upload_mb=max_upload_mb,
                        host=host, port=port, profile=profile)
    return Session(settings)


def serve(*, db: str | None, workdir: str, roots: list[str], max_upload_mb: int = 500,
          host: str = "127.0.0.1", port: int = 7860, profile: str | None = None) -> int:
    """Run the UI until interrupted; returns the exit status (2: gradio missing, bad settings or a damaged DB)."""
    if gradio_missing():
        print(f"raycurate: error: {INSTALL_HINT}", file=sys.stderr)
        return 2
    from ..sources import SourceError
    from ..store.health import DamagedDB, check_db
    from .paths import PathRefused

    try:
        session = make_session(db=db, workdir=workdir, roots=roots, max_upload_mb=max_upload_mb, host=host,
                               port=port, profile=profile)
        check_db(session.settings.db)   # a DB the UI has not made yet passes
    except (PathRefused, DamagedDB, SourceError) as exc:
        print(f"raycurate: error: {exc}", file=sys.stderr)
        return 2
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("GRADIO_TEMP_DIR", session.settings.folder("gradio-cache"))
    if not _loopback(host):
        print(f"[raycurate] warning: serving on {host}: anyone who can reach this port can start runs and "
              "read the results (there is no login)", file=sys.stderr)
    s = session.settings
    print(f"[raycurate] web UI on http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port} · "
          f"db {s.db} · work folder {s.workdir} · roots {', '.join(s.roots.describe())}", file=sys.stderr,
          flush=True)
    from .app import launch

    try:
        launch(session, block=True)
    except KeyboardInterrupt:
        pass
    finally:
        session.runner.cancel()
    return 0


__all__ = ["INSTALL_HINT", "gradio_missing", "make_session", "serve"]
