"""Captions: the facts each stored column supports (hand-made rows), both styles, and a real run on
tests/data whose exported captions differ from image to image."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from raycurate.config import ConfigError, load_config
from raycurate.export import CaptionBuilder, CaptionFacts, CaptionTemplate, caption_facts, sentence
from raycurate.export.caption_parts import head_pose
from raycurate.export.captions import fact_tags

from .conftest import copy_into, general_images

# Every fact, from the columns the analysers store (CLIP, pose, emotion, face, face_features, decode).
FULL = {
    "face_count": 3, "face_boxes": [[0.3, 0.2, 0.6, 0.6], [0.7, 0.1, 0.8, 0.2]], "face_pose": [[25.0, -40.0, 3.0]],
    "face_views": ["frontal"], "emotion_dominant": "happy", "pose_orientation": ["back"],
    "pose_full_body": [False], "clip_shot": ["medium shot"], "clip_angle": ["a low angle"],
    "clip_clothing": ["a jacket"], "clip_accessories": ["sunglasses", "a hat"], "clip_tattoos": ["tattoos"],
    "clip_lighting": ["backlight"], "mode": "L",
}


def test_every_fact_comes_from_its_column():
    f = caption_facts(FULL)
    assert f == CaptionFacts(people=3, shot="medium shot", angle="a low angle", view="looking left",
                             tilt="looking up", orientation="back", expression="happy", clothing="a jacket",
                             accessories=("sunglasses", "a hat"), tattoos=True, lighting="backlight",
                             monochrome=True, face_cut=False)


def test_a_row_without_columns_says_nothing():
    assert caption_facts({}) == CaptionFacts()
    nulls = {k: None for k in FULL}
    assert caption_facts(nulls) == CaptionFacts()
    empty = {"face_count": 0, "face_boxes": [], "face_pose": [None], "face_views": ["unknown"],
             "pose_orientation": ["unknown"], "clip_shot": [], "clip_clothing": ["no visible clothing"],
             "clip_accessories": [], "clip_tattoos": [], "emotion_dominant": "", "mode": "RGB",
             "face_pose_source": "5-point estimate"}
    assert caption_facts(empty) == CaptionFacts()


@pytest.mark.parametrize("height, shot", [(0.6, "extreme close-up"), (0.4, "close-up"), (0.3, "medium close-up"),
                                          (0.2, "medium shot"), (0.08, "wide shot")])
def test_without_clip_the_shot_is_the_face_height_in_the_frame(height, shot):
    row = {"face_boxes": [[0.4, 0.1, 0.6, 0.1 + height], [0.0, 0.0, 0.9, 0.9]]}   # the first face is the largest
    assert caption_facts(row).shot == shot
    assert caption_facts({**row, "pose_full_body": [True]}).shot == "full body"        # pose: head and ankles
    upper = [0.5, 0.1, 0.9] + [0.0, 0.0, 0.1] * 4 + [0.4, 0.3, 0.9, 0.6, 0.3, 0.9] + [0.0, 0.0, 0.1] * 4 \
        + [0.45, 0.7, 0.8, 0.55, 0.7, 0.8] + [0.0, 0.0, 0.1] * 4          # nose, shoulders, hips seen
    assert caption_facts({**row, "pose_full_body": [False], "pose_keypoints": [upper]}).shot == "upper body"
    hips_unseen = upper[:35] + [0.3] + upper[36:]                          # the left hip's confidence 0.3
    assert caption_facts({**row, "pose_keypoints": [hips_unseen]}).shot == shot
    assert caption_facts({**row, "clip_shot": ["close-up"], "pose_full_body": [True]}).shot == "close-up"


@pytest.mark.parametrize("pitch, yaw, view, tilt", [
    (0.0, 0.0, "frontal", None), (0.0, 19.9, "frontal", None), (0.0, 20.0, "looking right", None),
    (5.0, -35.0, "looking left", None), (0.0, 70.0, "profile", None), (0.0, -61.0, "profile", None),
    (-25.0, 0.0, "frontal", "looking down"), (22.0, 30.0, "looking right", "looking up")])
def test_head_pose_gives_view_and_tilt(pitch, yaw, view, tilt):
    f = caption_facts({"face_pose": [[pitch, yaw, 0.0]], "face_views": ["profile_left"]})
    assert (f.view, f.tilt) == (view, tilt)
    assert head_pose({"face_pose": [[pitch, yaw, 0.0]]}) == (pitch, yaw)


def test_without_a_head_pose_the_detector_view_is_used():
    assert caption_facts({"face_views": ["profile_right", "frontal"]}).view == "profile"
    assert caption_facts({"face_pose": [None], "face_views": ["frontal"]}).view == "frontal"
    assert caption_facts({"face_pose": [[float("nan"), 10.0, 0.0]], "face_views": ["frontal"]}).tilt is None


def test_a_face_box_at_the_frame_edge_is_cut_off():
    assert caption_facts({"face_boxes": [[0.0, 0.2, 0.3, 0.5]]}).face_cut
    assert caption_facts({"face_boxes": [[0.5, 0.6, 0.8, 1.0]]}).face_cut
    assert not caption_facts({"face_boxes": [[0.1, 0.1, 0.9, 0.9]]}).face_cut


def test_tags_style_renders_the_default_template():
    tags = CaptionBuilder("tags").render(FULL, "alice")
    assert tags == ("alice, 3 people, black and white, medium shot, low angle, looking left, looking up, "
                    "from behind, smiling, jacket, sunglasses, hat, tattoos, backlit")
    assert CaptionBuilder().render({}, "alice") == "alice"
    assert CaptionBuilder().render({"face_count": 1, "emotion_dominant": "surprise"}, "ohwx") == \
        "ohwx, 1 person, surprised expression"


def test_sentence_style_says_the_same_facts():
    text = CaptionBuilder("sentence").render(FULL, "alice")
    assert text == ("a black and white medium shot of alice smiling, with 2 other people, looking left, looking up, "
                    "seen from behind, taken from a low angle, wearing a jacket, sunglasses and a hat, with tattoos, "
                    "backlit")
    assert sentence(CaptionFacts(), "alice") == "a photo of alice"
    assert sentence(CaptionFacts(shot="close-up", view="looking left", expression="happy",
                                 clothing="a red jacket", accessories=("sunglasses",)), "alice") == \
        "a close-up photo of alice smiling, looking left, wearing a red jacket and sunglasses"
    assert sentence(CaptionFacts(people=2, shot="extreme close-up", view="frontal", orientation="front",
                                 angle="eye level", lighting="daylight", expression="neutral", face_cut=True)) == \
        ("an extreme close-up photo with a neutral expression, with another person, facing the camera, "
         "taken at eye level, in daylight, the face partly out of frame")   # facing the camera once


def test_labels_the_renderers_do_not_know_are_used_as_they_are():
    f = CaptionFacts(shot="cowboy shot", expression="contempt", lighting="neon light")
    assert sentence(f, "bob") == "a cowboy shot photo of bob with a contempt expression, in neon light"
    assert fact_tags(f)["shot"] == "cowboy shot" and fact_tags(f)["expression"] == "contempt expression"


def test_a_template_over_raw_columns_still_works_beside_the_facts():
    t = CaptionTemplate.from_mapping({"parts": [
        "{trigger}", {"text": "{head_yaw}", "ranges": {"head_yaw": [[-20, "left"], [20, None], [None, "right"]]}},
        {"text": "{clip_lighting}", "first": True}, "{view}"]})
    assert t.render({"face_pose": [[0.0, -30.0, 0.0]], "clip_lighting": ["daylight"]}, "tw") == \
        "tw, left, daylight, looking left"
    t.check_columns(["face_pose", "clip_lighting"])                # facts are derived: no column needed
    builder = CaptionBuilder("sentence", CaptionTemplate.from_mapping({"parts": ["{nope}"]}))
    builder.check_columns(["id"])                                   # a sentence does not read the template
    with pytest.raises(ConfigError, match="no column named"):
        CaptionBuilder("tags", builder.template).check_columns(["id"])


def test_the_style_is_a_setting():
    assert load_config()["export"]["kohya"]["caption_style"] == "tags"
    with pytest.raises(ConfigError, match=r"export\.kohya\.caption_style"):
        load_config(overrides=[("export.kohya.caption_style", "prose")])
    with pytest.raises(ConfigError, match="caption style"):
        CaptionBuilder("prose")


@pytest.mark.parametrize("style, trigger, person, caption", [
    ("tags", None, None, "person, close-up"), ("tags", "ohwx", None, "ohwx, close-up"),
    ("tags", "ohwx", "alice", "alice, close-up"),            # a --person target's folder: their name
    ("sentence", None, None, "a close-up photo of a person"), ("sentence", "ohwx", None, "a close-up photo of ohwx"),
    ("sentence", None, "alice", "a close-up photo of alice")])
def test_the_export_names_who_the_caption_is_of(style, trigger, person, caption):
    from raycurate.config import load_settings
    from raycurate.export import export_options

    settings = load_settings(overrides=[("export.kohya.caption_style", style), ("export.kohya.trigger", trigger)])
    kohya = export_options(settings.export)["kohya"]
    assert kohya.caption({"clip_shot": ["close-up"]}, person) == caption


def test_the_web_ui_export_passes_the_style():
    from raycurate.ui.exports import export_config

    assert export_config(["kohya"], caption_style="sentence").kohya.caption_style == "sentence"


# -- a real run on tests/data/images, with the analysers this install has (no download) --------------------

def _captions(out: Path) -> dict[str, str]:
    """The kohya folder as a trainer reads it: per image, the .txt of the same stem beside it."""
    folders = list((out / "train").iterdir())
    assert [f.name for f in folders] == ["10_person"]
    files = sorted(folders[0].iterdir())
    images = [f for f in files if f.suffix != ".txt"]
    texts = [f for f in files if f.suffix == ".txt"]
    assert sorted(f.stem for f in images) == sorted(f.stem for f in texts)   # one caption per image, no stray one
    return {f.name: f.with_suffix(".txt").read_text(encoding="utf-8") for f in images}


@pytest.fixture(scope="module")
def run(tmp_path_factory, ray_session):
    from raycurate.cli import main
    from raycurate.config import load_settings
    from raycurate.export import export_filtered

    out = tmp_path_factory.mktemp("captions")
    copy_into(out / "in", *general_images())
    rc = main(["run", str(out / "in"), "--out", str(out / "run"), "--set", "video.enabled=false"])
    sentences = out / "sentences"
    export_filtered(str(out / "run" / "db"), str(sentences),
                    settings=load_settings(overrides=[("export.kohya.caption_style", "sentence")]))
    meta = [json.loads(line) for line in (out / "run" / "metadata.jsonl").read_text().splitlines()]
    return {"rc": rc, "tags": _captions(out / "run"), "sentences": _captions(sentences), "meta": meta}


def test_kept_images_of_a_real_run_get_distinct_captions(run):
    assert run["rc"] == 0
    kept = [m for m in run["meta"] if m["file"]]
    assert kept and len(run["tags"]) == len(run["sentences"]) == len(kept)
    for style in ("tags", "sentences"):
        captions = run[style]
        distinct = len(set(captions.values()))
        print(f"{style}: {len(captions)} kept images, {distinct} distinct captions")
        for name, text in sorted(captions.items()):
            print(f"  {name}: {text}")
        assert distinct * 2 >= len(captions), captions


def test_the_kohya_captions_are_what_a_trainer_reads(run):
    by_file = {os.path.basename(m["file"]): m["caption"] for m in run["meta"] if m["file"]}
    assert run["tags"] == by_file                                   # metadata holds the .txt's text
    for text in run["tags"].values():
        assert "\n" not in text and text == text.strip()
        tags = text.split(", ")
        assert tags[0] == "person" and all(tags) and len(tags) == len(set(tags)) > 1
    for text in run["sentences"].values():
        assert "\n" not in text and text.startswith(("a ", "an ")) and " of a person" in text and ", ," not in text
