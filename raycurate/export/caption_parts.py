"""What a caption may say about a stored row: :class:`CaptionFacts`, each fact read from the columns that
support it, and nothing a column does not hold (a missing or null column leaves its fact out).

The facts and their columns (the first one present wins where several are listed):

=============  ========================================================================================
people         ``face_count`` (faces found; 0 or null: not said)
shot           CLIP's ``clip_shot``; else ``pose_full_body`` of the largest person (true: full body); else
               upper body where its ``pose_keypoints`` show the head, both shoulders and both hips (see
               :func:`upper_body`); else the largest face's height in the frame (``face_boxes``,
               see :data:`SHOT_BY_FACE`)
angle          CLIP's ``clip_angle`` (camera angle: eye level, a high angle, a low angle)
view           head yaw of the largest face (``face_pose``); else the detector's ``face_views``
tilt           head pitch of the largest face (``face_pose``): looking up / down
orientation    ``pose_orientation`` of the largest person: front, back, side
expression     ``emotion_dominant`` (the largest face's emotion label)
clothing       CLIP's ``clip_clothing`` (its best label; "no visible clothing" says nothing)
accessories    CLIP's ``clip_accessories`` (every label kept)
tattoos        CLIP's ``clip_tattoos`` (a label kept)
lighting       CLIP's ``clip_lighting``
monochrome     ``mode``: the file holds grey levels only (L, LA, 1, I, I;16, F)
face_cut       the largest face's box touches the frame's edge (``face_boxes``): the face is cut off
=============  ========================================================================================

CLIP's labels come from the prompt file (configs/prompts.yaml, which a user may change): they are kept as
text and the renderers (:mod:`.captions`) word the ones they know, using any other as it is.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

# Shot size from the largest face's box height over the frame's height. A detector's face box (brow to chin)
# is about 1/8 of a standing adult; the head with hair about 1.25 boxes, shoulders reach ~2 boxes below its
# top, the chest ~3, the waist ~5, the knees ~8, the feet ~10. So a frame at most 2 boxes tall shows the face
# only, 3 head and shoulders, 4.5 the chest up, 7 the waist up, and a taller frame more of the body.
SHOT_BY_FACE: tuple[tuple[float, str], ...] = (
    (0.5, "extreme close-up"), (0.33, "close-up"), (0.22, "medium close-up"), (0.14, "medium shot"),
    (0.0, "wide shot"))
# Head pose (degrees; InsightFace's sign: yaw > 0 turns the face towards the picture's right, pitch > 0 up).
FRONTAL_YAW = 20.0       # |yaw| below this: frontal
PROFILE_YAW = 60.0       # |yaw| at least this: profile; between: looking left / right (as seen in the picture)
TILT_PITCH = 20.0        # |pitch| at least this: looking up / down
EDGE = 0.005             # a face box within this fraction of the frame's edge is cut off by it
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_VIEWS = {"frontal": "frontal", "profile_left": "profile", "profile_right": "profile"}   # face_views
_ORIENTATIONS = {"front": "front", "back": "back", "left": "side", "right": "side"}       # pose_orientation
VISIBLE = 0.5                            # keypoint confidence that counts as seen (the pose analyser's default)
UPPER_BODY_POINTS = (0, 5, 6, 11, 12)    # COCO-17: nose, left/right shoulder, left/right hip


@dataclass(frozen=True)
class CaptionFacts:
    """What the stored columns say about one image (None / empty / False: nothing to say)."""

    people: int | None = None
    shot: str | None = None
    angle: str | None = None
    view: str | None = None           # frontal | looking left | looking right | profile
    tilt: str | None = None           # looking up | looking down
    orientation: str | None = None    # front | back | side
    expression: str | None = None
    clothing: str | None = None
    accessories: tuple[str, ...] = ()
    tattoos: bool = False
    lighting: str | None = None
    monochrome: bool = False
    face_cut: bool = False


def _first(value: Any) -> Any:
    """The first element of a list column (the largest face or person, the best label); None when empty."""
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def head_pose(row: Mapping[str, Any]) -> tuple[float, float] | None:
    """(pitch, yaw) in degrees of the largest face (``face_pose`` is pitch, yaw, roll per face: InsightFace's 3D
    model, else the 5-point estimate); None without one."""
    pose = _first(row.get("face_pose"))
    if pose is None or len(pose) != 3 or _number(pose[0]) is None or _number(pose[1]) is None:
        return None
    return float(pose[0]), float(pose[1])


def head_yaw(row: Mapping[str, Any]) -> float | None:
    """Yaw in degrees of the largest face (see :func:`head_pose`)."""
    pose = head_pose(row)
    return pose[1] if pose is not None else None


def _largest_face_box(row: Mapping[str, Any]) -> Sequence[float] | None:
    box = _first(row.get("face_boxes"))
    if box is None or len(box) != 4 or any(_number(v) is None for v in box):
        return None
    return box


def upper_body(row: Mapping[str, Any], visible: float = VISIBLE) -> bool:
    """The largest person's ``pose_keypoints`` (COCO-17, x, y, confidence) show the nose, both shoulders and
    both hips (confidence at least ``visible``, the pose analyser's default): the frame holds the head down to
    the waist at least."""
    points = _first(row.get("pose_keypoints"))
    if points is None or len(points) != 51:
        return False
    conf = [points[3 * i + 2] for i in UPPER_BODY_POINTS]
    return all(_number(c) is not None and c >= visible for c in conf)


def shot_of(row: Mapping[str, Any]) -> str | None:
    """CLIP's shot label; else full body when the pose analyser saw the largest person's head and ankles;
    else upper body when it saw the head, shoulders and hips (:func:`upper_body`); else the size of the
    largest face in the frame (:data:`SHOT_BY_FACE`)."""
    clip = _text(_first(row.get("clip_shot")))
    if clip is not None:
        return clip
    if _first(row.get("pose_full_body")) is True:
        return "full body"
    if upper_body(row):
        return "upper body"
    box = _largest_face_box(row)
    if box is None or box[3] <= box[1]:
        return None
    height = min(box[3], 1.0) - max(box[1], 0.0)
    return next(name for least, name in SHOT_BY_FACE if height >= least)


def view_of(row: Mapping[str, Any]) -> str | None:
    """Where the largest face turns, as seen in the picture: from its yaw, else the detector's view."""
    pose = head_pose(row)
    if pose is None:
        return _VIEWS.get(_text(_first(row.get("face_views"))) or "")
    yaw = pose[1]
    if abs(yaw) >= PROFILE_YAW:
        return "profile"
    if abs(yaw) >= FRONTAL_YAW:
        return "looking right" if yaw > 0 else "looking left"
    return "frontal"


def tilt_of(row: Mapping[str, Any]) -> str | None:
    pose = head_pose(row)
    if pose is None or abs(pose[0]) < TILT_PITCH:
        return None
    return "looking up" if pose[0] > 0 else "looking down"


def face_cut(row: Mapping[str, Any]) -> bool:
    """The largest face's box reaches the frame's edge: part of the face is outside the picture."""
    box = _largest_face_box(row)
    return box is not None and (min(box[0], box[1]) <= EDGE or max(box[2], box[3]) >= 1.0 - EDGE)


def caption_facts(row: Mapping[str, Any]) -> CaptionFacts:
    """The facts the row's stored columns support (see the module's table)."""
    count = row.get("face_count")
    clothing = _text(_first(row.get("clip_clothing")))
    accessories = row.get("clip_accessories") or ()
    return CaptionFacts(
        people=count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else None,
        shot=shot_of(row),
        angle=_text(_first(row.get("clip_angle"))),
        view=view_of(row),
        tilt=tilt_of(row),
        orientation=_ORIENTATIONS.get(_text(_first(row.get("pose_orientation"))) or ""),
        expression=_text(row.get("emotion_dominant")),
        clothing=None if clothing == "no visible clothing" else clothing,
        accessories=tuple(dict.fromkeys(t for t in map(_text, accessories) if t)),
        tattoos=any(_text(t) for t in row.get("clip_tattoos") or ()),
        lighting=_text(_first(row.get("clip_lighting"))),
        monochrome=row.get("mode") in GREY_MODES,
        face_cut=face_cut(row),
    )
