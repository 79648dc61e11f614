"""The web UI's parts without a browser: path confinement, presets, the run's argv, cancel, manual labels,
filters re-queried in LanceDB (no model), progress counts, plot data. tests/test_ui_browser.py drives the
whole app in Chromium."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from raycurate.config import CONFIG_DIR, load_config, load_settings
from raycurate.ui import params, plots, progress
from raycurate.ui.paths import PathRefused, Roots
from raycurate.ui.results import Filters, Results, filter_sql
from raycurate.ui.runner import RunRequest, Runner, build_argv, set_value


# -- confinement ------------------------------------------------------------------------------------

@pytest.fixture()
def tree(tmp_path):
    root = tmp_path / "root"
    (root / "sample" / "sub").mkdir(parents=True)
    (root / "sample" / "a.jpg").write_bytes(b"x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.jpg").write_bytes(b"s")
    (root / "escape").symlink_to(tmp_path / "outside")
    (root / "inner").symlink_to(root / "sample")
    return tmp_path, root


@pytest.mark.parametrize("bad", ["../../etc/passwd", "../outside", "/etc/passwd", "/etc", "sample/../../outside",
                                 "escape", "escape/secret.jpg", "inner/../../outside", "~/.ssh", "~root",
                                 "", "   ", "sample\x00/a.jpg", "file:///etc/passwd", "http://example.com/x",
                                 "s3://other-bucket/x", "s3://bucket/data/../../other", "gs://bucket/data"])
def test_paths_outside_the_roots_are_refused(tree, bad):
    _, root = tree
    roots = Roots.from_list([str(root), "s3://bucket/data"])
    with pytest.raises(PathRefused) as refused:
        roots.resolve(bad)
    assert "not found" not in str(refused.value)   # refused for where it points, not for being absent


def test_absolute_path_outside_is_refused_and_inside_is_accepted(tree):
    base, root = tree
    roots = Roots.from_list([str(root)])
    with pytest.raises(PathRefused, match="outside the roots"):
        roots.resolve(str(base / "outside"))
    with pytest.raises(PathRefused, match="outside the roots"):
        roots.resolve(str(root) + "/../outside/secret.jpg")
    assert roots.resolve("sample") == str(root / "sample")
    assert roots.resolve(str(root / "sample" / "a.jpg")) == str(root / "sample" / "a.jpg")
    assert roots.resolve("inner/a.jpg") == str(root / "sample" / "a.jpg")   # a symlink that stays inside
    assert roots.resolve(str(root)) == str(root)
    with pytest.raises(PathRefused, match="not found"):
        roots.resolve("sample/missing.jpg")


def test_a_root_is_not_a_prefix_match(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data-private").mkdir()
    roots = Roots.from_list([str(tmp_path / "data")])
    with pytest.raises(PathRefused):
        roots.resolve(str(tmp_path / "data-private"))


def test_bucket_roots(tree):
    _, root = tree
    roots = Roots.from_list(["s3://bucket/data", "gs://photos"])
    assert roots.resolve("s3://bucket/data/clips/") == "s3://bucket/data/clips"
    assert roots.resolve("s3://bucket/data") == "s3://bucket/data"
    assert roots.resolve("gs://photos/2024") == "gs://photos/2024"
    for bad in ("s3://bucket/database", "s3://bucket", "gs://photos-2/x", "sample"):
        with pytest.raises(PathRefused):
            roots.resolve(bad)
    with pytest.raises(PathRefused, match="not a folder"):
        Roots.from_list([str(root / "sample" / "a.jpg")])
    with pytest.raises(PathRefused):
        Roots.from_list(["ftp://host/x"])


def test_sample_is_found_under_a_root(tree):
    _, root = tree
    assert Roots.from_list([str(root)]).sample() == str(root / "sample")
    assert Roots.from_list([str(root / "sample" / "sub")]).sample() is None


def test_sample_passes_over_a_candidate_that_leads_out(tree):
    base, root = tree
    (base / "outside" / "more.jpg").write_bytes(b"m")
    (root / "sample").rename(root / "kept")
    (root / "sample").symlink_to(base / "outside")      # root/sample -> a folder outside the roots
    (root / "samples").symlink_to(root / "kept")        # root/samples -> a folder inside
    roots = Roots.from_list([str(root)])
    assert not roots.contains(str(root / "sample")) and not roots.contains(str(root / "escape" / "secret.jpg"))
    assert roots.contains(str(root / "samples")) and roots.contains(str(root / "samples" / "a.jpg"))
    assert roots.sample() == str(root / "samples")


def test_a_link_inside_a_root_lists_nothing_outside_the_roots(tree, tmp_path, monkeypatch):
    """A typed folder inside a root holding a link that leads out: the folder is accepted, its listing reads
    nothing outside (the link is a counted skip), and every UI run pins input.follow_links to false."""
    from raycurate.config import load_config, parse_set
    from raycurate.listing import list_input
    from raycurate.ui import make_session
    from raycurate.ui.paths import CONFINED
    from raycurate.ui.session import UserError

    base, root = tree
    roots = Roots.from_list([str(root)])
    typed_root = roots.resolve(str(root))
    listing = list_input(typed_root)
    assert all(roots.contains(f.uri) for f in listing.files)
    assert [f.uri for f in listing.files] == [str(root / "sample" / "a.jpg")]
    assert {s.uri: s.reason.split(" (")[0] for s in listing.skipped} == {
        str(root / "escape"): f"symlink leads outside INPUT to {base / 'outside'}",
        str(root / "inner"): "same folder as " + str(root / "sample")}

    session = make_session(db=None, workdir=str(tmp_path / "work"), roots=[str(root)], max_upload_mb=5,
                           host="127.0.0.1", port=0)
    asked = []

    def not_started(req):   # the request the runner gets, without starting a child
        asked.append(req)
        raise RuntimeError("not started in this test")

    monkeypatch.setattr(session.runner, "start", not_started)
    with pytest.raises(UserError, match="not started"):
        session.start(None, str(root), "youtube", "fast-cpu", {})
    [req] = asked
    assert set(CONFINED) <= set(req.overrides) and req.settings().input.follow_links is False
    argv = build_argv(req)
    assert argv[argv.index("input.follow_links=false") - 1] == "--set"
    assert load_config(overrides=[parse_set("input.follow_links=false")])["input"]["follow_links"] is False


# -- presets and parameters --------------------------------------------------------------------------

@pytest.mark.parametrize("preset", ["tiktok", "instagram", "youtube", "custom"])
def test_presets_fill_the_video_parameters(preset):
    declared = yaml.safe_load((CONFIG_DIR / "presets" / f"{preset}.yaml").read_text())["video"]
    defaults = load_config()["video"]
    values = dict(zip([p.key.split(".")[1] for p in params.VIDEO_PARAMS], params.preset_values(preset)))
    assert set(values) == {"sample_rate", "min_separation", "max_frames", "scene_detection", "motion_threshold"}
    for key, value in values.items():
        assert value == declared.get(key, defaults[key]), key
    if preset == "youtube":
        assert values == {"sample_rate": 5, "min_separation": 30, "max_frames": 60, "scene_detection": True,
                          "motion_threshold": 5.0}
    assert all(p.info and len(p.info) > 40 for p in params.VIDEO_PARAMS)   # each explains itself


def test_profiles_set_the_analyser_toggles():
    fast = params.defaults(profile="fast-cpu")
    assert fast["analyzers.clip.enabled"] is False and fast["analyzers.face.enabled"] is True
    assert params.defaults()["analyzers.clip.enabled"] is True


def test_overrides_are_typed():
    got = dict(params.overrides({"video.sample_rate": 5.0, "video.scene_detection": 1, "video.motion_threshold": 7,
                                 "filter.min_faces": 2.0, "analyzers.pose.enabled": 0}))
    assert got == {"video.sample_rate": 5, "video.scene_detection": True, "video.motion_threshold": 7.0,
                   "filter.min_faces": 2, "analyzers.pose.enabled": False}
    assert type(got["video.sample_rate"]) is int
    with pytest.raises(KeyError):
        params.overrides({"ray.address": "evil"})


# -- the run's argv ------------------------------------------------------------------------------------

def test_argv_is_a_list_the_cli_reads_back(tmp_path):
    from raycurate import cli

    weird = str(tmp_path / "in; rm -rf ~ $(reboot) `x`")
    os.makedirs(weird)
    req = RunRequest(input_uri=weird, out_dir=str(tmp_path / "out"), db=str(tmp_path / "db"), preset="youtube",
                     profile="fast-cpu", overrides=params.overrides({**dict(zip(
                         [p.key for p in params.VIDEO_PARAMS], params.preset_values("youtube"))),
                         "video.max_frames": 12, "analyzers.nsfw.enabled": False, "filter.max_nsfw_score": 0.3}))
    argv = build_argv(req)
    assert argv[:4] == [sys.executable, "-m", "raycurate.cli", "run"]
    assert argv[4] == weird                        # one element, never a shell string
    assert "--set" in argv and "video.max_frames=12" in argv and "analyzers.nsfw.enabled=false" in argv
    args = cli._parser().parse_args(argv[3:])
    assert args.input == weird and args.preset == "youtube" and args.profile == "fast-cpu"
    assert cli._load_run_settings(args) == req.settings()
    assert req.settings().video.max_frames == 12 and req.settings().filter.max_nsfw_score == 0.3
    assert set_value(None) == "null" and set_value(True) == "true" and set_value(0.5) == "0.5"
    with pytest.raises(TypeError):
        set_value("x; reboot")


def test_cancel_ends_the_whole_process_group(tmp_path, monkeypatch):
    """Cancel ends the child and what it started (as Ray's helpers would be), by its process group."""
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(f"""
        import os, subprocess, sys, time
        kid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        with open({str(tmp_path / 'pids.tmp')!r}, "w") as f:
            f.write(f"{{kid.pid}}\\n")
        os.replace({str(tmp_path / 'pids.tmp')!r}, {str(tmp_path / 'pids')!r})   # whole, never half-written
        time.sleep(300)
    """))
    monkeypatch.setattr("raycurate.ui.runner.build_argv", lambda req: [sys.executable, str(script)])
    runner = Runner(str(tmp_path / "runs"), str(tmp_path / "db"))
    req = RunRequest(input_uri=str(tmp_path), out_dir=runner.new_out_dir(), db=runner.db, preset="custom",
                     profile=None)
    run = runner.start(req)
    deadline = time.monotonic() + 30
    while not (tmp_path / "pids").exists():   # renamed into place once written
        assert time.monotonic() < deadline and run.status == "running", "the child wrote no pid file in 30 s"
        time.sleep(0.1)
    grandchild = int((tmp_path / "pids").read_text())
    assert run.status == "running" and runner.busy()
    with pytest.raises(RuntimeError, match="already going"):
        runner.start(req)
    t0 = time.monotonic()
    assert runner.cancel()
    assert run.status == "cancelled" and not runner.busy()
    assert time.monotonic() - t0 < 15
    for _ in range(50):
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        try:   # a zombie until init reaps it
            if Path(f"/proc/{grandchild}/stat").read_text().split(")")[1].split()[0] == "Z":
                break
        except OSError:
            break
        time.sleep(0.1)
    else:
        os.kill(grandchild, signal.SIGKILL)
        pytest.fail("the grandchild outlived Cancel")
    assert "$ " in Path(run.log_path).read_text()


