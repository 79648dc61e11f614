"""The video path end to end through local Ray: cascade tables, winners as images with lineage."""
import json
import shutil

import pytest

from raycurate.cli import main
from raycurate.store import FRAMES_TABLE, STAGE3_TABLE, VIDEOS_TABLE, open_images_table, open_table

from .conftest import DATA


# The frontal cascade alone on a 320 px copy: ~20x faster than the default, enough for these tests. These
# clips show scenery, digits and a tree: frames without a face go on (keep_faceless), else Stage 1 ends them.
FAST_FACES = ["--set", "analyzers.face.use_profile=false", "--set", "analyzers.face.detection_side=320",
              "--set", "cascade.stage1.keep_faceless=true"]
FAST_FACES_OVERRIDES = [("analyzers.face.use_profile", False), ("analyzers.face.detection_side", 320),
                        ("cascade.stage1.keep_faceless", True)]


@pytest.fixture(scope="module")
def video_run(tmp_path_factory, ray_session):
    inp = tmp_path_factory.mktemp("videos")
    for name in ("counter.mp4", "testvideo.mp4", "tree.avi"):
        shutil.copy(DATA / "videos" / name, inp / name)
    (inp / "empty.mp4").write_bytes(b"")
    (inp / "truncated.mp4").write_bytes((DATA / "videos" / "testvideo.mp4").read_bytes()[:4000])
    out = tmp_path_factory.mktemp("out")
    rc = main(["run", str(inp), "--out", str(out), "--preset", "youtube", *FAST_FACES,
               "--set", "filter.min_faces=null", "--set", "video.max_frames=4"])
    db = str(out / "db")
    run = json.loads((out / "manifest.json").read_text())["run_id"]
    return {"rc": rc, "out": out, "db": db, "run": run,
            "manifest": json.loads((out / "manifest.json").read_text()),
            "videos": {v["uri"].rsplit("/", 1)[1]: v for v in
                       open_table(db, VIDEOS_TABLE).search().where(f"run_id = '{run}'").limit(None).to_list()}}


def test_every_video_has_a_row_and_bad_ones_an_error(video_run):
    assert video_run["rc"] == 0
    v = video_run["videos"]
    assert set(v) == {"counter.mp4", "testvideo.mp4", "tree.avi", "empty.mp4", "truncated.mp4"}
    assert v["empty.mp4"]["error"] and v["truncated.mp4"]["error"]
    assert v["counter.mp4"]["error"] is None and v["counter.mp4"]["frames_decoded"] == 30
    assert v["counter.mp4"]["candidates"] == 6                   # youtube: one frame in five
    assert v["testvideo.mp4"]["cuts"] == pytest.approx([30, 180, 394], abs=1)
    assert v["tree.avi"]["frames_decoded"] == 68 and "444" in v["tree.avi"]["warning"]


def test_stages_store_every_frame_they_saw(video_run):
    db, run = video_run["db"], video_run["run"]
    frames = open_table(db, FRAMES_TABLE).search().where(f"run_id = '{run}'").limit(None).to_list()
    v = video_run["videos"]
    expected = sum(x["candidates"] - x["motion_dropped"] for x in v.values())
    assert len(frames) == expected > 0
    for f in frames:
        assert f["stage1_score"] is not None and f["stage1_passed"] is not None
        assert (f["stage2_score"] is not None) == bool(f["stage1_passed"])   # stage 2 saw what stage 1 kept
    testvideo = [f for f in frames if f["video_uri"].endswith("testvideo.mp4")]
    assert {f["scene_index"] for f in testvideo} <= {0, 1, 2, 3}
    stage3 = open_table(db, STAGE3_TABLE).search().where(f"run_id = '{run}'").limit(None).to_list()
    assert len(stage3) == sum(1 for f in frames if f["stage2_passed"])
    by_video: dict = {}
    for r in stage3:
        if r["selected"]:
            by_video.setdefault(r["video_id"], []).append(r["frame_index"])
    for indices in by_video.values():
        indices.sort()
        assert len(indices) <= 4                                         # video.max_frames
        assert all(b - a >= 30 for a, b in zip(indices, indices[1:]))   # youtube min_separation


def test_winners_join_the_image_path_with_lineage(video_run):
    db, run, out = video_run["db"], video_run["run"], video_run["out"]
    rows = open_images_table(db).search().where(f"run_id = '{run}'").limit(None).to_list()
    selected = open_table(db, STAGE3_TABLE).count_rows(f"run_id = '{run}' AND selected = true")
    assert len(rows) == selected > 0
    for r in rows:
        assert r["media_type"] == "video_frame" and r["error"] is None
        assert r["source_video_uri"].endswith((".mp4", ".avi")) and r["frame_index"] >= 0
        assert r["stage3_score"] is not None and r["quality_sharpness"] is not None
        assert (out / "frames").joinpath(r["uri"].rsplit("/", 1)[1]).exists()
    counter = [r for r in rows if r["source_video_uri"].endswith("counter.mp4")]
    for r in counter:   # counter.mp4 runs at 10 fps from 0 s
        assert r["frame_timestamp"] == pytest.approx(r["frame_index"] / 10.0, abs=1e-3)


