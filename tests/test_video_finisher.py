"""Stage 3 per video as its frames arrive (plain code, no ray), and Stage 1's narrowing."""
import numpy as np
import pyarrow as pa
import pytest

from raycurate.config import load_config, typed
from raycurate.rows import FRAME_ROW_SCHEMA, images_of, row_schema
from raycurate.sources import content_id
from raycurate.stages import Stage1, carried_fields
from raycurate.store import FRAMES_TABLE, STAGE3_TABLE, open_table
from raycurate.schemas import frames_schema
from raycurate.store.schema import VIDEOS_DONE_TABLE
from raycurate.video.finisher import VideoFinisher
from raycurate.video.jpeg import encode_frame
from raycurate.video.source import END_OF_SEGMENT
from raycurate.video.stage3 import pending_winners

from .conftest import DATA

H, W = 36, 64   # the analysis copy; the full frame is twice as large


def _frame(video, index, *, passed=True, sharp=500.0, segment=0):
    """A scored frame row as it leaves Stage 2: a full-size frame (as its JPEG) whose value is the frame index."""
    full = np.full((2 * H, 2 * W, 3), index % 256, np.uint8)
    small = full[::2, ::2]
    return {"video_id": video, "video_uri": f"/videos/{video}.mp4", "segment": segment, "frame_index": index,
            "timestamp": index / 10.0, "width": 2 * W, "height": 2 * H, "motion": None,
            "pixels": small.tobytes() if passed else None, "pixels_h": H, "pixels_w": W,
            "full_pixels": encode_frame(full, 95) if passed else None,
            "quality_sharpness": sharp, "quality_exposure": 0.9, "quality_contrast": 0.2, "face_count": 1,
            "face_largest_area": 0.05, "face_sharpness": [400.0], "nsfw_score": 0.0, "stage1_score": 0.5,
            "stage1_passed": True, "stage2_score": 0.8 if passed else 0.1, "stage2_passed": passed}


def _end(video, rows, segments=1, segment=0, cuts=()):
    return {"video_id": video, "video_uri": f"/videos/{video}.mp4", "segment": segment,
            "frame_index": END_OF_SEGMENT, "segment_rows": rows, "segments": segments, "cuts": list(cuts),
            "fps": 10.0}


def _batch(rows):
    schema = pa.schema(list(FRAME_ROW_SCHEMA) + [f for f in frames_schema() if f.name not in FRAME_ROW_SCHEMA.names
                                                 and f.name != "run_id"])
    return pa.Table.from_pylist(rows, schema=schema)


@pytest.fixture()
def finisher(tmp_path):
    s = typed(load_config(overrides=[("video.min_separation", 10), ("video.max_frames", 3)]))
    return VideoFinisher(db_uri=str(tmp_path / "db"), run_id="r1", stage3=s.cascade.stage3, video=s.video,
                         frames_dir=str(tmp_path / "frames"), rows=row_schema(carried_fields(s)), decode=s.decode)


def test_a_video_is_finished_when_its_last_segment_and_row_arrive_in_any_order(finisher, tmp_path):
    finisher.keep = None   # every candidate's pixels kept: no file to read again (that is the next tests')
    a = [_frame("a", i, sharp=100.0 + i) for i in range(0, 60, 5)]          # 12 frames, two segments
    seg0, seg1 = a[:6], a[6:]
    out = finisher(_batch(seg1[:3] + [_end("a", 6, 2, 1, cuts=[30])]))     # segment 1 closes first
    assert out.num_rows == 0 and finisher.pending == ["/videos/a.mp4"]
    out = finisher(_batch(seg0 + [_end("a", 6, 2, 0)]))
    assert out.num_rows == 0                                                # 3 rows of segment 1 still on their way
    out = finisher(_batch(seg1[3:]))
    assert finisher.pending == []
    images = images_of(out)
    winners = out.to_pylist()
    assert 1 <= len(winners) <= 3                                           # max_frames
    idx = sorted(w["frame_index"] for w in winners)
    assert all(b - a >= 10 for a, b in zip(idx, idx[1:]))                   # min_separation
    assert finisher.read_again == 0                                         # written from the kept pixels
    for w, pixels in zip(winners, images):   # the file holds the full-size frame of that index
        import cv2
        img = cv2.imread(w["uri"])
        assert img.shape == (2 * H, 2 * W, 3) and abs(int(img.mean()) - w["frame_index"] % 256) <= 2
        # the decoder's JPEG, written as it came (no second encoding)
        full = np.full((2 * H, 2 * W, 3), w["frame_index"] % 256, np.uint8)
        data = open(w["uri"], "rb").read()
        assert data == encode_frame(full, 95)
        # the image row that goes on: the file's id and size, its pixels at full size, its lineage, and the
        # scores the cascade gave it (the carried analysers' columns), never read back from the file
        assert (w["id"], w["file_size"], w["media_type"]) == (content_id(data), len(data), "video_frame")
        assert pixels.shape == (2 * H, 2 * W, 3) and abs(int(pixels.mean()) - w["frame_index"] % 256) <= 2
        assert (w["source_video_id"], w["stage2_score"], w["error"]) == ("a", pytest.approx(0.8), None)
        assert w["quality_sharpness"] == pytest.approx(100.0 + w["frame_index"]) and w["nsfw_score"] == 0.0
    db = str(tmp_path / "db")
    frames = open_table(db, FRAMES_TABLE).search().limit(None).to_list()
    assert len(frames) == 12 and {f["scene_index"] for f in frames} == {0, 1}   # the cut at 30, video-wide
    assert all(f["near_cut"] == (abs(f["frame_index"] - 30) <= 5) for f in frames)
    s3 = open_table(db, STAGE3_TABLE).search().limit(None).to_list()
    assert len(s3) == 12 and {r["frame_path"] for r in s3 if r["selected"]} == {w["uri"] for w in winners}
    done = open_table(db, VIDEOS_DONE_TABLE).search().limit(None).to_list()   # the video is marked done, last
    assert [(d["video_id"], d["uri"], d["frames"], d["winners"]) for d in done] == [("a", "/videos/a.mp4", 12,
                                                                                     len(winners))]
    # no images row yet: the winners are pending for the image path, as the Stage 3 step returned them
    assert sorted(w["path"] for w in pending_winners(db, {"a"})) == sorted(w["uri"] for w in winners)
    assert pending_winners(db, set()) == []