# -- results: filters, labels --------------------------------------------------------------------------

def _images_table(db: Path, with_labels: bool = True):
    import lancedb

    from raycurate.schemas import images_schema

    schema = images_schema()
    if not with_labels:
        schema = pa.schema([f for f in schema if not f.name.startswith("manual_label")])
    rows = [  # id, faces, nsfw, sharpness, blurry, media, duplicate_of
        ("a" * 64, 1, 0.1, 300.0, False, "image", None), ("b" * 64, 0, 0.1, 300.0, False, "image", None),
        ("c" * 64, 2, 0.1, 50.0, False, "video_frame", None), ("d" * 64, 1, 0.9, 300.0, False, "image", None),
        ("e" * 64, 1, 0.1, 300.0, True, "image", None), ("f" * 64, 1, 0.1, 300.0, False, "image", "a" * 64)]
    n = len(rows)
    data = {f.name: pa.nulls(n, f.type) for f in schema}
    data.update(id=pa.array([r[0] for r in rows]), uri=pa.array([f"/in/{r[0][0]}.jpg" for r in rows]),
                run_id=pa.array(["20260101T000000Z-aaaa"] * n), media_type=pa.array([r[5] for r in rows]),
                width=pa.array([500] * n, pa.int32()), height=pa.array([500] * n, pa.int32()),
                face_count=pa.array([r[1] for r in rows], pa.int32()),
                nsfw_score=pa.array([r[2] for r in rows], pa.float32()),
                quality_sharpness=pa.array([r[3] for r in rows], pa.float32()),
                quality_is_blurry=pa.array([r[4] for r in rows]), duplicate_of=pa.array([r[6] for r in rows]),
                **{f"{a}_model": pa.array([f"{a}-model"] * n) for a in ("quality", "face", "face_features", "nsfw")})
    table = lancedb.connect(str(db)).create_table("images", schema=schema)
    table.add(pa.table(data, schema=schema))
    return table


