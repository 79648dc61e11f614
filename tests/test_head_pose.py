"""Head pose estimated from 5 landmarks (raycurate.analyzers.head_pose): accuracy, symmetry, conventions."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from raycurate.analyzers.head_pose import MODEL, estimate_pose, estimate_poses, rotation, view_of

# CenterFace's landmarks on real photos: pixels, eye, eye, nose, mouth corner, mouth corner; (width, height).
REAL = {
    "obama": ((910, 1137), [435, 215, 560, 210, 501, 274, 442, 335, 550, 331]),
    "biden": ((970, 2204), [531, 317, 663, 338, 594, 406, 514, 459, 626, 477]),
    "astronaut": ((512, 512), [203, 100, 249, 103, 224, 124, 203, 142, 243, 144]),
    "camera": ((512, 512), [240, 146, 256, 149, 256, 166, 231, 179, 242, 181]),
    "grace_hopper": ((512, 600), [223, 200, 304, 194, 266, 241, 232, 281, 299, 276]),
}
FRONTAL = ("obama", "astronaut", "grace_hopper")
GRID = list(itertools.product(range(-30, 31, 10), range(-60, 61, 10), range(-45, 46, 15)))  # pitch, yaw, roll


def perspective(pitch: float, yaw: float, roll: float, f: float = 1000.0, dist: float = 10.0) -> np.ndarray:
    """The model's 5 points posed and seen by a pinhole camera (f px, principal point (500, 500)), the
    points' centroid on the optical axis `dist` eye-distances away: an eye distance is ~100 px."""
    pts = (rotation(pitch, yaw, roll) @ (MODEL - MODEL.mean(axis=0)).T).T
    depth = dist - pts[:, 2]                      # the model's z points towards the camera
    return np.c_[500 + f * pts[:, 0] / depth, 500 + f * pts[:, 1] / depth]


def orthographic(pitch: float, yaw: float, roll: float, scale: float = 80.0) -> np.ndarray:
    pts = (rotation(pitch, yaw, roll) @ (MODEL - MODEL.mean(axis=0)).T).T
    return pts[:, :2] * scale + 300


def errors(project, image_size) -> np.ndarray:
    return np.array([np.abs(np.subtract(estimate_pose(project(*g), image_size), g)) for g in GRID])


def test_synthetic_grid_recovered_with_the_matching_camera():
    # pitch -30..30, yaw -60..60, roll -45..45: the model is exact and so is the camera, so only
    # numerical error remains (measured: max ~0.05 deg).
    err = errors(perspective, (1000, 1000))
    assert err.max() < 0.5, err.max(axis=0)


def test_synthetic_grid_without_image_size():
    # An orthographic view, while the estimator assumes a face at portrait distance: the
    # mismatch costs about a degree (measured: mean ~0.6/0.3/0.3, max ~1.3/1.0/0.8 pitch/yaw/roll).
    err = errors(orthographic, None)
    assert err.max() < 3.0, err.max(axis=0)
    assert (err.mean(axis=0) < 1.0).all(), err.mean(axis=0)


def test_noisy_landmarks_stay_close():
    rng = np.random.default_rng(0)
    err = np.array([np.abs(np.subtract(estimate_pose(perspective(*g) + rng.normal(0, 3, (5, 2)), (1000, 1000)), g))
                    for g in GRID[::3]])                         # noise: 3 % of the eye distance
    assert (err.mean(axis=0) < 5.0).all(), err.mean(axis=0)


