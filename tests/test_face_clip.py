"""The bundled face clip (tests/data/videos/faces_two_shots.mp4, made by scripts/clips.py): its truth is known by
construction (the cut, the pasted face photo's box in every frame), and the real detectors must find it."""
import json

import pytest

from raycurate.video.reader import open_video
from raycurate.video.scenes import CutDetector

from .conftest import DATA

CLIP = DATA / "videos" / "faces_two_shots.mp4"
TRUTH = json.loads(CLIP.with_suffix(".json").read_text())


@pytest.mark.parametrize("backend", ["decord", "pyav", "opencv"])
def test_the_cut_between_the_two_shots_is_found(backend):
    reader = open_video(str(CLIP), (backend,))
    cuts = CutDetector("content", reader.info.fps)
    last = 0
    for f in reader.frames(step=5, thumbs=True):
        cuts.add(f.index, f.rgb)
        last = f.index
    assert last == TRUTH["frames"] - 1
    assert cuts.finish(last) == TRUTH["cuts"] == [72]


def test_centerface_finds_the_one_face_inside_the_pasted_photo():
    from raycurate.analyzers.centerface import CenterFaceDetector

    det = CenterFaceDetector(det_size=640, det_thresh=0.5)
    det.load()
    frames = list(open_video(str(CLIP)).frames(step=6))
    found = det.detect([f.rgb for f in frames])
    assert len(frames) == 24
    for f, faces in zip(frames, found):
        assert len(faces) == 1, f.index
        x, y, w, h = TRUTH["boxes"][f.index]
        x1, y1, x2, y2 = faces[0].box
        # the face lies inside the pasted crop (a few px of slack for the codec) and fills a fair part of it
        assert x - 4 <= x1 < x2 <= x + w + 4 and y - 4 <= y1 < y2 <= y + h + 4, (f.index, faces[0].box)
        assert (x2 - x1) >= 0.35 * w, (f.index, faces[0].box)
