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
from .random_models import write_deepface_emotion, write_insightface_pack, write_tiny_clip, write_yolo_pose


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_insightface_pack(root / "insightface" / "models" / "buffalo_l")
    write_deepface_emotion(root)
    write_yolo_pose(root)
    write_tiny_clip(root)
    return root


def test_auto_falls_back_until_weights_are_verified_and_strict_refuses(models_dir, tmp_path):
    from raycurate.analyzers.face import resolve_detector

    assert resolve_detector("auto", models_dir=str(tmp_path), strict_models=False)[0] == "opencv_haar"
    with pytest.raises(m.MissingModelError, match="insightface-buffalo_l is missing"):
        resolve_detector("auto", models_dir=str(tmp_path), strict_models=True)
    # present but not yet recorded: unverified weights are not used
    name, why = resolve_detector("auto", models_dir=str(models_dir), strict_models=False)
    assert name == "opencv_haar" and "unverified" in why
    m.record("insightface-buffalo_l", models_dir)
    assert resolve_detector("auto", models_dir=str(models_dir), strict_models=True) == ("insightface", None)


def test_insightface_and_emotion_columns_through_ray_and_lancedb(models_dir, ray_session, tmp_path):
    m.record("insightface-buffalo_l", models_dir)
    m.record("deepface-emotion", models_dir)
    m.record("ultralytics-yolo11n-pose", models_dir)
    m.record("test-tiny-clip", models_dir)
    out = tmp_path / "out"
    rc = main(["run", str(IMAGES / "faces"), "--out", str(out), "--set", f"models.dir={models_dir}",
               "--set", "models.profile=strict", "--set", "analyzers.face.max_faces=3",
               "--set", "analyzers.nsfw.enabled=false", "--set", "filter.min_faces=null",
               "--set", "analyzers.pose.conf=0.001", "--set", "analyzers.pose.max_people=3",
               "--set", "analyzers.pose.imgsz=320", "--set", "analyzers.clip.weights=test-tiny-clip"])
    assert rc == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models"]["face"]["model"].startswith("insightface-buffalo_l@insightface-")
    assert manifest["models"]["face"]["fallback"] is None
    assert manifest["models"]["emotion"]["model"].startswith("deepface-emotion@deepface-")
    assert manifest["skipped_analyzers"] == {}
    rows = open_images_table(str(out / "db")).to_arrow().to_pylist()
    assert len(rows) == 4
    for r in rows:
        assert r["face_error"] is None and 1 <= r["face_count"] <= 3   # random detector, capped by max_faces
        n = r["face_count"]
        assert len(r["face_kps"]) == n and all(len(k) == 10 for k in r["face_kps"])
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


def test_haar_rows_leave_the_insightface_columns_null(tmp_path):
    from raycurate.analyzers import FaceAnalyzer
    from raycurate.decode import decode_image

    face = FaceAnalyzer(detector="opencv_haar")
    img = decode_image((IMAGES / "faces" / "skimage_astronaut.png").read_bytes()).rgb
    out = face({"image": [img], "error": [None]})
    assert out["face_count"] == [1] and out["face_embedding"] == [None] and out["face_kps"] == [None]


def test_emotion_is_skipped_without_weights_and_strict_refuses(tmp_path, capsys):
    from raycurate.analyzers import active_analyzers
    from raycurate.config import load_config

    cfg = load_config(overrides=[("models.dir", str(tmp_path))])
    active, skipped = active_analyzers(cfg)
    assert "emotion" not in active and "deepface-emotion is missing" in skipped["emotion"]
    cfg = load_config(overrides=[("analyzers.face.enabled", False)])
    assert "needs the face analyser" in active_analyzers(cfg)[1]["emotion"]
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
