"""The DB is a catalogue (raycurate.ingest, raycurate.export.sync): a run analyses only the content the DB does
not hold, the same bytes under several names are read and analysed once, and OUT then describes the whole
curated set, on real photos and clips of tests/data."""
import json
import shutil

import pytest

from raycurate.cli import main
from raycurate.ingest import names_of
from raycurate.store import FRAMES_TABLE, VIDEOS_TABLE, open_table
from raycurate.store.table import open_images_table

from .conftest import DATA, IMAGES

FAST = ["--profile", "fast-cpu", "--set", "analyzers.nsfw.enabled=false"]
FIRST = [IMAGES / "faces" / "matplotlib_grace_hopper.jpg", IMAGES / "faces" / "skimage_astronaut.png",
         IMAGES / "face_recognition" / "obama.jpg", IMAGES / "negatives" / "grass.jpg"]
LATER = [IMAGES / "face_recognition" / "biden.jpg", IMAGES / "negatives" / "skimage_coffee.png"]


def _run(inp, out, *extra):
    assert main(["run", str(inp), "--out", str(out), *FAST, *extra]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    meta = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    return manifest, meta


def _files(out):
    """Every file in OUT but the DB, the logs and the run's own files, with its mtime."""
    own = {"manifest.json", "report.html", ".raycurate-run.json", ".raycurate-lock.json"}
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*")
            if p.is_file() and p.parts[len(out.parts)] not in ("db", "logs") and p.name not in own}


def _versions(db):
    import lancedb

    conn = lancedb.connect(str(db))
    return {name: conn.open_table(name).version for name in conn.list_tables().tables}


@pytest.fixture(scope="module")
def grown(tmp_path_factory, ray_session):
    """One folder run three times into one OUT: as it is, unchanged, then grown by two photos and a copy."""
    inp, out = tmp_path_factory.mktemp("in"), tmp_path_factory.mktemp("out")
    for p in FIRST:
        shutil.copy(p, inp / p.name)
    first = _run(inp, out)
    files, versions = _files(out), _versions(out / "db")
    rows = {r["id"]: r for r in open_images_table(str(out / "db")).to_arrow().to_pylist()}
    again = _run(inp, out)
    unchanged = {"files": _files(out), "versions": _versions(out / "db")}
    for p in LATER:
        shutil.copy(p, inp / p.name)
    shutil.copy(FIRST[1], inp / "astronaut_again.png")   # stored bytes under a new name
    grown_run = _run(inp, out)
    return {"inp": inp, "out": out, "first": first, "files": files, "versions": versions, "rows": rows,
            "again": again, "unchanged": unchanged, "grown": grown_run}


def test_an_unchanged_rerun_analyses_nothing_and_changes_nothing(grown):
    (m1, meta1), (m2, meta2) = grown["first"], grown["again"]
    assert m1["counts"]["rows_written"] == len(FIRST) and m1["counts"]["kept"] == 3   # grass: no face
    assert m2["ingest"]["new"] == {"image": 0, "video": 0} and m2["ingest"]["already_stored"]["image"] == 4
    assert m2["ingest"]["ids_known"] == 4 and m2["ingest"]["hashed_before_reading"] == 0   # not read again
    assert m2["counts"]["rows_written"] == 0 and "pipeline" not in m2["timings_s"] and "ray" not in m2
    assert m2["counts"]["kept"] == m2["counts"]["exported"] == 3 and meta2 == meta1   # the same curated set
    assert grown["unchanged"]["versions"] == grown["versions"]                       # no table written
    assert grown["unchanged"]["files"] == grown["files"]                             # no file written again
    assert m2["timings_s"]["total"] < m1["timings_s"]["total"] / 3


def test_a_grown_folder_costs_only_its_new_content_and_out_holds_the_whole_set(grown):
    m3, meta3 = grown["grown"]
    assert m3["ingest"]["new"]["image"] == len(LATER) and m3["counts"]["rows_written"] == len(LATER)
    assert m3["ingest"]["already_stored"]["image"] == len(FIRST) and m3["ingest"]["duplicate_files"] == 1
    table = open_images_table(str(grown["out"] / "db"))
    now = {r["id"]: r for r in table.to_arrow().to_pylist()}
    assert len(now) == len(FIRST) + len(LATER)                                   # one row per content
    for cid, before in grown["rows"].items():                                    # earlier rows untouched
        assert now[cid]["run_id"] == before["run_id"] and now[cid]["face_count"] == before["face_count"]
    # the curated set of the whole catalogue: the first run's kept rows and the new kept ones
    first_ids = {m["id"] for m in grown["first"][1]}
    assert first_ids < {m["id"] for m in meta3} and len(meta3) == m3["counts"]["kept"] == 4   # coffee: no face
    exported = {m["file"] for m in meta3}
    assert exported == {f"images/{p.name}" for p in (grown["out"] / "images").iterdir()}
    astro = next(m for m in meta3 if m["uri"].endswith("skimage_astronaut.png") or
                 m["uri"].endswith("astronaut_again.png"))
    assert sorted(n.rsplit("/", 1)[1] for n in astro["names"]) == ["astronaut_again.png", "skimage_astronaut.png"]


def test_out_follows_the_gates_and_keeps_files_raycurate_did_not_write(grown):
    inp, out = grown["inp"], grown["out"]
    (out / "notes.txt").write_text("mine")
    m, meta = _run(inp, out, "--set", "filter.min_faces=null")     # the faceless photos join the set
    assert m["counts"]["rows_written"] == 0 and len(meta) == 6
    grass = next(x for x in meta if x["uri"].endswith("grass.jpg"))
    assert (out / grass["file"]).exists() and any(p.name.startswith("grass") for p in (out / "train").rglob("*"))
    m, meta = _run(inp, out)                                        # and leave it again, files and all
    assert len(meta) == 4 and not (out / grass["file"]).exists()
    assert not any(p.name.startswith("grass") for p in out.rglob("*") if "db" not in p.parts)
    assert (out / "notes.txt").read_text() == "mine"
    listed = set(json.loads((out / ".raycurate-export.json").read_text())["files"])
    assert set(_files(out)) - {"notes.txt", ".raycurate-export.json"} <= listed


