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
