"""A damaged DB: every command that opens one says in one line what is damaged and how to recover, and
exits 2; ``raycurate db recover`` goes back to the last readable version of each damaged table.

The DB is made by two real runs (two photos, then two more), built once per module and copied per test;
the damage is real: a data file removed, the newest version file garbled, every version file garbled.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from raycurate.cli import main
from raycurate.store.health import DAMAGED, DamagedDB, check_db, inspect_db, recover

from .conftest import IMAGES

FIRST = [IMAGES / "faces" / "skimage_astronaut.png", IMAGES / "negatives" / "grass.jpg"]
SECOND = [IMAGES / "face_recognition" / "obama.jpg", IMAGES / "negatives" / "skimage_coffee.png"]
# Cheap analysers (image quality, the content vector: no model); every image kept.
FAST = ["--profile", "fast-cpu", "--set", "analyzers.nsfw.enabled=false", "--set", "analyzers.face.enabled=false",
        "--set", "filter.min_faces=null", "--set", "filter.min_side=null", "--set", "filter.drop_blurry=false"]


def _ids(db: str, version: int | None = None) -> list[str]:
    import lancedb

    table = lancedb.connect(db).open_table("images", version=version)
    return sorted(table.search().select(["id"]).limit(None).to_arrow().column("id").to_pylist())


@pytest.fixture(scope="module")
def built(tmp_path_factory, ray_session):
    """OUT after two runs on a folder that grew: the images table's version and data files after the first
    run are recorded."""
    root = tmp_path_factory.mktemp("dbhealth")
    inp, out = root / "in", root / "out"
    inp.mkdir()
    for src in FIRST:
        shutil.copy(src, inp / src.name)
    assert main(["run", str(inp), "--out", str(out), *FAST]) == 0
    db = str(out / "db")
    import lancedb

    first_version = lancedb.connect(db).open_table("images").version
    first_files = set(os.listdir(out / "db" / "images.lance" / "data"))
    first_ids = _ids(db)
    first_run = json.loads((out / "manifest.json").read_text())["run_id"]
    for src in SECOND:
        shutil.copy(src, inp / src.name)
    assert main(["run", str(inp), "--out", str(out), *FAST]) == 0
    assert len(_ids(db)) > len(first_ids) == 2
    second_run = json.loads((out / "manifest.json").read_text())["run_id"]
    return {"inp": inp, "out": out, "first_version": first_version, "first_files": first_files,
            "first_ids": first_ids, "first_run": first_run, "second_run": second_run,
            "latest": lancedb.connect(db).open_table("images").version}


@pytest.fixture()
def out(built, tmp_path):
    """A copy of the module's OUT for one test to damage."""
    dest = tmp_path / "out"
    shutil.copytree(built["out"], dest)
    return dest


def _versions(out: Path, table: str = "images") -> list[Path]:
    folder = out / "db" / f"{table}.lance" / "_versions"
    return sorted((p for p in folder.iterdir() if p.name.endswith(".manifest")), key=lambda p: p.name)


