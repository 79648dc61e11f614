"""Similar-frame search (raycurate/search/images.py) on a DB the real pipeline wrote, with a tiny random CLIP.

The CLIP model is an open_clip architecture with random weights (tests/random_models.py): its
embeddings mean nothing, but the path is real (the stored vectors, the text tower, LanceDB's
cosine search), so distances can be checked against numpy.
"""
import json

import numpy as np
import pytest

import raycurate
from raycurate import models as m
from raycurate.cli import main
from raycurate.search import SearchError, format_hits, where_shown
from raycurate.schemas import images_schema
from raycurate.store import conform, open_images_table, open_or_create_images_table

from .conftest import IMAGES, copy_into
from .random_models import write_tiny_clip


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_tiny_clip(root)
    m.record("test-tiny-clip", root)
    return root


@pytest.fixture(scope="module")
def db(tmp_path_factory, ray_session, models_dir):
    """Ten images (four faces, five negatives, one EXIF-rotated) and an empty file, curated with CLIP."""
    inp = tmp_path_factory.mktemp("search-input")
    copy_into(inp, IMAGES / "faces", IMAGES / "negatives", IMAGES / "exif" / "hopper_orientation_6.jpg")
    (inp / "zero.jpg").write_bytes(b"")
    out = tmp_path_factory.mktemp("search-out")
    rc = main(["run", str(inp), "--out", str(out), "--set", "video.enabled=false",
               "--set", "analyzers.clip.weights=test-tiny-clip", "--set", "analyzers.clip.aesthetic=null",
               "--set", f"models.dir={models_dir}", "--set", "analyzers.emotion.enabled=false",
               "--set", "analyzers.pose.enabled=false"])
    assert rc == 0
    rows = open_images_table(str(out / "db")).to_arrow().to_pylist()
    return {"inp": inp, "db": out / "db", "rows": {r["uri"].rsplit("/", 1)[1]: r for r in rows}}


@pytest.fixture()
def no_clip(tmp_path):
    """A models directory without CLIP weights."""
    return str(tmp_path / "no-models")


def test_the_db_holds_clip_vectors(db):
    row = db["rows"]["skimage_astronaut.png"]
    assert row["clip_model"].startswith("test-tiny-clip@") and len(row["clip_embedding"]) == 512
    assert db["rows"]["zero.jpg"]["content_vector"] is None


def test_image_query_returns_itself_first_on_content_vector(db, no_clip):
    cur = raycurate.open(str(db["db"]), models_dir=no_clip)
    for name in ("skimage_astronaut.png", "hopper_orientation_6.jpg", "skimage_no_time_for_that_tiny.gif"):
        path = next(db["inp"].rglob(name))
        hits = cur.search(image=str(path), k=5)
        assert hits.schema.metadata[b"raycurate.column"] == b"content_vector"
        first = hits.to_pylist()[0]
        assert first["id"] == db["rows"][name]["id"] and first["rank"] == 1
        assert first["distance"] < 1e-4, (name, first["distance"])
        d = hits.column("distance").to_pylist()
        assert d == sorted(d) and len(d) == 5
    # every hit has the fields a user needs, and a 256-px JPEG thumbnail under <db>/thumbnails
    assert set(hits.column_names) >= {"rank", "distance", "id", "uri", "thumbnail", "media_type", "width", "height",
                                      "source_video_uri", "frame_index", "frame_timestamp", "face_count",
                                      "nsfw_score", "quality_sharpness", "clip_aesthetic", "stage3_score"}
    from PIL import Image

    astronaut = cur.search(id=db["rows"]["skimage_astronaut.png"]["id"], k=1).to_pylist()[0]   # 512 x 512
    assert astronaut["thumbnail"] == str(db["db"] / "thumbnails" / f"{astronaut['id'][:16]}.jpg")
    with Image.open(astronaut["thumbnail"]) as im:
        assert im.format == "JPEG" and im.size == (256, 256)
    with Image.open(first["thumbnail"]) as im:   # the tiny GIF is not enlarged
        assert im.size == (db["rows"]["skimage_no_time_for_that_tiny.gif"]["width"],
                           db["rows"]["skimage_no_time_for_that_tiny.gif"]["height"])


