"""Fetching weights with each library's own download path (``raycurate models pull``), and the check
every node runs before a pipeline starts (:func:`ensure_here`)."""
from __future__ import annotations

import os
from pathlib import Path

from .registry import MissingModelError, ModelError, ModelSpec, find_spec
from .verify import fix_hint, models_dir, record, require, status


def pull(model_id: str, root: Path, *, offline: bool = False) -> Path:
    """Fetch a model with its library's own download path into ``root``, then record its digests.
    A shipped model is only verified (its package is installed, not downloaded: the error names the command)."""
    spec = find_spec(model_id, root)
    if spec.shipped_in:
        return require(model_id, root)
    if status(spec, root) == "ok":
        return root
    if offline:
        raise MissingModelError(f"model {spec.id} is not in {root} and --offline forbids downloading; "
                                f"{fix_hint(spec, root)}")
    root.mkdir(parents=True, exist_ok=True)
    if spec.library == "insightface":
        _pull_insightface(spec, root)
    elif spec.library == "open_clip":
        import open_clip

        if spec.pretrained is None:
            raise ModelError(f"model {spec.id} names no open_clip pretrained tag; copy its files in and run "
                             f"`raycurate models verify {spec.id} --record`")
        open_clip.create_model_and_transforms(spec.arch, pretrained=spec.pretrained,
                                              cache_dir=str(root / "open_clip" / "hf-cache"))
        _copy_from_hf_cache(root / "open_clip" / "hf-cache", root / spec.files[0].path)
    elif spec.library == "torch" and spec.source.startswith("https://"):
        import torch.hub

        target = root / spec.files[0].path
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(spec.source, str(target), progress=False)
    elif spec.library == "deepface":
        os.environ["DEEPFACE_HOME"] = str(root / "deepface")
        os.environ.setdefault("DEEPFACE_BACKEND_ENGINE", "pytorch")
        from deepface import DeepFace

        DeepFace.build_model(task="facial_attribute", model_name="Emotion")
    elif spec.library == "ultralytics":
        from ultralytics import YOLO

        target = root / spec.files[0].path
        target.parent.mkdir(parents=True, exist_ok=True)
        cwd = os.getcwd()
        try:
            os.chdir(target.parent)  # ultralytics saves a named checkpoint into the working directory
            YOLO(target.name)
        finally:
            os.chdir(cwd)
    record(model_id, root)
    return root


def _pull_insightface(spec: ModelSpec, root: Path) -> None:
    """InsightFace's own download of pack ``spec.pretrained`` into ``root/insightface/models/<pack>/``."""
    from insightface.utils import storage

    pack = spec.pretrained or spec.id.removeprefix("insightface-")
    names = [Path(f.path).name for f in spec.files]
    pack_dir = Path(storage.ensure_available("models", pack, root=str(root / "insightface")))
    _flatten(pack_dir, names)
    if not all((pack_dir / n).is_file() for n in names):
        # ensure_available keeps a folder that exists, even half-extracted: download the pack again
        pack_dir = Path(storage.download("models", pack, force=True, root=str(root / "insightface")))
        _flatten(pack_dir, names)


def _flatten(pack_dir: Path, names: list[str]) -> None:
    """Some pack zips (antelopev2, buffalo_m) unpack into <pack>/<pack>/: move the expected files up."""
    for name in names:
        target = pack_dir / name
        if not target.is_file():
            nested = sorted(p for p in pack_dir.rglob(name) if p.is_file())
            if nested:
                nested[0].replace(target)


def _copy_from_hf_cache(cache: Path, dest: Path) -> None:
    found = sorted(cache.rglob(dest.name))
    if not found:
        raise MissingModelError(f"open_clip downloaded no {dest.name} into {cache}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(found[0].read_bytes())


def ensure_here(model_ids: list[str], dir_value: str | None, *, pull_missing: bool = False) -> dict[str, str]:
    """On this machine: the status of each model in its models directory (``dir_value`` resolved here),
    pulling the missing ones first when ``pull_missing``. What the pipeline runs on every node."""
    root = models_dir(dir_value)
    states: dict[str, str] = {}
    for model_id in model_ids:
        spec = find_spec(model_id, root)
        state = status(spec, root)
        if state == "missing" and pull_missing:
            try:
                pull(model_id, root)
                state = status(spec, root)
            except Exception as exc:  # reported per node by the caller
                state = f"missing (pull failed: {type(exc).__name__}: {exc})"[:300]
        states[model_id] = state
    return states