def _files(out: Path) -> set[tuple[str, int, int]]:
    """Every file under the images table's data/, _deletions/ and _indices/, with its size and mtime."""
    root = out / "db" / "images.lance"
    return {(str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
            for top in ("data", "_deletions", "_indices") if (root / top).exists()
            for p in (root / top).rglob("*") if p.is_file()}


def _newest_manifest(out: Path, table: str = "images") -> Path:
    # V2 names: 2**64 - 1 - version, zero-padded: the newest version sorts first
    return _versions(out, table)[0]


def _commands(built, out: Path, tmp_path: Path) -> dict[str, list[str]]:
    return {"export": ["export", str(out), "--out", str(tmp_path / "export")],
            "search": ["search", str(out), "--id", built["first_ids"][0]],
            "report": ["report", str(out)],
            "identities": ["identities", str(out)],
            "ui": ["ui", "--db", str(out), "--out", str(tmp_path / "ui")],
            "run": ["run", str(built["inp"]), "--out", str(out), *FAST],
            "db check": ["db", "check", str(out)]}


def _assert_every_command_says_damaged(built, out, tmp_path, capsys, *problems: str) -> str:
    """Every command exits 2 with the same one line naming the table, one of ``problems`` and the command."""
    from raycurate.ui import gradio_missing

    lines = set()
    for name, argv in _commands(built, out, tmp_path).items():
        if name == "ui" and gradio_missing():
            continue
        capsys.readouterr()
        assert main(argv) == 2, name
        err = capsys.readouterr().err
        assert "Traceback" not in err, name
        assert len(err.strip().splitlines()) == 1, (name, err)
        assert "table images" in err and f"raycurate db recover {out / 'db'}" in err, (name, err)
        assert any(problem in err for problem in problems), (name, err)
        lines.add(err)
    assert len(lines) == 1   # the same line from every command
    return lines.pop()


def _assert_commands_work_again(built, out, tmp_path, capsys) -> None:
    for argv in (["db", "check", str(out)], ["export", str(out), "--out", str(tmp_path / "export2")],
                 ["search", str(out), "--id", built["first_ids"][0]], ["identities", str(out)]):
        capsys.readouterr()
        assert main(argv) == 0, (argv, capsys.readouterr().err)
    check_db(str(out / "db"))


def test_a_healthy_db_passes(built, capsys):
    db = str(built["out"] / "db")
    check_db(db)
    tables = {h.table: h for h in inspect_db(db)}
    assert {"images", "faces", "identities"} <= set(tables) and not any(h.problem for h in tables.values())
    assert tables["images"].rows == len(_ids(db)) and tables["images"].latest == built["latest"]
    assert main(["db", "check", str(built["out"])]) == 0
    assert f"images v{built['latest']} ({len(_ids(db))} rows)" in capsys.readouterr().out
    assert recover(db) == []


def test_a_version_file_lance_reads_but_this_parser_does_not_is_no_damage(built, monkeypatch):
    """A newer Lance writes a field store.manifest does not know: LanceDB opens the table, so it is healthy
    (its files are then not listed); a garbled file LanceDB cannot open is still damage (tests below)."""
    from raycurate.store import health
    from raycurate.store.manifest import ManifestError

    def unknown(data):
        raise ManifestError("an unknown field")

    monkeypatch.setattr(health, "parse_manifest", unknown)
    check_db(str(built["out"] / "db"))


def test_a_missing_data_file(built, out, tmp_path, capsys):
    """The second run's data files removed: every command says so in one line; recover goes back to the
    version the first run left (its two rows), the next run analyses the other two again."""
    data = out / "db" / "images.lance" / "data"
    removed = sorted(set(os.listdir(data)) - built["first_files"])
    assert removed
    for name in removed:
        (data / name).unlink()
    line = _assert_every_command_says_damaged(built, out, tmp_path, capsys,
                                              *(f"data file data/{name} is missing" for name in removed))
    assert f"version {built['latest']}:" in line
    db = str(out / "db")
    with pytest.raises(DamagedDB, match="the last readable one"):
        check_db(db)
    target = recover(db, dry_run=True)[0].to_version   # a dry run names the version and changes nothing
    assert target == built["first_version"]
    assert main(["db", "check", str(out)]) == 2
    files = _files(out)

    assert main(["db", "recover", str(out)]) == 0
    assert _files(out) - files == set() and files - _files(out) == set()   # no data, deletion, index file touched
    said = capsys.readouterr().out.strip().splitlines()
    rows = len(_ids(str(built["out"] / "db")))   # 2 + 4: each run stores its own rows
    assert len(said) == 1 and said[0].startswith(f"images: went back from version {built['latest']} ({rows} rows; "
                                                 "data file data/")
    assert said[0].endswith(f"to version {target} (2 rows), written as version {built['latest'] + 1}: rows added "
                            "after it are analysed again by the next run")
    assert _ids(db) == built["first_ids"] == _ids(str(built["out"] / "db"), target)
    _assert_commands_work_again(built, out, tmp_path, capsys)
    capsys.readouterr()
    # the curated set the DB holds now reports; the manifest's run (the second) has no row left: one line
    assert main(["report", str(out)]) == 0
    capsys.readouterr()
    assert main(["report", str(out), "--run", built["second_run"]]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no run" in err and "Traceback" not in err
    assert main(["report", str(out), "--run", built["first_run"]]) == 0
    assert main(["run", str(built["inp"]), "--out", str(out), *FAST]) == 0   # the lost rows analysed again
    assert set(_ids(db)) == set(_ids(str(built["out"] / "db")))
    check_db(db)


def test_a_garbled_newest_version_file(built, out, tmp_path, capsys):
    """The newest version file of ``images`` overwritten with junk: Lance cannot even open an older version
    while it is the newest, so recover moves it aside; the version before it is the latest again."""
    newest = _newest_manifest(out)
    newest.write_bytes(os.urandom(newest.stat().st_size))
    junk = newest.read_bytes()
    _assert_every_command_says_damaged(built, out, tmp_path, capsys, f"_versions/{newest.name} is unreadable")
    files = _files(out)
    assert main(["db", "recover", str(out)]) == 0
    assert _files(out) == files
    said = capsys.readouterr().out.strip()
    target = built["latest"] - 1
    rows = len(_ids(str(built["out"] / "db"), target))
    assert said.startswith(f"images: went back from version {built['latest']} (its version file "
                           f"_versions/{newest.name} is unreadable") and "\n" not in said
    assert f"to version {target} ({rows} rows); moved 1 unreadable version file(s) to images.lance/_damaged/" \
        "_versions/" in said
    assert not newest.exists() and (out / "db" / "images.lance" / DAMAGED / "_versions" / newest.name
                                    ).read_bytes() == junk   # kept, out of Lance's way
    assert _ids(str(out / "db")) == _ids(str(built["out"] / "db"), target)
    _assert_commands_work_again(built, out, tmp_path, capsys)
    assert main(["report", str(out)]) == 0


def test_a_truncated_data_file_is_damage_too(out):
    data = out / "db" / "images.lance" / "data"
    victim = max(data.iterdir(), key=lambda p: p.stat().st_mtime)
    size = victim.stat().st_size
    with open(victim, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(DamagedDB, match=f"data file data/{victim.name} has {size // 2} bytes, the version records "
                       f"{size}"):
        check_db(str(out / "db"))


def test_no_readable_version_is_said_and_nothing_is_touched(out, capsys):
    """Every version file of ``faces`` garbled: check and recover say to move the folder aside; recover
    changes nothing there and exits 2; the other tables are untouched."""
    before = {}
    for path in _versions(out, "faces"):
        path.write_bytes(b"not a manifest")
    for path in (out / "db" / "faces.lance").rglob("*"):
        before[path] = path.read_bytes() if path.is_file() else None
    with pytest.raises(DamagedDB, match="no older version is readable: move .*faces.lance aside"):
        check_db(str(out / "db"))
    capsys.readouterr()
    assert main(["db", "recover", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith("raycurate: error: faces: no readable version")
    assert f"move {out / 'db' / 'faces.lance'} aside" in captured.err
    after = {p: (p.read_bytes() if p.is_file() else None) for p in (out / "db" / "faces.lance").rglob("*")}
    assert after == before
    assert not {h.table: h for h in inspect_db(str(out / "db"))}["images"].problem   # untouched, readable


def test_a_db_that_does_not_exist_yet_passes(tmp_path):
    check_db(str(tmp_path / "nothing-here"))
    assert not (tmp_path / "nothing-here").exists()   # the check creates nothing


def test_check_time_on_a_table_of_200_fragments(tmp_path):
    """The check reads version files and lists folders, never the data: 200 fragments (200 data files, a
    deletion file, an index) take well under a second."""
    import lancedb
    import numpy as np
    import pyarrow as pa

    db = str(tmp_path / "db")
    table = None
    for i in range(200):
        ids = [f"{i:03d}-{j:04d}" for j in range(500)]
        batch = pa.table({"id": ids, "score": np.random.default_rng(i).random(500).astype("float32")})
        table = lancedb.connect(db).create_table("images", batch) if table is None else table
        if i:
            table.add(batch)
    table.create_scalar_index("id")
    # ten rows of one fragment: a deletion file, the fragment kept (deleting all its rows would drop it from
    # the version, its data file left unreferenced: a victim below that damages nothing)
    table.delete("id LIKE '007-000%'")
    check_db(db)   # LanceDB's first connection in this process
    took = []
    for _ in range(5):
        t = time.perf_counter()
        check_db(db)
        took.append(time.perf_counter() - t)
    health = inspect_db(db)[0]
    assert health.rows == 200 * 500 - 10 and not health.problem
    print(f"check_db on 200 fragments: best {min(took) * 1000:.1f} ms, worst {max(took) * 1000:.1f} ms")
    assert min(took) < 0.5
    victim = sorted((Path(db) / "images.lance" / "data").iterdir())[100]   # each of the 200 is in the version
    victim.unlink()
    with pytest.raises(DamagedDB, match=f"data file data/{victim.name} is missing"):
        check_db(db)
