import pytest

from raycurate.export import safe_name
from raycurate.gates import build_gates, kept_predicate
from raycurate.settings import FilterSettings


@pytest.mark.parametrize("uri", [
    "../../etc/passwd", "/data/..", "s3://bucket/a/../../x.jpg", "C:\\Users\\x\\..\\evil.jpg",
    "/data/.hidden.jpg", "/data/名前 with spaces?.jpg", "/data/" + "a" * 300 + ".jpg", "/data/",
])
def test_safe_names_stay_inside_and_are_plain(uri):
    name = safe_name(uri, "ab" * 32, "JPEG")
    assert "/" not in name and "\\" not in name and not name.startswith(".")
    assert ".." not in name.replace("-" + "ab" * 8, "")
    assert len(name) < 120 and name.endswith(".jpg")


def test_safe_names_do_not_collide_across_folders():
    assert safe_name("/a/x.jpg", "1" * 64, "JPEG") != safe_name("/b/x.jpg", "2" * 64, "JPEG")
    assert safe_name("/a/x.txt", "1" * 64, "PNG").endswith(".png")  # the content decides the extension


def test_gates_only_for_analyzers_that_ran():
    f = FilterSettings(min_faces=1, max_faces=None, max_nsfw_score=0.2, drop_blurry=True, min_side=64,
                       where="quality_brightness > 0.1")
    names = [g.name for g in build_gates(f, ["quality", "nsfw"])]
    assert names == ["min_side", "quality.drop_blurry", "nsfw.max_score", "where"]
    sql = kept_predicate(build_gates(f, ["face"]), ["face"])
    assert sql.startswith("error IS NULL AND face_error IS NULL")
    assert "face_count >= 1" in sql and "(quality_brightness > 0.1)" in sql


def test_filter_spec_gates_run_inside_lancedb(tmp_path):
    """The filter spec's gates are SQL over stored columns, nested lists included (head yaw)."""
    import lancedb
    import pyarrow as pa

    from raycurate.config import load_settings
    from raycurate.gates import build_gates, kept_predicate
    from raycurate.schemas import images_schema

    schema = images_schema()
    rows = [  # (face_count, nsfw, sharpness, pose of the largest face)
        ("a", 1, 0.1, 300.0, [[0.0, 10.0, 0.0]]), ("b", 1, 0.1, 300.0, [[0.0, -45.0, 0.0]]),
        ("c", 2, 0.1, 300.0, [[0.0, 5.0, 0.0], [0.0, 80.0, 0.0]]), ("d", 1, 0.6, 300.0, [[0.0, 0.0, 0.0]]),
        ("e", 1, 0.1, 20.0, [[0.0, 0.0, 0.0]]), ("f", 1, 0.1, 300.0, None)]
    data = {f.name: pa.nulls(len(rows), f.type) for f in schema}
    data.update(id=pa.array([r[0] for r in rows]), uri=pa.array([r[0] for r in rows]),
                run_id=pa.array(["r"] * len(rows)), media_type=pa.array(["image"] * len(rows)),
                width=pa.array([500] * len(rows), pa.int32()), height=pa.array([500] * len(rows), pa.int32()),
                face_count=pa.array([r[1] for r in rows], pa.int32()),
                nsfw_score=pa.array([r[2] for r in rows], pa.float32()),
                quality_sharpness=pa.array([r[3] for r in rows], pa.float32()),
                quality_is_blurry=pa.array([False] * len(rows)),
                face_pose=pa.array([r[4] for r in rows], schema.field("face_pose").type))
    table = lancedb.connect(str(tmp_path)).create_table("images", schema=schema)
    table.add(pa.table(data, schema=schema))
    settings = load_settings(overrides=[("filter.max_faces", 1), ("filter.max_nsfw_score", 0.2),
                                        ("filter.min_sharpness", 100), ("filter.max_abs_yaw", 30)])
    where = kept_predicate(build_gates(settings.filter, ["quality", "face", "face_features", "nsfw"]), [])
    assert sorted(r["id"] for r in table.search().where(where).select(["id"]).limit(None).to_list()) == ["a"]