def test_rejected_frames_are_stored_not_written_and_videos_do_not_wait_for_each_other(finisher, tmp_path):
    finisher.keep = None
    out = finisher(_batch([_frame("a", 0, passed=False), _frame("b", 0), _end("b", 1), _frame("a", 5, passed=False)]))
    assert [w["source_video_id"] for w in out.to_pylist()] == ["b"]                # b is done while a is not
    out = finisher(_batch([_end("a", 2)]))
    assert out.num_rows == 0 and finisher.pending == []                     # a: no frame passed Stage 2
    frames = open_table(str(tmp_path / "db"), FRAMES_TABLE).search().limit(None).to_list()
    assert sorted((f["video_id"], f["frame_index"]) for f in frames) == [("a", 0), ("a", 5), ("b", 0)]


def test_a_winner_whose_pixels_were_not_kept_is_read_by_an_exact_seek(tmp_path, monkeypatch):
    import raycurate.video.finisher as fin

    monkeypatch.setattr(fin, "KEEP_FACTOR", 0)   # keep no pixels at all
    s = typed(load_config(overrides=[("video.min_separation", 10), ("video.max_frames", 2)]))
    f = VideoFinisher(db_uri=str(tmp_path / "db"), run_id="r1", stage3=s.cascade.stage3, video=s.video,
                      frames_dir=str(tmp_path / "frames"), rows=row_schema(carried_fields(s)), decode=s.decode)
    uri = str(DATA / "videos" / "counter.mp4")   # each frame shows its own index
    rows = []
    for i in (3, 17):
        r = _frame("c", i)
        r.update(video_uri=uri, width=1920, height=1080, full_pixels=None)
        rows.append(r)
    end = _end("c", 2)
    end["video_uri"] = uri
    winners = f(_batch(rows + [end])).to_pylist()
    assert sorted(w["frame_index"] for w in winners) == [3, 17] and f.read_again == 2
    import cv2
    from raycurate.video.reader import open_video
    truth = {fr.index: fr.rgb for fr in open_video(uri, ("decord",)).frames(step=1) if fr.index in (3, 17)}
    for w in winners:
        img = cv2.cvtColor(cv2.imread(w["uri"]), cv2.COLOR_BGR2RGB).astype(int)
        assert np.abs(img - truth[w["frame_index"]]).mean() < 3   # that very frame (JPEG noise only)


def _stage1(best=2, keep_faceless=False, window=30):
    s = typed(load_config(overrides=[("cascade.stage1.best_per_window", best),
                                     ("cascade.stage1.keep_faceless", keep_faceless)]))
    return Stage1([], threshold=0.15, batch_size=8, num_cpus=1, section=s.cascade.stage1, window=window)


def _rows(faces):
    return [{"video_id": "v", "frame_index": 5 * i, "face_count": n} for i, n in enumerate(faces)]


def test_stage1_drops_faceless_frames_unless_asked_and_keeps_the_best_per_window():
    stage = _stage1(best=None)
    assert [stage.passes(r, 0.5) for r in _rows([1, 0, 2])] == [True, False, True]
    assert [_stage1(best=None, keep_faceless=True).passes(r, 0.5) for r in _rows([1, 0])] == [True, True]
    stage = _stage1(best=2)
    rows = _rows([1] * 12)                                   # frames 0..55: two windows of 30 (6 frames each)
    scores = [0.2, 0.9, 0.5, 0.8, 0.3, 0.4, 0.7, 0.6, 0.1, 0.95, 0.2, 0.3]
    passed = [True] * 12
    stage.narrow(rows, scores, passed)
    assert [r["frame_index"] for r, p in zip(rows, passed) if p] == [5, 15, 30, 45]   # the best 2 of each window
    off = [True] * 12
    _stage1(best=None).narrow(rows, scores, off)
    assert all(off)


def test_a_sampled_frame_travels_at_full_size_as_its_winners_jpeg():
    """The full-size frame goes through the cascade as the JPEG its winner's file would hold, a fraction of
    its raw pixels, and decodes to the frame the analysis copy was made from."""
    import cv2

    from raycurate.video.source import VideoSampler

    s = typed(load_config(overrides=[("video.analysis_side", 160), ("video.batch_size", 8)]))
    path = str(DATA / "videos" / "testvideo.mp4")
    rows = [r for batch in VideoSampler(path, path, s.video) for r in batch]
    assert rows
    for r in rows[:5]:
        full = cv2.cvtColor(cv2.imdecode(np.frombuffer(r["full_pixels"], np.uint8), cv2.IMREAD_COLOR),
                            cv2.COLOR_BGR2RGB)
        assert full.shape == (r["height"], r["width"], 3)
        assert len(r["full_pixels"]) < full.nbytes / 5
        small = np.frombuffer(r["pixels"], np.uint8).reshape(r["pixels_h"], r["pixels_w"], 3).astype(int)
        again = cv2.resize(full, (r["pixels_w"], r["pixels_h"]), interpolation=cv2.INTER_AREA).astype(int)
        assert np.abs(again - small).mean() < 3