def test_the_same_clip_twice_is_one_video_and_names_never_collide(tmp_path, ray_session):
    """sub1/clip.mp4 and sub2/clip.mp4 hold the same bytes: one video, decoded once, both names recorded;
    sub3/clip.mp4 holds other bytes under the same name: its own video, its frames under its own id."""
    inp, out = tmp_path / "in", tmp_path / "out"
    for sub, src in (("sub1", "faces_two_shots.mp4"), ("sub2", "faces_two_shots.mp4"), ("sub3", "counter.mp4")):
        (inp / sub).mkdir(parents=True)
        shutil.copy(DATA / "videos" / src, inp / sub / "clip.mp4")
    shutil.copy(FIRST[0], inp / "hopper.jpg")
    m, meta = _run(inp, out, "--set", "video.max_frames=3")
    assert m["ingest"]["duplicate_files"] == 1 and m["ingest"]["new"] == {"image": 1, "video": 2}
    videos = open_table(str(out / "db"), VIDEOS_TABLE).to_arrow().to_pylist()
    assert sorted(v["uri"].rsplit("/", 2)[1] for v in videos) == ["sub1", "sub3"]   # sub2: the same bytes
    ids = {v["uri"].rsplit("/", 2)[1]: v["video_id"] for v in videos}
    names = names_of(str(out / "db"))
    assert [n.rsplit("/", 2)[1] for n in names[ids["sub1"]]] == ["sub1", "sub2"]
    frames = open_table(str(out / "db"), FRAMES_TABLE).to_arrow().to_pylist()
    assert {f["video_id"] for f in frames} == set(ids.values())
    winners = [x for x in meta if x["source_video_id"]]
    assert winners and all(x["source_video_id"] == ids["sub1"] for x in winners)
    assert all(ids["sub1"][:12] in x["uri"] for x in winners) and len({x["uri"] for x in winners}) == len(winners)
    again, meta2 = _run(inp, out, "--set", "video.max_frames=3")
    assert again["ingest"]["new"] == {"image": 0, "video": 0} and again["ingest"]["already_stored"]["video"] == 2
    assert [x["id"] for x in meta2] == [x["id"] for x in meta]


def test_an_analyser_enabled_later_analyses_stored_photos_again_keeping_a_manual_label(tmp_path, ray_session):
    from raycurate.store.table import write_columns

    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    for p in FIRST[:2]:
        shutil.copy(p, inp / p.name)
    args = ["--set", "analyzers.face_features.enabled=false"]
    _run(inp, out, *args)
    table = open_images_table(str(out / "db"))
    row = table.search().where("uri LIKE '%astronaut%'").limit(1).to_list()[0]
    assert row["face_features_model"] is None
    write_columns(table, [{"id": row["id"], "uri": row["uri"], "run_id": row["run_id"], "manual_label": "reject"}],
                  ("manual_label",))
    m, meta = _run(inp, out)
    assert m["ingest"]["analysed_again"] == 2 and m["counts"]["rows_written"] == 2
    table.checkout_latest()
    rows = {r["id"]: r for r in table.to_arrow().to_pylist()}
    assert len(rows) == 2 and all(r["face_features_model"] for r in rows.values())
    assert rows[row["id"]]["manual_label"] == "reject" and row["id"] not in {x["id"] for x in meta}


def test_the_rows_of_a_run_killed_before_curating_them_are_curated_by_the_next(tmp_path, ray_session):
    """A run killed after storing its rows, before marking their duplicates and indexing their faces (simulated:
    its curated_runs row removed, its marks and faces cleared): the next run, with nothing new to analyse,
    curates them, and the curated set is the one an uninterrupted run made."""
    from raycurate.store.people_schema import FACES_TABLE
    from raycurate.store.schema import CURATED_TABLE
    from raycurate.store.table import write_columns

    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    for p in (*FIRST, IMAGES / "faces" / "pillow_hopper.jpg"):   # pillow_hopper: a near duplicate of the Hopper
        shutil.copy(p, inp / p.name)
    m1, meta1 = _run(inp, out)
    db = str(out / "db")
    table = open_images_table(db)
    marked = {r["id"]: r["duplicate_of"] for r in table.to_arrow().to_pylist()}
    assert any(marked.values()) and open_table(db, FACES_TABLE).count_rows() > 0
    open_table(db, CURATED_TABLE).delete(f"run_id = '{m1['run_id']}'")
    cleared = [{"id": r["id"], "uri": r["uri"], "run_id": r["run_id"], "duplicate_of": None, "duplicate_group": None,
                "duplicate_distance": None, "duplicate_column": None} for r in table.to_arrow().to_pylist()]
    write_columns(table, cleared, ("duplicate_of", "duplicate_group", "duplicate_distance", "duplicate_column"))
    open_table(db, FACES_TABLE).delete("true")
    m2, meta2 = _run(inp, out)
    assert m2["counts"]["rows_written"] == 0 and m2["curated_runs"] == [m1["run_id"]]
    table.checkout_latest()
    assert {r["id"]: r["duplicate_of"] for r in table.to_arrow().to_pylist()} == marked
    assert open_table(db, FACES_TABLE).count_rows() > 0
    assert sorted(x["id"] for x in meta2) == sorted(x["id"] for x in meta1)
    assert _run(inp, out)[0]["curated_runs"] == []   # curated once
