"""The video path's decoding, sampling and scene detection on published ground truth."""
import av
import numpy as np
import pytest

from raycurate.video.reader import BACKENDS, VideoDecodeError, open_video, probe
from raycurate.settings import VideoSettings
from raycurate.video.sampling import Candidate, MotionFilter, select_frames
from raycurate.video.scenes import CutDetector, near_cut, scene_of

from .conftest import DATA

VIDEOS = DATA / "videos"


def detect_cuts(path, detector="content", backend="decord", step=5):
    """Cuts found while the frames are decoded once at ``step`` (the small copies between fed too)."""
    reader = open_video(str(path), (backend,))
    cuts = CutDetector(detector, reader.info.fps)
    last = 0
    for f in reader.frames(step=step, thumbs=True):
        cuts.add(f.index, f.rgb)
        last = f.index
    return cuts.finish(last)


def sampled(path, backend, step):
    reader = open_video(str(path), (backend,))
    frames = list(reader.frames(step=step))
    return reader, frames


@pytest.mark.parametrize("backend", BACKENDS)
def test_counter_indices_and_timestamps(backend):
    reader, frames = sampled(VIDEOS / "counter.mp4", backend, 1)
    assert reader.stats.backend == backend
    assert [f.index for f in frames] == list(range(30))
    assert [round(f.timestamp, 3) for f in frames] == [round(0.1 * i, 3) for i in range(30)]
    _, every5 = sampled(VIDEOS / "counter.mp4", backend, 5)
    assert [f.index for f in every5] == [0, 5, 10, 15, 20, 25]


def test_same_frames_whichever_decoder():
    results = {b: sampled(VIDEOS / "counter.mp4", b, 5)[1] for b in BACKENDS}
    ref = results["decord"]
    for b, frames in results.items():
        assert [(f.index, round(f.timestamp, 4)) for f in frames] == [(f.index, round(f.timestamp, 4)) for f in ref]
        for a, r in zip(frames, ref):
            assert np.abs(a.rgb.astype(int) - r.rgb.astype(int)).mean() < 2.0, b   # same picture