def _stored(db: Path, content_id: str) -> dict:
    import lancedb

    return lancedb.connect(str(db)).open_table("images").search().where(f"id = '{content_id}'").to_list()[0]


def _ids(results: Results, f: Filters) -> list[str]:
    return sorted(r["id"][0] for r in results.page(f, limit=100))


def test_filters_requery_lancedb(tmp_path):
    _images_table(tmp_path / "db")
    res = Results(str(tmp_path / "db"))
    f = Filters(run_id="20260101T000000Z-aaaa")
    assert res.analysers(f.run_id) == ["quality", "face", "face_features", "nsfw"]
    assert _ids(res, f) == ["a", "c"] and res.count(f) == 2
    assert _ids(res, f.with_(min_faces=None)) == ["a", "b", "c"]
    assert _ids(res, f.with_(min_sharpness=100.0)) == ["a"]
    assert _ids(res, f.with_(max_nsfw_score=None)) == ["a", "c", "d"]
    assert _ids(res, f.with_(drop_blurry=False)) == ["a", "c", "e"]
    assert _ids(res, f.with_(include_duplicates=True)) == ["a", "c", "f"]
    assert _ids(res, f.with_(media=("image",))) == ["a"]
    assert _ids(res, f.with_(media=())) == []
    assert _ids(res, f.with_(show="dropped")) == ["b", "d", "e", "f"]
    assert _ids(res, f.with_(show="all")) == ["a", "b", "c", "d", "e", "f"]
    assert _ids(res, f.with_(where="quality_sharpness > 100")) == ["a"]
    assert _ids(res, f.with_(max_faces=1)) == ["a"]
    spec = Filters.from_filter(replace(load_settings().filter, max_faces=1, where="width > 10"), run_id=f.run_id)
    assert _ids(res, spec) == ["a"] and "face_count <= 1" in res.where(spec) and "(width > 10)" in res.where(spec)
    assert "abs(face_pose[1][2]) <= 30.0" in res.where(f.with_(max_abs_yaw=30))
    assert _ids(res, f.with_(run_id="other")) == []
    assert [r["id"][0] for r in res.page(f.with_(show="all"), sort="lowest NSFW first")][-1] == "d"
    with pytest.raises(ValueError):
        filter_sql(f.with_(show="everything"), [], labels=False)


