"""What a run keeps of a short video of known photos of people (the short version of scripts/bench_selection.py).

The clip: 8 distinct photos of tests/data/images/people (6 people: Harington and Obama twice), 2 s each, 640x360,
hard cuts, each photo on its own blurred backdrop zooming in, panning right, zooming out, panning left in turn.
On this backdrop no frame of one photo is within the near-duplicate threshold of a frame of another (the
closest pair is ~0.21 against 0.15), so a dedup that never chains keeps every photo. It runs through
``raycurate run`` with the YouTube preset and the default config otherwise; tests/selection.py reads the OUT and
the DB against the clip's truth.
"""
from __future__ import annotations

import json
import shutil

import pytest

from raycurate.cli import main
from raycurate.store import VIDEOS_TABLE, open_table

from . import selection

clips = selection.load_clips()
PHOTOS = ("collins_1.jpg", "harington_2.jpg", "harington_3.jpg", "hopper_1.jpg", "leslie_2.jpg", "obama_1.jpg",
          "obama_2.jpg", "whigham_1.jpg")


@pytest.fixture(scope="module")
def selection_run(tmp_path_factory, ray_session):
    inp = tmp_path_factory.mktemp("slideshow")
    shots = [clips.Shot(p, clips.MOTIONS[k % len(clips.MOTIONS)], 2.0) for k, p in enumerate(PHOTOS)]
    truth = clips.write_slideshow(inp / "people.mp4", shots, fps=30, size=(640, 360), background="blur")
    out = tmp_path_factory.mktemp("out")
    rc = main(["run", str(inp), "--out", str(out), "--preset", "youtube"])
    yield {"rc": rc, "out": out, "truth": truth, "score": selection.measure(out, truth, clips.PEOPLE)}
    shutil.rmtree(out, ignore_errors=True)


def test_the_run_reads_the_clip_as_made(selection_run):
    """The truth lines up with the stored frames: the run finds the clip's cuts, every photo shows a face
    CenterFace finds, and Stage 3 picks frames of every photo (what dedup then works on)."""
    assert selection_run["rc"] == 0
    truth, score = selection_run["truth"], selection_run["score"]
    run = json.loads((selection_run["out"] / "manifest.json").read_text())["run_id"]
    (video,) = open_table(str(selection_run["out"] / "db"), VIDEOS_TABLE).search().where(f"run_id = '{run}'") \
        .limit(None).to_list()
    assert video["cuts"] == pytest.approx(truth["cuts"], abs=1)
    assert score.detectable == score.photos == sorted(PHOTOS)
    assert score.photos_selected == sorted(PHOTOS)
    assert score.tables["images"].rows == score.selected > len(PHOTOS)
    assert score.tables["frames"].rows > score.selected
    for table in score.tables.values():   # the stored distance is the one the vectors give
        assert table.stored_off == 0, table


def test_every_photo_with_a_face_is_covered(selection_run):
    """Each photo with a face keeps a row: an exported winner, and an unmarked row in the frames table."""
    score = selection_run["score"]
    for table in score.tables.values():
        assert table.missing == [], (table.table, selection.format_score(score))
        assert table.people_covered == score.people


def test_no_row_is_marked_beyond_its_threshold(selection_run):
    """Every marked row lies within its column's threshold of its keeper (distances recomputed from the stored
    vectors), in both tables."""
    score = selection_run["score"]
    assert sum(t.marked for t in score.tables.values()) > 0   # there are duplicates to mark: zooms and pans
    for table in score.tables.values():
        assert table.beyond == 0, (table.table, selection.format_score(score))