@pytest.mark.parametrize("backend", BACKENDS)
def test_delayed_start_carries_the_offset(backend):
    info = probe(str(VIDEOS / "delayed_start.mp4"))
    assert info.start_time == pytest.approx(1.075)
    _, frames = sampled(VIDEOS / "delayed_start.mp4", backend, 1)
    assert len(frames) == 24
    assert frames[0].timestamp == pytest.approx(1.075, abs=1e-3)
    assert frames[1].timestamp == pytest.approx(1.115, abs=1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_broken_frame_count_uses_what_decodes(backend):
    info = probe(str(VIDEOS / "tree.avi"))
    reader, frames = sampled(VIDEOS / "tree.avi", backend, 1)
    assert info.frame_count_claimed == 444
    assert len(frames) == reader.stats.frames_decoded == 68


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_is_applied_by_every_backend(tmp_path, rotation):
    path = tmp_path / f"rot{rotation}.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 32, "yuv420p"
        s.set_display_rotation(rotation)
        for _ in range(5):
            img = np.zeros((32, 64, 3), np.uint8)
            img[:8, :16] = 255                    # a marker in the top-left corner as stored
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    assert probe(str(path)).rotation == rotation
    expected = np.rot90(np.pad(np.ones((8, 16)), ((0, 24), (0, 48))), rotation // 90)  # counter-clockwise
    for backend in BACKENDS:
        frame = next(open_video(str(path), (backend,)).frames())
        assert frame.rgb.shape[:2] == expected.shape, backend
        assert ((frame.rgb[..., 0] > 128) == (expected > 0.5)).mean() > 0.97, backend


def test_undecodable_inputs_raise(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 200)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes((VIDEOS / "testvideo.mp4").read_bytes()[:5000])
    for path in (empty, junk, truncated):
        with pytest.raises(VideoDecodeError):
            reader = open_video(str(path))
            if not list(reader.frames()):
                raise VideoDecodeError("no frames")


@pytest.mark.parametrize("backend", ["decord", "opencv", "pyav"])
def test_scene_cuts_match_published_from_one_decode(backend):
    # PySceneDetect's published cuts of testvideo.mp4: ContentDetector 30, 180, 394; AdaptiveDetector adds 691.
    # PyAV scales every small copy itself (swscale), the sampled frames' too: one scaler, the published cuts
    assert detect_cuts(VIDEOS / "testvideo.mp4", backend=backend) == [30, 180, 394]
    assert detect_cuts(VIDEOS / "testvideo.mp4", "adaptive", backend=backend) == [30, 180, 394, 691]


def test_scene_and_near_cut_numbers():
    assert [scene_of(i, [30, 180, 394]) for i in (0, 29, 30, 179, 180, 700)] == [0, 0, 1, 1, 2, 3]
    assert near_cut(28, [30], 2) and near_cut(32, [30], 2) and not near_cut(33, [30], 2)


def test_every_scene_keeps_a_frame():
    cuts = detect_cuts(VIDEOS / "testvideo.mp4")
    reader = open_video(str(VIDEOS / "testvideo.mp4"))
    # score by contrast so that some scenes would lose on score alone; +20% near a cut
    cands = [Candidate(f.index, float(f.rgb.std()) * (1.2 if near_cut(f.index, cuts, 15) else 1.0),
                       scene_of(f.index, cuts)) for f in reader.frames(step=5)]
    by_score = select_frames(cands, min_separation=30, max_frames=4, per_scene=False)
    chosen = select_frames(cands, min_separation=30, max_frames=4, per_scene=True)
    assert {c.scene for c in chosen} == set(range(len(cuts) + 1)) == {0, 1, 2, 3}
    assert len({c.scene for c in by_score}) < 4   # without the rule a scene would be lost
    assert all(b.index - a.index >= 30 for a, b in zip(chosen, chosen[1:]))


def test_motion_threshold_reduces_and_selection_limits_hold_exactly():
    reader = open_video(str(VIDEOS / "vtest_first200.avi"))
    frames = list(reader.frames(step=2))
    kept = []
    for threshold in (0.0, 2.5, 3.0, 3.5, 4.0):   # people walking in a fixed shot change 2-5% of pixels
        motion = MotionFilter(threshold)
        kept.append(sum(motion(f.rgb)[0] for f in frames))
    assert kept[0] == len(frames)
    assert all(a > b for a, b in zip(kept, kept[1:])), kept
    cands = [Candidate(f.index, float(f.rgb.mean())) for f in frames]
    for sep, limit in ((15, 5), (30, 4), (7, 100)):
        chosen = select_frames(cands, min_separation=sep, max_frames=limit, per_scene=False)
        gaps = [b.index - a.index for a, b in zip(chosen, chosen[1:])]
        assert min(gaps) >= sep
        assert len(chosen) == min(limit, len(chosen)) and len(chosen) <= limit
    # as many as fit: 200 frames, separation 30 -> at most 7
    assert len(select_frames(cands, min_separation=30, max_frames=None, per_scene=False)) <= 7
    assert len(select_frames(cands, min_separation=30, max_frames=4, per_scene=False)) == 4


def test_video_settings_refuse_bad_values():
    with pytest.raises(ValueError, match="sample_rate must be a positive integer"):
        VideoSettings(sample_rate=0)
    with pytest.raises(ValueError, match=r"motion_threshold must be a number in \[0, 100\]"):
        VideoSettings(motion_threshold=120)
    assert VideoSettings(motion_threshold=5).motion_threshold == 5.0   # stored as a float


def test_decord_gpu_request_falls_back_to_cpu_with_a_note():
    reader = open_video(str(VIDEOS / "counter.mp4"), ("decord",), decord_device="gpu")
    frames = list(reader.frames(step=5))
    assert [f.index for f in frames] == [0, 5, 10, 15, 20, 25]
    if reader.device == "cpu":   # this decord has no CUDA (the wheels on PyPI have none)
        assert any("decord gpu unavailable" in e for e in reader.stats.errors)


def test_decord_starts_at_an_exact_frame():
    reader = open_video(str(VIDEOS / "testvideo.mp4"), ("decord",))
    ref = {f.index: f for f in open_video(str(VIDEOS / "testvideo.mp4"), ("pyav",)).frames(step=5, start=100,
                                                                                           stop=140)}
    got = list(reader.frames(step=5, start=100, stop=140))
    assert [f.index for f in got] == sorted(ref) == list(range(100, 140, 5))
    for f in got:
        assert f.timestamp == pytest.approx(ref[f.index].timestamp, abs=1e-3)
        assert np.abs(f.rgb.astype(int) - ref[f.index].rgb.astype(int)).mean() < 2.0