def test_same_convention_as_insightface():
    """InsightFace's own pose code (affine fit, P2sRt, matrix2angle) on the posed model reads back the
    angles we posed it with, and so does estimate_pose: same order, same signs."""
    transform = pytest.importorskip("insightface.utils.transform")
    for pose in [(20, 0, 0), (0, 35, 0), (0, 0, 15), (15, -25, 10), (-10, 40, -20)]:
        moved = (rotation(*pose) @ MODEL.T).T * 100 + [300, 200, 0]
        fit = transform.estimate_affine_matrix_3d23d(MODEL, moved)
        theirs = transform.matrix2angle(transform.P2sRt(fit)[1])
        np.testing.assert_allclose(theirs, pose, atol=1e-3)
        np.testing.assert_allclose(estimate_pose(moved[:, :2]), pose, atol=1.5)
    # and the plain meaning of each sign
    nose = lambda pose: orthographic(*pose)[2] - orthographic(0, 0, 0)[2]  # noqa: E731
    assert nose((0, 30, 0))[0] > 0           # yaw > 0: the nose moves to the image's right
    assert nose((20, 0, 0))[1] < 0           # pitch > 0: the nose moves up: looking up
    eyes = orthographic(0, 0, 15)[:2]
    assert eyes[1, 1] > eyes[0, 1]           # roll > 0: the eye on the image's right is lower


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_landmarks(name):
    size, kps = REAL[name]
    pitch, yaw, roll = estimate_pose(kps, size)
    assert abs(pitch) < 30
    if name in FRONTAL:
        assert abs(yaw) < 20 and abs(roll) < 10 and view_of(yaw) == "frontal"
    if name == "biden":                      # the head tilts: his eye on the image's right is lower
        assert 5 < roll < 15 and abs(yaw) < 20
    if name == "camera":                     # the man looks through his camera, towards the image's right
        assert yaw > 35 and view_of(yaw) == "profile_right"
    # without the image size only the assumed focal changes: nearly the same pose
    np.testing.assert_allclose(estimate_pose(kps), (pitch, yaw, roll), atol=1.0)


def rotate(kps, degrees: float) -> np.ndarray:
    pts = np.asarray(kps, float).reshape(5, 2)
    a = math.radians(degrees)                # clockwise on screen (y down), like a positive roll
    r = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    centre = pts.mean(axis=0) + [7, -5]
    return (pts - centre) @ r.T + centre


@pytest.mark.parametrize("name", sorted(REAL))
@pytest.mark.parametrize("angle", [-30, -10, 10, 30])
def test_rotation_in_the_image_plane_is_roll(name, angle):
    size, kps = REAL[name]
    base = np.array(estimate_pose(kps, size))
    turned = np.array(estimate_pose(rotate(kps, angle), size))
    assert abs(turned[2] - base[2] - angle) < 2.0
    assert np.abs(turned[:2] - base[:2]).max() < 2.0


@pytest.mark.parametrize("name", sorted(REAL))
def test_mirror_flips_yaw_and_roll(name):
    (width, _h), kps = REAL[name]
    pts = np.asarray(kps, float).reshape(5, 2)
    flipped = np.c_[width - pts[:, 0], pts[:, 1]][[1, 0, 2, 4, 3]]   # keep the left-right order convention
    pitch, yaw, roll = estimate_pose(kps, REAL[name][0])
    m_pitch, m_yaw, m_roll = estimate_pose(flipped, REAL[name][0])
    assert abs(m_yaw + yaw) < 2.0 and abs(m_roll + roll) < 2.0 and abs(m_pitch - pitch) < 2.0
    assert view_of(m_yaw) == {"profile_right": "profile_left"}.get(view_of(yaw), view_of(yaw))


@pytest.mark.parametrize("kps", [
    [0] * 10,                                                  # one point
    [100, 100, 110, 110, 120, 120, 130, 130, 140, 140],       # on a line
    [435, 215, 560, 210, 501, float("nan"), 442, 335, 550, 331],
    [435, 215, 560, 210, 501, 274, 442, 335],                 # 4 points
    [[1, 2, 3]],
    "face",
    None,
    [100.2, 100, 100.4, 100.1, 100.3, 100.5, 100.1, 100.9, 100.6, 100.8],  # under a pixel
    [560, 210, 435, 215, 501, 274, 550, 331, 442, 335],       # left and right swapped: seen from behind
])
def test_degenerate_input_gives_none(kps):
    assert estimate_pose(kps) is None


def test_many_faces_and_views():
    size, kps = REAL["obama"]
    poses = estimate_poses([kps, None, [0] * 10, np.asarray(REAL["camera"][1]).reshape(5, 2)], size)
    assert poses[0] == estimate_pose(kps, size) and poses[1] is None and poses[2] is None and poses[3][1] > 35
    assert [view_of(y) for y in (None, float("nan"), 0.0, 29.9, -29.9, 30.0, 75.0, -30.0)] == [
        "unknown", "unknown", "frontal", "frontal", "frontal", "profile_right", "profile_right", "profile_left"]


def test_landmarks_a_few_pixels_apart_give_none_not_an_error():
    # seen with a detector on a tiny face: SQPnP raised instead of answering
    assert estimate_pose([0, 0, 3, 0, 1.5, 1.5, 0.3, 3, 2.7, 3], (1024, 768)) is None
    assert estimate_pose([100, 100, 103, 100, 101.5, 101.5, 100.3, 103, 102.7, 103], (4000, 3000)) is None