def test_manifest_reports_the_funnel(video_run):
    m = video_run["manifest"]
    c = m["video"]["counts"]
    assert c["videos"] == 5 and c["video_errors"] == 2
    st = c["stages"]
    assert st["stage1"]["in"] == st["stage1"]["kept"] + st["stage1"]["dropped"]
    assert st["stage2"]["in"] == st["stage1"]["kept"]
    assert st["stage3"]["selected"] == c["frame_files"] == m["counts"]["video_frames"]
    assert m["video"]["stages"]["stage2"]["note"].startswith("clip not in Stage 2")   # no weights here; FER runs
    assert {e["uri"].rsplit("/", 1)[1] for e in m["errors"] if e["stage"] == "video"} == {"empty.mp4",
                                                                                           "truncated.mp4"}


def test_cpu_only_detector_in_a_gpu_stage_is_a_config_error_and_no_gpu_is_named(tmp_path, capsys):
    rc = main(["run", str(DATA / "videos"), "--out", str(tmp_path / "o"), "--set", "cascade.stage1.device=cuda",
               "--set", "analyzers.face.detector=opencv_haar"])
    assert rc == 2
    assert capsys.readouterr().err.startswith("raycurate: error: config section cascade.stage1:")
    rc = main(["run", str(DATA / "videos"), "--out", str(tmp_path / "o"), "--set", "cascade.stage2.device=cuda",
               "--set", "analyzers.nsfw.device=cuda", "--set", "video.max_frames=1"])
    assert rc == 2   # NudeNet can run on a GPU, this machine has none: one line, before any actor starts
    assert "the Ray cluster has no GPU" in capsys.readouterr().err
    # the run had begun: its state file says it failed and why (the web UI shows that line, never the log's)
    state = json.loads((tmp_path / "o" / ".raycurate-run.json").read_text())
    assert state["state"] == "failed" and "the Ray cluster has no GPU" in state["error"]


def test_presets_fill_the_video_parameters():
    from raycurate.config import load_config

    assert [load_config(preset=p)["video"]["sample_rate"] for p in ("tiktok", "instagram", "youtube", "custom")] \
        == [1, 1, 5, 15]
    cfg = load_config(preset="youtube", overrides=[("video.sample_rate", 3)])
    assert cfg["video"]["sample_rate"] == 3 and cfg["video"]["scene_detection"] is True


def test_a_long_video_split_into_segments_samples_the_same_frames(ray_session, tmp_path):
    from raycurate.config import load_settings
    from raycurate.engine import run_video_pipeline, sized_settings
    from raycurate.run_report import video_report
    from raycurate.sources import FileRef
    from raycurate.video.segments import plan_segments

    path = DATA / "videos" / "testvideo.mp4"
    ref = [FileRef(str(path), str(path), path.stat().st_size, "video")]
    base = [("video.motion_threshold", 0.0), ("video.sample_rate", 10), ("video.scene_detection", True),
            *FAST_FACES_OVERRIDES]
    whole = sized_settings(load_settings(overrides=base + [("video.segment_s", None)]))[0]
    split = sized_settings(load_settings(overrides=base + [("video.segment_s", 8)]))[0]
    plan = plan_segments(ref, split.video)
    assert [(p["start"], p["stop"]) for p in plan] == [(0, 240), (240, 480), (480, None)]   # 29.97 fps
    db = str(tmp_path / "db")
    run_video_pipeline(ref, whole, db_uri=db, run_id="whole", frames_dir=str(tmp_path / "f1"))
    run_video_pipeline(ref, split, db_uri=db, run_id="split", frames_dir=str(tmp_path / "f2"))
    frames = open_table(db, FRAMES_TABLE)
    got = {run: sorted((r["frame_index"], round(r["timestamp"], 4)) for r in
                       frames.search().where(f"run_id = '{run}'").limit(None).to_list())
           for run in ("whole", "split")}
    assert got["whole"] == got["split"] and len(got["whole"]) == 72
    reports = {run: video_report(db, run, whole, frame_files=0) for run in ("whole", "split")}
    assert reports["split"]["counts"]["segments"] == 3 and reports["split"]["counts"]["videos"] == 1
    for key in ("frames_decoded", "candidates"):
        assert reports["split"]["counts"][key] == reports["whole"]["counts"][key]
    assert reports["split"]["videos"][0]["cuts"] == pytest.approx([30, 180, 394], abs=1)


