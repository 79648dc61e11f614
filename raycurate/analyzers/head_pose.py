"""Head pose (pitch, yaw, roll in degrees) ESTIMATED from a face detector's 5 landmarks.

Used where InsightFace's 3D landmark model (``1k3d68``, whose ``face.pose`` is
[pitch, yaw, roll]) did not run. Five points cannot know a person's proportions, so
this is an estimate: expect errors of several degrees on real faces, more on pitch,
and a possible constant pitch offset against InsightFace (see ``MODEL``).

Landmark order: eye, eye, nose tip, mouth corner, mouth corner, as CenterFace and
SCRFD give them (on an upright frontal face the first eye and first mouth corner have
the smaller x). Pixels, x right, y down.

Sign convention, the same as InsightFace 2.1's ``face.pose``. There,
``Landmark.get`` fits an affine map from its mean 3D face (x to the image's right,
y down, z out of the face towards the camera) to the predicted landmarks;
``transform.P2sRt`` turns the rows giving image x and image y into a rotation R and
``transform.matrix2angle`` reads R as Rz(roll) @ Ry(yaw) @ Rx(pitch). Applying those
rotations to that mean face gives:

* yaw > 0: the face turns towards the image's right (the nose tip moves to larger x);
* pitch > 0: the face looks up (the nose tip moves up, towards the eye line);
* roll > 0: the head tilts clockwise as seen in the image (the eye on the image's
  right sits lower; the top of the head leans towards the image's right).

``view_of`` names a view after the image side the face points to, as the Haar
detector's labels do: yaw >= 30 is ``profile_right``, yaw <= -30 ``profile_left``.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import cv2
import numpy as np

# A generic face of the 5 points, in InsightFace's mean-face frame (x right, y down, z
# towards the camera), units of the distance between the eyes. Depths (nose tip 0.5,
# mouth corners 0.12 ahead of the eyes) follow InsightFace's meanshape_68; the frontal
# layout (nose tip about halfway from the eye line to the mouth line) follows what 5-point
# detectors report on frontal faces. Pitch 0 means that layout, which is why pitch may sit
# a constant few degrees away from InsightFace's own.
MODEL = np.array([[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.52, 0.5],
                  [-0.42, 1.02, 0.12], [0.42, 1.02, 0.12]])
_FLIP_Z = np.diag([1.0, 1.0, -1.0])   # InsightFace's frame <-> OpenCV's camera frame (z away)
FRONTAL_MAX_YAW = 30.0


def rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """Rz(roll) @ Ry(yaw) @ Rx(pitch), degrees, in the mean-face frame: InsightFace's order."""
    x, y, z = np.radians([pitch, yaw, roll])
    rx = np.array([[1, 0, 0], [0, math.cos(x), -math.sin(x)], [0, math.sin(x), math.cos(x)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(z), -math.sin(z), 0], [math.sin(z), math.cos(z), 0], [0, 0, 1]])
    return rz @ ry @ rx


def angles(r: np.ndarray) -> tuple[float, float, float]:
    """(pitch, yaw, roll) in degrees of a rotation built as :func:`rotation` builds it."""
    pitch = math.atan2(r[2, 1], r[2, 2])
    yaw = math.atan2(-r[2, 0], math.hypot(r[0, 0], r[1, 0]))
    roll = math.atan2(r[1, 0], r[0, 0])
    return math.degrees(pitch), math.degrees(yaw), math.degrees(roll)


MIN_EXTENT_PX = 6.0   # landmarks spread over fewer pixels than this give no pose


def estimate_pose(kps: Sequence[float] | np.ndarray,
                  image_size: tuple[int, int] | None = None) -> tuple[float, float, float] | None:
    """(pitch, yaw, roll) in degrees from 5 landmarks (10 numbers or 5 x, y pairs), or None.

    ``image_size`` is (width, height): the focal length is taken as its larger side;
    without it, as 12 times the landmarks' extent (a face at portrait distance). The
    principal point is the landmarks' centre, so the pose is relative to the line of
    sight, as InsightFace's pose (read off a crop around the face) is.

    Method: perspective-n-point (OpenCV's SQPnP, a global solver) of the 5 points
    against ``MODEL``. A closed-form reading (roll from the eye line, yaw from the nose's
    offset, pitch from its height) mixes the angles as soon as two are non-zero; on the
    synthetic grid of the tests it was off by up to tens of degrees where this is exact.
    None for input that is not 5 finite, non-collinear points, or whose best fit faces
    away from the camera (e.g. left and right swapped).
    """
    try:
        pts = np.asarray(kps, dtype=np.float64).reshape(5, 2)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(pts).all():
        return None
    centred = pts - pts.mean(axis=0)
    sv = np.linalg.svd(centred, compute_uv=False)
    if sv[0] < 1.0 or sv[1] < 0.05 * sv[0]:          # under a pixel, or the points on a line
        return None
    if float(np.ptp(pts, axis=0).max()) < MIN_EXTENT_PX:   # a face of a few pixels has no readable pose
        return None
    extent = float(np.ptp(pts, axis=0).max())
    focal = float(max(image_size)) if image_size and max(image_size) > 0 else 12.0 * extent
    cx, cy = pts.mean(axis=0)
    camera = np.array([[focal, 0.0, cx], [0.0, focal, cy], [0.0, 0.0, 1.0]])
    try:
        ok, rvec, _tvec = cv2.solvePnP((MODEL @ _FLIP_Z).reshape(5, 1, 3), pts.reshape(5, 1, 2), camera,
                                       None, flags=cv2.SOLVEPNP_SQPNP)
    except cv2.error:                 # SQPnP refuses points too close together for the focal length
        return None
    if not ok:
        return None
    r = _FLIP_Z @ cv2.Rodrigues(rvec)[0] @ _FLIP_Z
    if r[2, 2] < 0.0:                 # the face's front points away from the camera: not a face
        return None
    pitch, yaw, roll = angles(r)
    return (float(np.clip(pitch, -90.0, 90.0)), float(np.clip(yaw, -90.0, 90.0)), float(roll))


def estimate_poses(faces_kps: Iterable[Sequence[float] | np.ndarray | None],
                   image_size: tuple[int, int] | None = None) -> list[tuple[float, float, float] | None]:
    """:func:`estimate_pose` for each face of one image (None where a face has no landmarks)."""
    return [None if k is None else estimate_pose(k, image_size) for k in faces_kps]


def view_of(yaw: float | None) -> str:
    """frontal (|yaw| < 30), profile_right (turned towards the image's right, yaw >= 30),
    profile_left (yaw <= -30), or unknown (no yaw)."""
    if yaw is None or not math.isfinite(yaw):
        return "unknown"
    if abs(yaw) < FRONTAL_MAX_YAW:
        return "frontal"
    return "profile_right" if yaw > 0 else "profile_left"
