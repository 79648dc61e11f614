"""Training-ready export formats, from a LanceDB table built by hand (no Ray, no model)."""
from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime, timezone

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageOps

from raycurate.analyzers import ANALYZERS
from raycurate.config import ConfigError, load_config, load_settings
from raycurate.export import (CaptionTemplate, json_safe, export_from_db, safe_name,
                              square_region, upper_body_box)
from raycurate.schemas import images_schema
from raycurate.store import open_or_create_images_table

from .conftest import IMAGES

ASTRONAUT = IMAGES / "faces" / "skimage_astronaut.png"
OBAMA = IMAGES / "face_recognition" / "obama.jpg"
BIDEN = IMAGES / "face_recognition" / "biden.jpg"
HOPPER6 = IMAGES / "exif" / "hopper_orientation_6.jpg"
GRACE = IMAGES / "faces" / "matplotlib_grace_hopper.jpg"
OBAMA_BOX = [349 / 910, 142 / 1137, 617 / 910, 409 / 1137]     # face_recognition's dlib box, as fractions
ASTRONAUT_BOX = [0.33, 0.08, 0.53, 0.36]


def _upright(path) -> np.ndarray:
    """The original, upright, by PIL alone (independent of raycurate.decode)."""
    return np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))


def _unit(seed: int, near: np.ndarray | None = None) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=512).astype(np.float32)
    v = near + 0.05 * v / np.linalg.norm(v) if near is not None else v
    return (v / np.linalg.norm(v)).astype(np.float32)


def _row(path, uri: str | None = None, **cols) -> dict:
    data = path.read_bytes()
    h, w = _upright(path).shape[:2]
    return {"id": hashlib.sha256(data).hexdigest(), "uri": uri or str(path), "run_id": "r1", "media_type": "image",
            "file_size": len(data), "format": Image.open(path).format, "width": w, "height": h,
            "analyzed_at": datetime(2024, 1, 2, tzinfo=timezone.utc), **cols}