def test_reselecting_with_other_thresholds_runs_no_model(video_run, monkeypatch):
    import dataclasses

    from raycurate.analyzers.base import Analyzer
    from raycurate.config import load_settings
    from raycurate.video.stage3 import compute_stage3

    def no_model(self):
        raise AssertionError(f"{type(self).__name__} loaded a model during re-selection")

    monkeypatch.setattr(Analyzer, "setup", no_model)
    s = load_settings(preset="youtube")
    loose, _ = compute_stage3(video_run["db"], video_run["run"], s.cascade.stage3, s.video)
    strict, winners = compute_stage3(video_run["db"], video_run["run"],
                                     dataclasses.replace(s.cascade.stage3, threshold=0.9),
                                     dataclasses.replace(s.video, max_frames=1))
    assert len(strict) == len(loose) > 0
    assert sum(r["stage3_passed"] for r in strict) < sum(r["stage3_passed"] for r in loose)
    assert len({w["video_id"] for w in winners}) == len(winners)   # at most one per video now


@pytest.mark.slow   # runs on local Ray (17 s)
def test_a_killed_run_is_resumed_by_the_next_one_video_by_video(tmp_path):
    """A run killed after finishing one of its two videos (simulated: counter.mp4's done row and frames deleted,
    its Stage 3 and videos rows left behind as a killed run leaves them): the next run forgets what was left of
    counter.mp4, does it again, skips delayed_start.mp4 (done), and nothing is stored twice."""
    from raycurate.store.schema import VIDEOS_DONE_TABLE
    from raycurate.store.table import open_table as table_of

    inp = tmp_path / "in"
    inp.mkdir()
    for name in ("counter.mp4", "delayed_start.mp4"):
        shutil.copy(DATA / "videos" / name, inp / name)
    out = tmp_path / "out"
    args = ["run", str(inp), "--out", str(out), "--preset", "youtube", *FAST_FACES, "--set", "filter.min_faces=null",
            "--set", "video.max_frames=2", "--set", "dedup.enabled=false"]
    assert main(args) == 0
    first = json.loads((out / "manifest.json").read_text())
    db = str(out / "db")
    frames = table_of(db, FRAMES_TABLE)
    counter = frames.search().where("video_uri LIKE '%counter.mp4'").limit(1).to_list()[0]["video_id"]
    for name in (FRAMES_TABLE, VIDEOS_DONE_TABLE):   # counter.mp4 "had not finished"
        table_of(db, name).delete(f"video_id = '{counter}'")
    def images():   # the winners' rows (none when no frame of the two clips won)
        try:
            return {r["id"]: r["uri"] for r in open_images_table(db).to_arrow().to_pylist()}
        except FileNotFoundError:
            return {}

    winners = images()
    assert main(args) == 0
    second = json.loads((out / "manifest.json").read_text())
    assert second["run_id"] != first["run_id"]
    assert second["ingest"]["videos_forgotten"] == 1 and second["ingest"]["new"]["video"] == 1
    assert second["ingest"]["already_stored"]["video"] == 1
    assert [v["uri"].rsplit("/", 1)[1] for v in second["video"]["videos"]] == ["counter.mp4"]
    uris = {r["video_uri"].rsplit("/", 1)[1] for r in table_of(db, FRAMES_TABLE).search().limit(None).to_list()}
    assert uris == {"counter.mp4", "delayed_start.mp4"}
    for name, key in ((FRAMES_TABLE, "frame_index"), (STAGE3_TABLE, "frame_index"), (VIDEOS_TABLE, "segment"),
                      (VIDEOS_DONE_TABLE, None)):   # every row once: counter.mp4's again, delayed_start.mp4's once
        rows = table_of(db, name).search().limit(None).to_list()
        keys = [(r["video_id"], r[key] if key else None) for r in rows]
        assert len(keys) == len(set(keys)), name
    # the winners are the same frames, written and analysed again: the same rows, none twice
    assert images() == winners


def test_the_run_marks_duplicate_frames_in_the_frames_table(video_run):
    """The frames table gets the images' dedup (store.dedup.dedup_frames), in the manifest as dedup_frames."""
    db, run, m = video_run["db"], video_run["run"], video_run["manifest"]
    frames = open_table(db, FRAMES_TABLE).search().where(f"run_id = '{run}'").limit(None).to_list()
    d = m["dedup_frames"]
    assert d["rows_in_scope"] == len(frames) and d["pairs"]["clip_embedding"] == 0   # no CLIP weights here
    assert "content_vector" in d["pairs"] and d["method"]["content_vector"].startswith("ann")   # a small table
    by_id = {f"{f['video_id']}:{f['frame_index']}": f for f in frames}
    marked = [f for f in frames if f["duplicate_of"]]
    assert len(marked) == d["marked"] > 0   # the tree and counter clips hold near-identical frames
    for f in marked:   # each names a kept frame of its group, within the content vector's threshold
        keeper = by_id[f["duplicate_of"]]
        assert keeper["duplicate_of"] is None and keeper["duplicate_group"] == f["duplicate_group"] == f["duplicate_of"]
        assert f["duplicate_column"] == "content_vector" and f["duplicate_distance"] <= 0.15 + 1e-6
    assert all(f["content_vector"] is not None for f in frames if f["duplicate_group"])