def test_image_query_from_an_array_and_the_out_folder(db, no_clip, tmp_path):
    from PIL import Image

    rgb = np.asarray(Image.open(IMAGES / "faces" / "skimage_astronaut.png").convert("RGB"))
    hits = raycurate.open(str(db["db"].parent), models_dir=no_clip, thumbs_dir=str(tmp_path / "t")).search(
        image=rgb, k=1)
    assert hits.column("id")[0].as_py() == db["rows"]["skimage_astronaut.png"]["id"]
    assert hits.column("thumbnail")[0].as_py().startswith(str(tmp_path / "t"))


def test_id_query_returns_itself_first_and_where_prefilters(db, no_clip):
    cur = raycurate.open(str(db["db"]), models_dir=no_clip)
    astronaut = db["rows"]["skimage_astronaut.png"]["id"]
    hits = cur.search(id=astronaut[:12], k=20)
    assert hits.column("id")[0].as_py() == astronaut and hits.column("distance")[0].as_py() < 1e-5
    assert hits.num_rows == 10   # every decoded image; the empty file has no vector
    faces = {r["id"] for r in db["rows"].values() if (r["face_count"] or 0) >= 1}
    assert 0 < len(faces) < 10
    hits = cur.search(id=astronaut, where="face_count >= 1", k=20)
    assert set(hits.column("id").to_pylist()) == faces
    none = cur.search(id=astronaut, where="face_count >= 1 AND media_type = 'video_frame'", k=5)
    assert none.num_rows == 0


def test_text_search_with_clip_distances_match_numpy(db, models_dir):
    cur = raycurate.open(str(db["db"]), models_dir=str(models_dir))
    assert cur.usable_clip() == ("test-tiny-clip", "")
    hits = cur.search(text="a photo of an astronaut", k=20)
    assert hits.schema.metadata[b"raycurate.column"] == b"clip_embedding"
    assert hits.num_rows == 10
    d = np.array(hits.column("distance").to_pylist())
    assert np.all(np.diff(d) >= 0)
    query = cur._clip_analyzer("test-tiny-clip").embed_text(["a photo of an astronaut"])[0]
    assert abs(np.linalg.norm(query) - 1) < 1e-5
    by_id = {r["id"]: np.asarray(r["clip_embedding"]) for r in db["rows"].values()}
    expected = [1 - float(by_id[i] @ query / np.linalg.norm(by_id[i])) for i in hits.column("id").to_pylist()]
    assert np.allclose(d, expected, atol=1e-5)
    # column=None picks CLIP for an image query too, and a stored image is its own nearest neighbour
    path = next(db["inp"].rglob("skimage_coffee.png"))
    hits = cur.search(image=str(path), k=3)
    assert hits.schema.metadata[b"raycurate.column"] == b"clip_embedding"
    assert hits.column("id")[0].as_py() == db["rows"]["skimage_coffee.png"]["id"]
    assert hits.column("distance")[0].as_py() < 1e-4


def test_text_search_without_clip_weights_is_a_clear_error(db, no_clip, capsys):
    with pytest.raises(SearchError, match="text search needs CLIP.*from test-tiny-clip, which is unknown"):
        raycurate.open(str(db["db"]), models_dir=no_clip).search(text="a person")
    rc = main(["search", str(db["db"]), "--text", "a person", "--models-dir", no_clip])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "text search needs CLIP" in err and "raycurate models pull test-tiny-clip" in err


def test_content_vector_and_id_search_load_no_model(db, models_dir, no_clip, monkeypatch):
    from raycurate.analyzers import ANALYZERS, ContentVectorAnalyzer

    def refuse(self):
        raise AssertionError(f"{type(self).__name__} loaded a model")

    for cls in ANALYZERS.values():
        if cls is not ContentVectorAnalyzer:
            monkeypatch.setattr(cls, "load", refuse)
    path = next(db["inp"].rglob("skimage_camera.png"))
    camera = db["rows"]["skimage_camera.png"]["id"]
    assert raycurate.open(str(db["db"]), models_dir=no_clip).search(image=str(path), k=2) \
        .column("id")[0].as_py() == camera
    # --id reads the stored vector: even on clip_embedding, with the weights present, no model is loaded
    hits = raycurate.open(str(db["db"]), models_dir=str(models_dir)).search(id=camera, k=2)
    assert hits.schema.metadata[b"raycurate.column"] == b"clip_embedding"
    assert hits.column("id")[0].as_py() == camera
    with pytest.raises(AssertionError, match="ClipAnalyzer loaded a model"):   # the guard does bite
        raycurate.open(str(db["db"]), models_dir=str(models_dir)).search(image=str(path), k=2)


