"""Search by face and by identity (raycurate/search/faces.py) on a faces table built from REAL embeddings.

The faces come from the real CenterFace detector and dlib embedder (the default install's models) on the
face_recognition project's photos; the identities are set by hand to the published truth (obama*: one
person, biden: another), as the grouping code would. A fifth face, obama2's vector as a face of a sampled
video frame (no stored picture, not grouped yet), checks the video lineage and the ``where`` filter.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import raycurate
from raycurate.analyzers.face_embedders import DLIB_ID, SAME_PERSON
from raycurate.cli import main
from raycurate.decode import decode_image
from raycurate.search import SearchError
from raycurate.schemas import FACES_SCHEMA, images_schema

from .conftest import IMAGES

FR = IMAGES / "face_recognition"
TRUTH = {"obama.jpg": "id-000001", "obama2.jpg": "id-000001", "obama3.jpg": "id-000001", "biden.jpg": "id-000002"}
RUN = "20260101T000000Z-face"
ONE_IMAGE = {"id": ["a" * 64], "uri": ["/x.jpg"], "run_id": [RUN], "media_type": ["image"],
             "width": [8], "height": [8]}


def _table(db: Path, name: str, schema: pa.Schema, columns: dict) -> None:
    import lancedb

    n = len(next(iter(columns.values())))
    data = {f.name: pa.array(columns[f.name], f.type) if f.name in columns else pa.nulls(n, f.type) for f in schema}
    lancedb.connect(str(db)).create_table(name, schema=schema).add(pa.table(data, schema=schema))


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    from raycurate.analyzers.face import FaceAnalyzer
    from raycurate.analyzers.face_features import FaceFeaturesAnalyzer

    names = list(TRUTH)
    images = [decode_image((FR / n).read_bytes()).rgb for n in names]
    batch = FaceAnalyzer(detector="centerface")({"image": images, "error": [None] * len(images)})
    out = FaceFeaturesAnalyzer(embedder="dlib")(batch)
    assert batch["face_count"] == [1, 1, 1, 1] and set(out["face_embedding_model"]) == {DLIB_ID}
    ids = [hashlib.sha256((FR / n).read_bytes()).hexdigest() for n in names]
    uris = [str(FR / n) for n in names]
    root = tmp_path_factory.mktemp("face-search") / "db"
    _table(root, "images", images_schema(), {
        "id": ids, "uri": uris, "run_id": [RUN] * 4, "media_type": ["image"] * 4,
        "width": [im.shape[1] for im in images], "height": [im.shape[0] for im in images],
        "face_count": batch["face_count"], "face_model": batch["face_model"]})
    vectors = out["face_embedding_dlib"]
    _table(root, "faces", FACES_SCHEMA, {
        "face_id": [f"{i}:0" for i in ids] + ["v" * 64 + "@12:0"], "run_id": [RUN] * 5,
        "source": ["image"] * 4 + ["frame"], "image_id": ids + [None], "uri": uris + ["/videos/talk.mp4"],
        "video_id": [None] * 4 + ["v" * 64], "frame_index": [None] * 4 + [12], "timestamp": [None] * 4 + [0.5],
        "face_index": [0] * 5, "box": [b[0] for b in batch["face_boxes"]] + [batch["face_boxes"][1][0]],
        "kps": [k[0] for k in batch["face_kps"]] + [batch["face_kps"][1][0]],
        "score": [s[0] for s in batch["face_scores"]] + [0.9],
        "sharpness": [s[0] for s in batch["face_sharpness"]] + [10.0],
        "embedding_model": [DLIB_ID] * 5, "face_embedding_dlib": vectors + [vectors[1]],
        "identity_id": [TRUTH[n] for n in names] + [None], "identity_distance": [0.02, 0.03, 0.04, 0.0, None]})
    return {"db": root, "ids": dict(zip(names, ids)), "sharpness": dict(zip(names, batch["face_sharpness"]))}


def test_a_face_finds_the_same_person_first_and_another_last(db):
    cur = raycurate.open(str(db["db"]))
    hits = cur.search(face=str(FR / "obama.jpg"), where="source = 'image'", k=10)
    rows = hits.to_pylist()
    assert [Path(r["uri"]).name for r in rows] == ["obama.jpg", "obama3.jpg", "obama2.jpg", "biden.jpg"]
    assert rows[0]["distance"] < 1e-3 and rows[0]["rank"] == 1
    assert [r["same_person"] for r in rows] == [True, True, True, False]
    assert rows[-1]["distance"] > SAME_PERSON["dlib"] > rows[-2]["distance"]
    assert [r["identity_id"] for r in rows] == ["id-000001"] * 3 + ["id-000002"]
    assert rows[0]["face_id"] == f"{db['ids']['obama.jpg']}:0" and rows[0]["image_id"] == db["ids"]["obama.jpg"]
    meta = hits.schema.metadata
    assert meta[b"raycurate.column"] == b"face_embedding_dlib" and meta[b"raycurate.model"] == DLIB_ID.encode()
    assert hits.column_names[:3] == ["rank", "distance", "same_person"] and len(rows[0]["box"]) == 4
    from PIL import Image

    with Image.open(rows[0]["thumbnail"]) as im:   # a crop of the face, not the whole photo
        assert im.format == "JPEG" and max(im.size) <= 256
        assert abs(im.size[0] / im.size[1] - 1.0) < 0.5


def test_a_face_of_a_video_frame_comes_with_its_lineage(db):
    rows = raycurate.open(str(db["db"])).search(face=str(FR / "obama2.jpg"), k=2).to_pylist()
    assert {r["source"] for r in rows} == {"image", "frame"} and all(r["distance"] < 1e-3 for r in rows)
    frame = next(r for r in rows if r["source"] == "frame")
    assert (frame["video_id"], frame["frame_index"], frame["timestamp"]) == ("v" * 64, 12, 0.5)
    assert frame["image_id"] is None and frame["thumbnail"] is None and frame["identity_id"] is None


def test_an_identity_lists_its_faces_sharpest_first(db):
    rows = raycurate.open(str(db["db"])).search(identity="id-000001", thumbnails=False).to_pylist()
    names = ["obama.jpg", "obama2.jpg", "obama3.jpg"]
    assert sorted(Path(r["uri"]).name for r in rows) == names
    assert [Path(r["uri"]).name for r in rows] == sorted(names, key=lambda n: -db["sharpness"][n][0])
    assert all(r["same_person"] and r["identity_id"] == "id-000001" for r in rows)
    with pytest.raises(SearchError, match="unknown identity.*id-999999"):
        raycurate.open(str(db["db"])).search(identity="id-999999")


def test_a_query_without_a_face_is_refused(db):
    cur = raycurate.open(str(db["db"]))
    with pytest.raises(SearchError, match="no face found in the query image grass.jpg"):
        cur.search(face=str(IMAGES / "negatives" / "grass.jpg"))
    with pytest.raises(SearchError, match="exactly one of"):
        cur.search(face=str(FR / "obama.jpg"), identity="id-000001")


def test_arcface_faces_without_the_pack_say_how_to_get_it(tmp_path):
    _table(tmp_path / "db", "images", images_schema(), ONE_IMAGE)
    rng = np.random.default_rng(0)
    _table(tmp_path / "db", "faces", FACES_SCHEMA, {
        "face_id": ["a" * 64 + ":0"], "run_id": [RUN], "source": ["image"],
        "embedding_model": ["insightface-buffalo_l:w600k_r50.onnx"],
        "face_embedding": [rng.normal(size=512).astype(np.float32).tolist()]})
    cur = raycurate.open(str(tmp_path / "db"), models_dir=str(tmp_path / "no-models"))
    with pytest.raises(SearchError, match=r"InsightFace pack.*raycurate models pull insightface-buffalo_l"):
        cur.search(face=str(FR / "obama.jpg"))
    _table(tmp_path / "db2", "images", images_schema(), ONE_IMAGE)
    with pytest.raises(SearchError, match="no 'faces' table"):
        raycurate.open(str(tmp_path / "db2")).search(identity="id-000001")


def test_cli_face_and_identity(db, capsys):
    assert main(["search", str(db["db"]), "--face", str(FR / "obama.jpg"), "--where", "source = 'image'",
                 "-k", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# 4 faces nearest on face_embedding_dlib (exact, dlib-face-recognition-resnet-v1)")
    order = [Path(line.split()[5]).name for line in lines[2:]]
    assert order == ["obama.jpg", "obama3.jpg", "obama2.jpg", "biden.jpg"]
    assert [line.split()[2] for line in lines[2:]] == ["yes", "yes", "yes", "no"]
    assert main(["search", str(db["db"]), "--identity", "id-000002", "--json"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["face_id"] == f"{db['ids']['biden.jpg']}:0" and row["identity_id"] == "id-000002"
    assert main(["search", str(db["db"]), "--face", str(IMAGES / "negatives" / "grass.jpg")]) == 2
    assert "no face found" in capsys.readouterr().err


def test_ui_face_search_returns_rows(db, tmp_path):
    from raycurate.ui import make_session
    from raycurate.ui.face_hits import face_search
    from raycurate.ui.session import UserError

    session = make_session(db=str(db["db"]), workdir=str(tmp_path / "work"), roots=[str(tmp_path)],
                           max_upload_mb=5, host="127.0.0.1", port=0)
    items, said, ids = face_search(session, face=str(FR / "biden.jpg"), k=5)
    assert len(items) == 4   # the face of a video frame has no stored picture to crop: not in the gallery
    assert re.fullmatch(r"#1 d=0\.00\d · same person · id-000002 · biden\.jpg", items[0][1]), items[0][1]
    assert [c.split(" · ")[1] for _, c in items] == ["same person", "other", "other", "other"]
    assert ids[0] == db["ids"]["biden.jpg"] and "nearest to the largest face of biden.jpg" in said
    items, said, ids = face_search(session, identity=" id-000001 ", k=12)
    assert len(items) == 3 and "identity `id-000001`" in said
    with pytest.raises(UserError, match="one face query"):
        face_search(session, k=3)
    from raycurate.ui.tabs_search import run_face_search

    gallery, msg, hit_ids = run_face_search(session, k=3, face=str(IMAGES / "negatives" / "grass.jpg"))
    assert gallery == [] and hit_ids == [] and "no face found" in msg
