"""One Ray Data graph per run (raycurate/engine/graph.py): photos and videos in one run, the videos' winners
flowing on into the image analysers as rows, on real media of tests/data."""
import hashlib
import json
import shutil

import pytest

from raycurate.cli import main
from raycurate.store import FRAMES_TABLE, STAGE3_TABLE, open_images_table, open_table

from .conftest import DATA, IMAGES
from .test_video_path import FAST_FACES

CARRIED = ("quality", "content", "nsfw")   # the default run's analysers whose columns the cascade gives a winner


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory, ray_session):
    inp = tmp_path_factory.mktemp("mixed")
    for name in ("faces_two_shots.mp4", "testvideo.mp4"):
        shutil.copy(DATA / "videos" / name, inp / name)
    for folder in ("faces", "face_recognition"):
        for src in sorted((IMAGES / folder).iterdir()):
            shutil.copy(src, inp / f"{folder}_{src.name}")
    out = tmp_path_factory.mktemp("out")
    rc = main(["run", str(inp), "--out", str(out), "--preset", "youtube", *FAST_FACES, "--set", "video.max_frames=3"])
    db = str(out / "db")
    manifest = json.loads((out / "manifest.json").read_text())
    run = manifest["run_id"]
    images = open_images_table(db).search().where(f"run_id = '{run}'").limit(None).to_list()
    return {"rc": rc, "db": db, "run": run, "manifest": manifest, "images": images, "out": out,
            "photos": [r for r in images if r["source_video_id"] is None],
            "winners": [r for r in images if r["source_video_id"] is not None]}


def test_each_winner_is_one_images_row_made_from_its_file_bytes(mixed_run):
    """Invariant: every selected Stage 3 frame with a file has exactly one images row, whose uri is that file,
    whose id is the hash of its bytes (as a listing would give), with the frame's lineage."""
    assert mixed_run["rc"] == 0
    db, run = mixed_run["db"], mixed_run["run"]
    selected = [r for r in open_table(db, STAGE3_TABLE).search().where(f"run_id = '{run}' AND selected = true")
                .limit(None).to_list() if r["frame_path"]]
    winners = {r["uri"]: r for r in mixed_run["winners"]}
    assert len(selected) >= 2 and sorted(winners) == sorted(r["frame_path"] for r in selected)
    assert mixed_run["manifest"]["counts"]["video_frames"] == len(selected)
    for s in selected:
        w = winners[s["frame_path"]]
        data = open(s["frame_path"], "rb").read()
        assert w["id"] == hashlib.sha256(data).hexdigest() and w["file_size"] == len(data)
        assert (w["source_video_id"], w["frame_index"], w["media_type"]) == (s["video_id"], s["frame_index"],
                                                                             "video_frame")
        assert w["stage3_score"] == pytest.approx(s["stage3_score"]) and w["error"] is None


def test_a_winner_keeps_the_scores_the_cascade_gave_it_and_gets_the_rest(mixed_run):
    """No analyser runs twice on a winner: the carried analysers' columns (their timings included) are the
    frames table's, computed once by the cascade; the others (face at full size) ran in the image pools."""
    db, run = mixed_run["db"], mixed_run["run"]
    frames = {(f["video_id"], f["frame_index"]): f for f in
              open_table(db, FRAMES_TABLE).search().where(f"run_id = '{run}'").limit(None).to_list()}
    for w in mixed_run["winners"]:
        f = frames[(w["source_video_id"], w["frame_index"])]
        for name in CARRIED:
            assert w[f"{name}_model"] == f[f"{name}_model"] and w[f"{name}_ms"] == f[f"{name}_ms"]
        assert w["nsfw_score"] == f["nsfw_score"] and w["content_vector"] == f["content_vector"]
        assert w["quality_sharpness"] == f["quality_sharpness"]
        assert w["face_model"] is not None and w["face_error"] is None   # face detection ran on the full frame
        if "faces_two_shots" in w["source_video_uri"]:   # a face in every shot (testvideo.mp4 shows none)
            assert w["face_count"] >= 1
    for p in mixed_run["photos"]:   # photos got every analyser from the image pools
        assert all(p[f"{name}_model"] is not None for name in CARRIED + ("face",))


def test_photos_and_videos_run_in_one_graph(mixed_run):
    """One Ray Data graph: the photos and the cascade's winners meet in a union before the first image pool,
    so the image pools start with the graph, not after the last video."""
    assert len(mixed_run["photos"]) == 11   # 4 + 7 distinct photos
    log = (mixed_run["out"] / "logs" / "raycurate.log").read_text()
    plans = [line for line in log.splitlines() if "Execution plan of Dataset" in line]
    assert len(plans) == 1, plans
    assert "-> UnionOperator[" in plans[0] and plans[0].index("Stage3Actor") < plans[0].index("UnionOperator[")
    assert plans[0].index("UnionOperator[") < plans[0].index("FusedActor(decode,")
    # one graph: one timing for both parts, and both parts' live progress for the UI
    assert "pipeline" in mixed_run["manifest"]["timings_s"] and "video_path" not in mixed_run["manifest"]["timings_s"]
    for what in ("videos", "images"):
        assert (mixed_run["out"] / "logs" / f"progress-{what}.json").exists()