def test_cli_table_json_and_bad_input(db, no_clip, capsys, tmp_path):
    astronaut = db["rows"]["skimage_astronaut.png"]
    assert main(["search", str(db["db"]), "--id", astronaut["id"][:16], "-k", "3", "--models-dir", no_clip]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "# 3 hits on content_vector (exact)" and out[1].split()[:3] == ["rank", "distance", "id"]
    assert out[2].split()[:3] == ["1", "0.0000", astronaut["id"][:12]] and astronaut["uri"] in out[2]
    assert len(out) == 5
    assert main(["search", str(db["db"]), "--id", astronaut["id"], "-k", "2", "--json", "--where",
                 "face_count = 1", "--models-dir", no_clip]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 and rows[0]["id"] == astronaut["id"] and all(r["face_count"] == 1 for r in rows)
    for argv, msg in ((["--id", "0123456789abcdef"], "unknown id"),
                      (["--id", "not-hex"], "not a content id"),
                      (["--image", str(tmp_path / "missing.jpg")], "query image not found"),
                      (["--id", astronaut["id"], "--where", "no_such_column = 1"], "no_such_column"),
                      (["--id", astronaut["id"], "--column", "quality_sharpness"], "not a vector column"),
                      (["--id", astronaut["id"], "-k", "0"], "k must be at least 1")):
        assert main(["search", str(db["db"]), *argv, "--models-dir", no_clip]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and msg in err, (argv, err)
    assert main(["search", str(tmp_path / "nowhere"), "--id", "abcd"]) == 2
    assert "no LanceDB" in capsys.readouterr().err and not (tmp_path / "nowhere").exists()


def test_ann_index_is_used_with_exact_distances(tmp_path):
    """A synthetic table with IVF indexes: hits and distances equal those of an exact search."""
    rng = np.random.default_rng(0)
    n = 600
    vecs = rng.normal(size=(n, 63)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    import pyarrow as pa

    ids = [f"{i:064x}" for i in range(n)]
    rows = pa.table({"id": ids, "uri": [str(tmp_path / f"{i}.jpg") for i in range(n)], "run_id": ["r"] * n,
                     "media_type": ["image"] * n, "face_count": pa.array(np.arange(n) % 3, pa.int32()),
                     "content_vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), 63)})
    table = open_or_create_images_table(str(tmp_path / "db"), images_schema())
    table.add(conform(rows, images_schema()))
    cur = raycurate.open(str(tmp_path / "db"), models_dir=str(tmp_path / "none"))
    exact = cur.search(id=ids[7], where="face_count = 1", k=10, thumbnails=False)
    assert exact.schema.metadata[b"raycurate.method"] == b"exact"
    from lancedb.index import IvfFlat, IvfPq

    for config in (IvfPq(distance_type="cosine", num_partitions=4, num_sub_vectors=9),
                   IvfFlat(distance_type="l2", num_partitions=4), IvfFlat(distance_type="dot", num_partitions=4)):
        table.create_index("content_vector", config=config, replace=True)
        cur = raycurate.open(str(tmp_path / "db"), models_dir=str(tmp_path / "none"))   # sees the index
        hits = cur.search(id=ids[7], where="face_count = 1", k=10, thumbnails=False)
        assert hits.schema.metadata[b"raycurate.method"].startswith(b"ann:"), config
        assert hits.column("id").to_pylist() == exact.column("id").to_pylist(), config
        assert np.allclose(hits.column("distance").to_pylist(), exact.column("distance").to_pylist(), atol=1e-5)
        assert hits.column("thumbnail").null_count == 10
    with pytest.raises(SearchError, match="text search needs CLIP: the images table holds no CLIP vectors"):
        cur.search(text="a person")


def test_a_video_frame_is_shown_as_video_at_timestamp(db, no_clip):
    row = {"source_video_uri": "/clips/a.mp4", "frame_timestamp": 1.075, "frame_index": 3, "uri": "/o/f.jpg"}
    assert where_shown(row) == "/clips/a.mp4@1.075s"
    assert where_shown({"uri": "/o/x.jpg", "source_video_uri": None}) == "/o/x.jpg"
    hits = raycurate.open(str(db["db"]), models_dir=no_clip).search(id=db["rows"]["grass.jpg"]["id"], k=1)
    assert "grass.jpg" in format_hits(hits).splitlines()[2]
