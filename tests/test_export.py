import pytest

from raycurate.export import safe_name
from raycurate.gates import build_gates, kept_predicate


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
    f = {"min_faces": 1, "max_faces": None, "max_nsfw_score": 0.2, "drop_blurry": True, "min_side": 64,
         "where": "quality_brightness > 0.1"}
    names = [g.name for g in build_gates(f, ["quality", "nsfw"])]
    assert names == ["min_side", "quality.drop_blurry", "nsfw.max_score", "where"]
    sql = kept_predicate(build_gates(f, ["face"]), ["face"])
    assert sql.startswith("error IS NULL AND face_error IS NULL")
    assert "face_count >= 1" in sql and "(quality_brightness > 0.1)" in sql
