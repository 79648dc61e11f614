"""Kill test on a small pile (the machinery is tests/kill_pile.py, kill_runs.py and kill_compare.py;
scripts/kill_test.py runs it on 100 photos and 6 clips with 10 kills): a run whose driver is killed with
SIGKILL once it has stored its first photos' rows, then a run that loses one of its Ray workers (SIGKILL) and
goes on, then one uninterrupted run, end where one uninterrupted run ends: no row twice, no row lost, the same
curated set."""
import random

import pytest

from .kill_compare import Check, compare, db_counts, format_kill, kill_header
from .kill_pile import build_pile
from .kill_runs import clean_run, kill_once, run_command

pytestmark = pytest.mark.slow   # runs killed again and again (80 s)

ARGS = ["--profile", "fast-cpu", "--set", "video.max_frames=4", "--set", "decode.rows_per_write=4"]
ROW_TABLES = ("images", "frames", "stage3", "videos", "videos_done", "files")


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    work = tmp_path_factory.mktemp("kill")
    # 18 photos (6 photos and 2 near copies of each), 4 exact copies, 2 broken files, one clip and a copy of it
    pile = build_pile(work / "pile", photos=18, per_source=3, duplicates=4, broken=2, clips=["faces_two_shots.mp4"])
    log = work / "runs.log"
    clean_out, out = str(work / "clean"), str(work / "killed")
    clean = clean_run(run_command(pile.root, clean_out, ARGS), log)
    assert clean.rc == 0, log.read_text()[-3000:]
    cmd, db, rng = run_command(pile.root, out, ARGS), str(work / "killed" / "db"), random.Random(0)
    kills = [kill_once(1, "driver", cmd, until_images=8, go_on_s=0, db=db, rng=rng, log=log),
             kill_once(2, "worker", cmd, after_workers=True, delay_s=1, go_on_s=240, db=db, rng=rng, log=log)]
    final = clean_run(cmd, log)
    checks = {c.name: c for c in compare(clean_out, out)}
    print("\n" + kill_header())
    for k in kills:
        print(format_kill(k))
    for c in checks.values():
        print(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
    return {"kills": kills, "final": final, "checks": checks, "clean": db_counts(f"{clean_out}/db")}


def _failed(checks: dict[str, Check], names) -> list[str]:
    return [f"{n}: {checks[n].detail}" for n in names if not checks[n].ok]


def test_each_kill_hits_a_run_at_work_and_the_next_run_finishes(killed):
    first, second = killed["kills"]
    assert first.outcome == "driver killed" and 8 <= first.rows["images"] < killed["clean"]["images"], first
    assert second.outcome.startswith("worker killed") and second.victim, second
    assert killed["final"].rc == 0


def test_no_row_is_stored_twice(killed):
    checks = killed["checks"]
    assert all(sum(k.duplicates.values()) == 0 for k in killed["kills"]), [k.duplicates for k in killed["kills"]]
    assert not _failed(checks, ["duplicated keys (clean)", "duplicated keys (killed)"])


def test_no_row_is_lost(killed):
    names = [f"rows {t}" for t in ROW_TABLES] + ["images ids", "frames (video_id, frame_index)", "names (files table)"]
    assert not _failed(killed["checks"], names)


def test_the_same_curated_set_as_one_uninterrupted_run(killed):
    names = ["rows faces", "faces face_id", "duplicate marks (images)", "duplicate marks (frames)",
             "exported ids (metadata.jsonl)", "exported files (OUT/images)"]
    assert not _failed(killed["checks"], names)