def test_filter_requery_loads_no_model(tmp_path):
    """Filters are SQL in LanceDB: a fresh interpreter that queries loads no model library."""
    _images_table(tmp_path / "db")
    code = textwrap.dedent(f"""
        import sys
        from raycurate.ui.results import Filters, Results
        r = Results({str(tmp_path / 'db')!r})
        print(r.count(Filters()), r.count(Filters(min_faces=None)))
        print(",".join(m for m in ("torch", "onnxruntime", "nudenet", "ray", "open_clip", "insightface",
                                   "ultralytics", "deepface", "gradio") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "2 3" and out[1] == ""


def test_manual_labels_are_stored_and_override_the_gates(tmp_path):
    from raycurate.export import export_filtered

    _images_table(tmp_path / "db")
    res = Results(str(tmp_path / "db"))
    f = Filters(run_id="20260101T000000Z-aaaa")
    assert res.set_label("a" * 64, "reject") == 1
    stored = _stored(tmp_path / "db", "a" * 64)
    assert stored["manual_label"] == "reject" and stored["manual_label_at"] is not None
    assert _ids(res, f) == ["c"] and _ids(res, f.with_(show="rejected")) == ["a"]
    res.set_label("b" * 64, "keep")             # no face: kept by hand
    assert _ids(res, f) == ["b", "c"]
    res.set_label("f" * 64, "keep")             # a duplicate stays represented by its keeper
    assert "f" not in _ids(res, f)
    # the CLI's export applies the same labels
    result, where = export_filtered(str(tmp_path / "db"), str(tmp_path / "out"), settings=load_settings(
        overrides=[("export.copy_images", False), ("export.kohya.enabled", False), ("export.parquet", False)]))
    assert "manual_label" in where and result.kept == 2
    res.set_label("a" * 64, None)
    assert _stored(tmp_path / "db", "a" * 64)["manual_label"] is None
    assert _ids(res, f) == ["a", "b", "c"]
    with pytest.raises(ValueError):
        res.set_label("a" * 64, "maybe")


def test_labels_on_a_table_made_before_the_column(tmp_path):
    _images_table(tmp_path / "db", with_labels=False)
    res = Results(str(tmp_path / "db"))
    f = Filters(run_id="20260101T000000Z-aaaa")
    assert not res.has_labels() and res.count(f) == 2
    assert res.count(f.with_(show="rejected")) == 0
    res.set_label("c" * 64, "reject")
    assert res.has_labels() and _ids(res, f) == ["a"]


def test_row_detail_hides_vectors(tmp_path):
    _images_table(tmp_path / "db")
    res = Results(str(tmp_path / "db"))
    row = res.row("a" * 64)
    assert row["face_count"] == 1 and row["content_vector"] is None
    assert res.row("0" * 64) is None


# -- progress, plots -------------------------------------------------------------------------------------

RUN = "20260101T000000Z-aaaa"


def _manifest(db: Path, analysers: list[str]) -> dict:
    """What a run's manifest holds of the run that stored the rows of :func:`_images_table`, its funnel computed
    as the run computes it when it ends."""
    from raycurate.funnel import funnels
    from raycurate.gates import build_gates

    gates = build_gates(load_settings().filter, analysers)
    m = {"run_id": RUN, "input": {"files": 7, "images": 6, "videos": 0, "other": 1}, "models": dict.fromkeys(analysers),
         "gates": [{"name": g.name, "analyzer": g.analyzer or None, "sql": g.predicate} for g in gates],
         "counts": {"catalogue": 6, "kept": 2, "images": 6, "exported": 2, "export_errors": 0}}
    m["funnel"] = funnels(str(db), m, dedup=True, export=True)
    return m


def test_the_funnel_takes_each_step_in_turn_and_the_ui_reads_it_from_the_manifest(tmp_path):
    _images_table(tmp_path / "db")
    m = _manifest(tmp_path / "db", ["quality", "face", "nsfw"])
    rows = progress.funnel_rows(m)
    by = {r[0]: r[1:] for r in rows}
    assert rows[0] == ["input files", 7, 6, 1, 0]
    assert by["images decoded"] == [6, 6, 0, 0] and by["analysed without error"] == [6, 6, 0, 0]
    assert [r[0] for r in rows if r[0].startswith("gate ")] == [
        "gate min_side", "gate quality.drop_blurry", "gate face.min_faces", "gate nsfw.max_score"]
    assert by["gate quality.drop_blurry"] == [6, 5, 1, 0] and by["gate face.min_faces"] == [5, 4, 1, 0]
    assert by["gate nsfw.max_score"] == [4, 3, 1, 0]
    assert by["duplicates removed"] == [3, 2, 1, 0] and rows[-1][0] == "duplicates removed"   # no labels set
    assert "exported" not in by   # the export is the catalogue's: in its own scope
    assert [s["stage"] for s in m["funnel"]["catalogue"]][-1] == "exported"
    frame, order = plots.funnel(rows)
    assert order[0] == "input files" and set(frame["measure"]) == set(plots.FUNNEL_MEASURES)
    assert frame[frame["stage"] == "duplicates removed"]["count"].sum() == 3
    assert progress.funnel_rows(None) == [] and progress.funnel_rows({"run_id": RUN}) == []


def _write_run_files(out: Path, *, log: str) -> None:
    """A run's OUT as it is while the run goes: its state file (the listing), the image path's live progress, and a
    log whose text says other numbers."""
    import json

    from raycurate.engine.images import image_steps
    from raycurate.engine.videos import video_steps
    from raycurate.progress import Progress

    (out / "logs").mkdir(parents=True)
    (out / "run.log").write_text(log)
    (out / ".raycurate-run.json").write_text(json.dumps({"run_id": RUN, "state": "running", "input": {
        "files": 9, "images": 6, "videos": 1, "other": 2}}))
    images = Progress("images", image_steps([["quality", "face"]], 6))
    images.update({"decoded": 4, "quality": 3, "face": 2, "stored": 1})
    (out / "logs" / "progress-images.json").write_text(images.to_json())
    videos = Progress("videos", video_steps(2))
    videos.update({"segments": 2, "frames": 40, "stage1_scored": 40, "stage1_passed": 10, "stage2_scored": 8,
                   "stage2_passed": 5, "winners": 3})
    (out / "logs" / "progress-videos.json").write_text(videos.to_json())


def test_the_ui_counts_from_the_runs_files_never_from_its_log(tmp_path):
    import json

    from raycurate.funnel import funnel_step
    from raycurate.ui import make_session
    from raycurate.ui.runner import RunProcess
    from raycurate.ui.session import RunContext

    session = make_session(db=None, workdir=str(tmp_path / "work"), roots=[str(tmp_path)], max_upload_mb=5,
                           host="127.0.0.1", port=0)
    out = tmp_path / "out"
    _write_run_files(out, log="[raycurate] 99 files: 98 images, 0 videos, 1 other\nkept    50 of 99 images\n")
    req = RunRequest(input_uri=str(tmp_path), out_dir=str(out), db=session.settings.db, preset="custom", profile=None)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        session.run = RunContext(RunProcess(req, [], child))
        poll = session.poll()
    finally:
        child.kill()
        child.wait()
    assert poll.running and poll.run_id == RUN and "images stored 1/6" in poll.status
    assert poll.rows == [["input files", 9, 7, 2, 0], ["video segments read", 2, 2, 0, 0],
                         ["video stage 1", 40, 10, 30, 0], ["video stage 2", 10, 5, 3, 0],
                         ["video winners", 5, 3, 0, 0],
                         ["images decoded", 6, 4, 0, 0], ["analyser quality", 6, 3, 0, 0],
                         ["analyser face", 6, 2, 0, 0], ["images stored", 6, 1, 0, 0]]
    # finished: the funnel its manifest holds, and its kept count
    funnel = [funnel_step("input", "input files", 9, 7, 2), funnel_step("images", "images decoded", 7, 6, 0, 1)]
    (out / "manifest.json").write_text(json.dumps({"run_id": RUN, "counts": {"kept": 4, "images": 7},
                                                   "funnel": {"run": funnel, "catalogue": funnel}}))
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    session.run = RunContext(RunProcess(req, [], done))
    poll = session.poll()
    assert not poll.running and "kept **4** of 7" in poll.status
    assert poll.rows == [["input files", 9, 7, 2, 0], ["images decoded", 7, 6, 0, 1]]
    assert session.funnel_rows(RUN) == poll.rows   # the Plots tab: the same manifest
    # failed: the error its state file records, not a line of its log
    (out / "manifest.json").unlink()
    (out / ".raycurate-run.json").write_text(json.dumps({"run_id": RUN, "state": "failed",
                                                        "error": "ModelError: nudenet-320n is missing"}))
    (out / "run.log").write_text("raycurate: error: something else\n")
    failed = subprocess.Popen([sys.executable, "-c", "raise SystemExit(2)"])
    failed.wait()
    session.run = RunContext(RunProcess(req, [], failed))
    poll = session.poll()
    assert "**Failed** (exit 2)" in poll.status and "`ModelError: nudenet-320n is missing`" in poll.status
    assert "something else" not in poll.status and "something else" in poll.log   # the log is shown, not read


def test_histogram_bins():
    frame, order = plots.histogram({"kept": [0.1, 0.2, 0.9], "not kept": [0.5]}, bins=4)
    assert len(order) == 4 and frame["count"].sum() == 4
    frame, order = plots.histogram({"kept": [0, 1, 1, 3]}, integer=True)
    assert order == ["0", "1", "2", "3"] and list(frame["count"]) == [1, 2, 0, 1]
    frame, order = plots.histogram({"kept": []})
    assert order == [] and len(frame) == 0


# -- session and command line -------------------------------------------------------------------------------

def test_session_refuses_before_starting_anything(tree, tmp_path):
    from raycurate.ui import make_session
    from raycurate.ui.session import UserError

    base, root = tree
    session = make_session(db=None, workdir=str(tmp_path / "work"), roots=[str(root)], max_upload_mb=5,
                           host="127.0.0.1", port=0)
    for bad in ("../../etc/passwd", "/etc", str(base / "outside")):
        with pytest.raises(PathRefused):
            session.start(None, bad, "youtube", "fast-cpu", {})
    with pytest.raises(UserError, match="either"):
        session.start([str(root / "sample" / "a.jpg")], "sample", "youtube", "fast-cpu", {})
    with pytest.raises(UserError, match="nothing to curate"):
        session.start(None, "  ", "youtube", "fast-cpu", {})
    assert os.listdir(tmp_path / "work" / "runs") == [] and session.runner.current is None
    staged = session.resolve_input([str(root / "sample" / "a.jpg"), str(base / "outside" / "secret.jpg")], "")
    assert sorted(os.listdir(staged)) == ["0000-a.jpg", "0001-secret.jpg"]
    assert staged.startswith(str(tmp_path / "work" / "uploads"))
    assert "No curated table yet" in session.db_summary()


def test_ui_without_gradio_says_what_to_install(monkeypatch, capsys):
    from raycurate import cli

    monkeypatch.setattr("raycurate.ui.gradio_missing", lambda: True)
    assert cli.main(["ui", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "pip install 'raycurate[ui]'" in err


def test_the_app_builds(tmp_path, tree):
    pytest.importorskip("gradio")
    from raycurate.ui import make_session
    from raycurate.ui.app import build_app

    _, root = tree
    session = make_session(db=None, workdir=str(tmp_path / "work"), roots=[str(root)], max_upload_mb=5,
                           host="127.0.0.1", port=0)
    demo = build_app(session)
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"start", "cancel", "input-path", "preset", "results-gallery", "search-gallery", "export-go",
            "funnel-plot"} <= ids


def test_the_page_log_leaves_out_rays_routine_lines():
    from raycurate.ui.runner import readable

    lines = ["[raycurate] 9 files: 8 images, 1 videos, 0 other",
             "2026-11-25 13:30:48,868\tINFO streaming_executor.py:215 -- Starting execution of Dataset",
             "[2026-11-25 13:30:48,906 I 17177 17177] core_worker.cc:1: started",
             "  warnings.warn(", "/x/actor_pool_map_operator.py:551: UserWarning: The minimum number",
             "raycurate: error: input not found: /x", "kept    5 of 14 images"]
    assert readable(lines) == [lines[0], lines[5], lines[6]]


def test_detail_picture_draws_boxes_and_keypoints():
    import numpy as np

    from raycurate.ui.draw import FACE, KPS, POSE, annotate

    rgb = np.zeros((200, 400, 3), np.uint8)
    pose = np.zeros((17, 3), np.float32)
    pose[:, 0], pose[:, 1], pose[:, 2] = 0.75, np.linspace(0.1, 0.9, 17), 1.0
    row = {"face_boxes": [[0.1, 0.1, 0.3, 0.5]], "face_scores": [0.9], "face_kps": [[0.2, 0.3] * 5],
           "pose_keypoints": [pose.ravel().tolist()], "pose_boxes": None,
           "nsfw_detections": [{"label": "FACE_F", "score": 0.8, "box": [0.5, 0.5, 0.6, 0.6]}]}
    out = annotate(rgb, row)
    assert out.shape == rgb.shape and rgb.sum() == 0        # the input is left untouched
    assert tuple(out[100, 40]) == FACE                      # left edge of the face box (x = 0.1 * 400)
    assert tuple(out[60, 80]) == KPS                        # a face keypoint (0.2, 0.3)
    assert tuple(out[20, 300]) == POSE                      # the first body keypoint (0.75, 0.1)
    assert (annotate(rgb, {}) == 0).all()                   # no columns: nothing drawn


def test_search_plumbing_and_text_search_only_with_clip(tmp_path, tree):
    """The Search tab passes exactly one query to Curation.search and offers text only when CLIP is usable
    (the search itself is tested in tests/test_search.py)."""
    import pyarrow as pa

    from raycurate.ui import make_session
    from raycurate.ui.session import UserError

    class FakeCuration:
        def __init__(self, clip):
            self.clip, self.calls = clip, []

        def usable_clip(self):
            return (self.clip, "") if self.clip else (None, "the images table holds no CLIP vectors")

        def search(self, **kw):
            self.calls.append(kw)
            hits = pa.table({"rank": [1], "distance": [0.0], "id": ["a" * 64], "uri": ["/in/x.jpg"],
                             "thumbnail": [str(tmp_path / "t.jpg")], "source_video_uri": [None],
                             "frame_timestamp": [None], "frame_index": [None]})
            return hits.replace_schema_metadata({"raycurate.column": "clip_embedding", "raycurate.method": "exact"})

    _, root = tree
    session = make_session(db=None, workdir=str(tmp_path / "work"), roots=[str(root)], max_upload_mb=5,
                           host="127.0.0.1", port=0)
    session._curation = FakeCuration(None)
    ok, msg = session.text_search()
    assert not ok and "no CLIP vectors" in msg
    session._curation = FakeCuration("test-tiny-clip")
    assert session.text_search() == (True, "Text search uses CLIP (test-tiny-clip).")
    items, msg, ids = session.search(text="a person in a red coat", k=5, where="face_count >= 1")
    assert session._curation.calls[-1] == {"image": None, "id": None, "text": "a person in a red coat", "k": 5,
                                           "where": "face_count >= 1"}
    assert items == [(str(tmp_path / "t.jpg"), "#1 d=0.000 · x.jpg")] and "on `clip_embedding`" in msg
    assert ids == ["a" * 64]
    with pytest.raises(UserError, match="one query"):
        session.search(image="/q.jpg", content_id="abcd", k=5)
    with pytest.raises(UserError, match="one query"):
        session.search(k=5)


def test_loopback_detection():
    from raycurate.ui import _loopback

    assert _loopback("127.0.0.1") and _loopback("::1") and _loopback("localhost")
    assert not _loopback("0.0.0.0") and not _loopback("192.168.1.2") and not _loopback("example.com")
