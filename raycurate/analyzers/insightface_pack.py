"""Which file of an InsightFace pack does what.

A pack is named (``buffalo_l``, ``buffalo_m``, ``buffalo_s``, ``buffalo_sc``,
``antelopev2``: registry ids ``insightface-<pack>``, files checked before loading)
or is a folder of ONNX files the user names (an absolute or ``./`` path): then each
file's task is read by InsightFace's own router, as ``FaceAnalysis`` does, and the
files' sha256 go into the version string so the manifest records what ran.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ROLES = ("detection", "recognition", "landmark_3d_68", "landmark_2d_106", "genderage")


def is_folder(pack: str) -> bool:
    return "/" in pack or pack.startswith(".")


@dataclass
class Pack:
    name: str                       # pack name, or the folder's name
    model_id: str | None            # registry id; None for a user's folder
    files: dict[str, Path] = field(default_factory=dict)   # role -> file
    digests: dict[str, str] = field(default_factory=dict)  # role -> sha256 (a user's folder)

    def provenance(self, role: str) -> str:
        """What served ``role``: the registry id and file, or the folder file and its digest."""
        path = self.files[role]
        if self.model_id is not None:
            return f"{self.model_id}:{path.name}"
        return f"{self.name}/{path.name}@sha256:{self.digests[role][:12]}"


def registry_id(pack: str) -> str:
    from .. import models

    return models.insightface_pack(pack)


def available(pack: str, models_dir: str | None) -> tuple[bool, str]:
    """Whether ``pack`` can be loaded here, and why not."""
    from .. import models

    if is_folder(pack):
        folder = Path(pack).expanduser()
        ok = folder.is_dir() and any(folder.glob("*.onnx"))
        return ok, "" if ok else f"no ONNX files in {folder}"
    root = models.models_dir(models_dir)
    model_id = registry_id(pack)
    state = models.status(models.find_spec(model_id, root), root)
    return state == "ok", f"{model_id} is {state} in {root}"


def resolve(pack: str, models_dir: str | None, roles: tuple[str, ...] = ROLES) -> Pack:
    """The files of ``pack`` for ``roles`` (those the pack has); raises the registry's error for a
    registered pack that is missing or unverified, FileNotFoundError for an empty folder."""
    from .. import models

    if not is_folder(pack):
        root = models.models_dir(models_dir)
        model_id = registry_id(pack)
        models.require(model_id, root)
        spec = models.find_spec(model_id, root)
        found = {r: models.role_path(model_id, r, root) for r in roles if r in (spec.roles or {})}
        return Pack(name=pack, model_id=model_id, files=found)
    from insightface.model_zoo import get_model

    folder = Path(pack).expanduser().resolve()
    files = sorted(folder.glob("*.onnx"))
    if not files:
        raise FileNotFoundError(f"InsightFace pack folder {folder} holds no .onnx files")
    out = Pack(name=folder.name, model_id=None)
    for path in files:
        model = get_model(str(path), providers=["CPUExecutionProvider"])
        task = getattr(model, "taskname", None)
        if task in roles and task not in out.files:
            out.files[task] = path
            out.digests[task] = models.sha256_of(path)
    return out