E1 = _unit(1)
ROWS = {
    "astronaut": dict(face_count=1, face_boxes=[ASTRONAUT_BOX], face_pose=[[0.0, 30.0, 0.0]], face_embedding=E1,
                      clip_shot=["close-up"], emotion_dominant="happy", clip_clothing=["a suit"],
                      clip_accessories=["glasses", "a hat"], clip_lighting=["daylight"], content_vector=[0.1] * 63,
                      identity_id="id-000001"),
    "obama": dict(face_count=1, face_boxes=[OBAMA_BOX], face_views=["frontal"], face_embedding=_unit(2, near=E1),
                  pose_full_body=[True], pose_orientation=["front"], clip_clothing=["no visible clothing"],
                  clip_accessories=[], identity_id="id-000002"),
    "biden": dict(face_count=1, face_boxes=[[0.0, 0.3, 0.3, 0.4]], face_embedding=_unit(3), identity_id="id-000003"),
    "hopper6": dict(face_count=1, face_boxes=[[0.25, 0.2, 0.7, 0.65]], face_pose=[[0.0, -75.0, 0.0]],
                    emotion_dominant="surprise",
                    pose_keypoints=[[0.5, 0.3, 0.9] + [0, 0, 0.1] * 4 + [0.3, 0.5, 0.9, 0.7, 0.5, 0.9]
                                    + [0, 0, 0.1] * 4 + [0.35, 0.9, 0.9, 0.65, 0.9, 0.8] + [0, 0, 0.1] * 4],
                    pose_boxes=[[0.2, 0.1, 0.8, 1.0]]),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("formats")
    copy = tmp / "copy_of_astronaut.png"           # the same bytes under a second name: exported once
    shutil.copy(ASTRONAUT, copy)
    rows = [_row(ASTRONAUT, **ROWS["astronaut"]), _row(OBAMA, **ROWS["obama"]), _row(BIDEN, **ROWS["biden"]),
            _row(HOPPER6, **ROWS["hopper6"]),
            _row(copy, uri="/zzz/copy_of_astronaut.png", **ROWS["astronaut"]),   # larger uri: the copy is the dup
            _row(GRACE, face_count=1, duplicate_of="f" * 64, duplicate_column="content_vector"),  # a near dup
            {**_row(GRACE, uri="/broken.jpg"), "id": "0" * 64, "error": "corrupt or truncated image"}]
    db = str(tmp / "db")
    table = open_or_create_images_table(db, images_schema())
    table.add(pa.Table.from_pylist(rows, schema=images_schema()))
    from raycurate.store.people_schema import IDENTITIES_SCHEMA, IDENTITIES_TABLE
    from raycurate.store.table import open_or_create_table

    open_or_create_table(db, IDENTITIES_TABLE, IDENTITIES_SCHEMA).add(pa.Table.from_pylist(
        [{"identity_id": "id-000002", "family": "arcface", "name": "Barack"},
         {"identity_id": "id-000003", "family": "arcface", "name": "../bad name"}], schema=IDENTITIES_SCHEMA))
    export = load_settings(overrides=[("export.kohya.trigger", "ohwx"), ("export.face_crops.enabled", True),
                                      ("export.body_crops.enabled", True), ("export.body_crops.size", 256),
                                      ("export.group_by_identity.enabled", True)]).export
    with pytest.MonkeyPatch.context() as mp:          # no model may load during an export
        for cls in ANALYZERS.values():
            mp.setattr(cls, "load", lambda self: pytest.fail(f"{type(self).__name__} loaded a model"))
        out = tmp / "out"
        result = export_from_db(db, str(out), where=None, export=export)
    meta = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    by_name = {m["uri"].rsplit("/", 1)[-1]: m for m in meta}
    return {"out": out, "meta": meta, "by": by_name, "result": result, "db": db, "export": export, "rows": rows}


def test_kept_rows_skip_errors_and_marked_duplicates(exported):
    by, r = exported["by"], exported["result"]
    assert set(by) == {"skimage_astronaut.png", "obama.jpg", "biden.jpg", "hopper_orientation_6.jpg",
                       "copy_of_astronaut.png"}            # no error row, no duplicate_of row
    assert r.kept == 5 and r.exact_duplicates == 1 and r.exported == 4 and r.copy_errors == 0
    dup = by["copy_of_astronaut.png"]
    assert dup["file"] is None and dup["duplicate_of"] == dup["id"] and dup["duplicate_column"] == "id"
    assert dup["caption"] is None and not list((exported["out"] / "images").glob("copy_of*"))
    for m in exported["meta"]:
        assert "content_vector" not in m and "face_embedding" not in m and "clip_embedding" not in m


def test_kohya_layout_and_captions(exported):
    folder, by = exported["out"] / "train" / "10_person", exported["by"]
    expected = {
        "skimage_astronaut.png": "ohwx, 1 person, close-up, looking right, smiling, suit, glasses, hat, daylight",
        "obama.jpg": "ohwx, 1 person, full body shot, frontal, facing the camera",   # no visible clothing: left out
        "biden.jpg": "ohwx, 1 person, wide shot, face partly out of frame",          # the face box alone
        # its keypoints show the nose, both shoulders and both hips: an upper body shot, whatever the face's size
        "hopper_orientation_6.jpg": "ohwx, 1 person, upper body shot, profile, surprised expression",
    }
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 8
    for uri_name, caption in expected.items():
        m = by[uri_name]
        name = safe_name(m["uri"], m["id"], m["format"])
        stem = name.rsplit(".", 1)[0]
        assert name in names and f"{stem}.txt" in names
        assert (folder / f"{stem}.txt").read_text(encoding="utf-8") == caption
        assert m["caption"] == caption
        assert (folder / name).read_bytes() == (exported["out"] / m["file"]).read_bytes()
        assert (folder / name).stat().st_ino == (exported["out"] / m["file"]).stat().st_ino   # a hard link
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == m["id"]


def test_parquet_holds_the_jsonl_rows(exported):
    table = pq.read_table(exported["out"] / "metadata.parquet")
    assert table.column_names == list(exported["meta"][0])
    rows = [json.loads(json.dumps(json_safe(r))) for r in table.to_pylist()]
    assert rows == exported["meta"]
    assert "identity" in table.column_names and table.schema.field("face_crops").type == pa.list_(pa.string())


def _crop_matches(crop_path, original: np.ndarray, box_px) -> float:
    """Mean absolute difference between a saved crop and the original's region it should show."""
    crop = np.asarray(Image.open(crop_path).convert("RGB")).astype(np.float32)
    h, w = original.shape[:2]
    x, y, side = square_region(box_px, 0.4, w, h)
    assert 0 <= x and 0 <= y and x + side <= w and y + side <= h
    region = cv2.resize(original[y:y + side, x:x + side], crop.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    return float(np.abs(crop - region.astype(np.float32)).mean())


@pytest.mark.parametrize("name, path", [("skimage_astronaut.png", ASTRONAUT), ("obama.jpg", OBAMA),
                                        ("hopper_orientation_6.jpg", HOPPER6), ("biden.jpg", BIDEN)])
def test_face_crops_have_the_size_and_cover_the_face(exported, name, path):
    m = exported["by"][name]
    assert m["face_crops"] == [f"face_crops/{safe_name(m['uri'], m['id'], m['format']).rsplit('.', 1)[0]}_f0.jpg"]
    crop = exported["out"] / m["face_crops"][0]
    assert Image.open(crop).size == (512, 512)
    original = _upright(path)
    h, w = original.shape[:2]
    box = np.array(m["face_boxes"][0]) * [w, h, w, h]
    x, y, side = square_region(box, 0.4, w, h)
    assert x <= box[0] and y <= box[1] and box[2] <= x + side and box[3] <= y + side   # the face is inside
    if name != "biden.jpg":   # biden's box is on the border: moved inside, so not centred
        assert side == round(max(box[2] - box[0], box[3] - box[1]) * 1.8)
    assert _crop_matches(crop, original, box) < 4.0
    if name == "hopper_orientation_6.jpg":   # the boxes are in the upright frame: the raw pixels do not match
        raw = np.asarray(Image.open(path).convert("RGB"))
        assert _crop_matches(crop, raw, box) > 4 * _crop_matches(crop, original, box)


def test_body_crops(exported):
    by = exported["by"]
    hop = by["hopper_orientation_6.jpg"]
    assert len(hop["body_crops"]) == 1 and Image.open(exported["out"] / hop["body_crops"][0]).size == (256, 256)
    # pose: top of the person's box to the lowest visible hip, across visible shoulders and hips
    assert upper_body_box(hop, 100, 100) == pytest.approx([30, 10, 70, 90])
    # no pose: head + 3 face heights below the chin, 3 face heights wide
    assert upper_body_box({"face_boxes": [[0.4, 0.1, 0.6, 0.3]]}, 100, 100) == pytest.approx([20, 10, 80, 90])
    assert upper_body_box({"face_boxes": []}, 100, 100) is None
    assert all(len(by[n]["body_crops"]) == 1 for n in ("obama.jpg", "biden.jpg", "skimage_astronaut.png"))


def test_identity_folders_follow_the_stored_identities(exported):
    by, out = exported["by"], exported["out"]
    assert by["skimage_astronaut.png"]["identity"] == by["copy_of_astronaut.png"]["identity"] == "id-000001"
    assert by["obama.jpg"]["identity"] == "Barack"                  # the name a user gave the identity
    assert by["biden.jpg"]["identity"] == "id-000003"               # a name that is not a safe folder: the id
    assert by["hopper_orientation_6.jpg"]["identity"] == "unknown"  # no stored identity
    assert sorted(p.name for p in (out / "by_identity").iterdir()) == ["Barack", "id-000001", "id-000003", "unknown"]
    assert len(list((out / "by_identity" / "id-000001").iterdir())) == 1   # the copy's bytes are exported once
    assert exported["result"].identities == 3


def test_include_duplicates_and_where(exported, tmp_path):
    from dataclasses import replace

    e = exported["export"]
    export = replace(e, include_duplicates=True, kohya=replace(e.kohya, enabled=False), parquet=False,
                     face_crops=replace(e.face_crops, enabled=False), body_crops=replace(e.body_crops, enabled=False),
                     group_by_identity=replace(e.group_by_identity, enabled=False))
    res = export_from_db(exported["db"], str(tmp_path / "o"), where="face_count = 1", export=export)
    names = {json.loads(line)["uri"].rsplit("/", 1)[-1] for line in (tmp_path / "o" / "metadata.jsonl").open()}
    assert "matplotlib_grace_hopper.jpg" in names and "broken.jpg" not in names and res.kept == 6
    assert not (tmp_path / "o" / "train").exists() and not (tmp_path / "o" / "metadata.parquet").exists()
    res = export_from_db(exported["db"], str(tmp_path / "o2"), where="emotion_dominant = 'happy'", export=export)
    assert res.kept == 2 and res.exported == 1


def test_caption_template_rules():
    t = CaptionTemplate.from_mapping({"separator": "; ", "parts": [
        "{trigger}", {"text": "{a} and {b}"}, {"text": ["{x}", "{y}"], "map": {"x": {"*": None}}},
        {"text": "{n}", "ranges": {"n": [[0, "neg"], [None, None]]}},
        {"text": "{flag}", "map": {"flag": {True: "yes"}}}]})
    row = {"a": "A", "b": None, "x": "anything", "y": "Y", "n": -1.5, "flag": True}
    assert t.render(row, "tw") == "tw; Y; neg; yes"
    assert t.render({"a": "A", "b": ["B", "B", None], "n": 3}, None) == "A and B"
    assert t.render({"a": "A", "b": "B"}, "A and B") == "A and B"    # identical parts once
    with pytest.raises(ConfigError, match="no column named {nope}"):
        CaptionTemplate.from_mapping({"parts": ["{nope}"]}, source="t.yaml").check_columns(["a"])
    for bad in ({"parts": []}, {"parts": ["no placeholder"]}, {"parts": [{"text": "{a}", "map": {"b": {}}}]},
                {"parts": ["{a}"], "extra": 1}, {"parts": [{"text": "{a}", "ranges": {"a": [[1]]}}]}):
        with pytest.raises(ConfigError):
            CaptionTemplate.from_mapping(bad)


def test_export_config_is_validated():
    for key, value in (("export.kohya.repeats", 0),
                       ("export.kohya.dir", "../x"), ("export.kohya.captions", "/nope.yaml"),
                       ("export.face_crops.padding", -1)):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(overrides=[(key, value)])


def test_crops_at_training_sizes_and_aspect_buckets_record_their_boxes(tmp_path):
    from raycurate.export import write_crops
    from raycurate.settings import CropSettings
    from raycurate.storage import OutputDir

    data = OBAMA.read_bytes()
    rgb = _upright(OBAMA)
    h, w = rgb.shape[:2]
    face = [0.35, 0.2, 0.6, 0.55]   # a face box (fractions)
    opt = CropSettings(enabled=True, size=512, sizes=[768], buckets=["1:1", "3:4", "4:3"], padding=0.4)
    out = OutputDir(str(tmp_path))
    out.makedirs("face_crops")
    faces, bodies, errors, crops = write_crops(out, {"face_boxes": [face]}, data, "obama", opt, None)
    assert not errors and bodies == []
    sizes = {(c["width"], c["height"]) for c in crops}
    assert sizes == {(512, 512), (384, 512), (512, 384), (768, 768), (576, 768), (768, 576)}
    px = [face[0] * w, face[1] * h, face[2] * w, face[3] * h]
    for c in crops:
        assert Image.open(tmp_path / c["file"]).size == (c["width"], c["height"])
        x1, y1, x2, y2 = c["box"]
        assert x1 <= px[0] and y1 <= px[1] and px[2] <= x2 and px[3] <= y2          # the face is inside
        assert abs((x2 - x1) / (y2 - y1) - c["width"] / c["height"]) < 0.1           # the bucket's aspect
        assert c["kind"] == "face" and c["face_index"] == 0 and c["file"].endswith(f"_{c['width']}x{c['height']}.jpg")
