"""--person: target people from reference photos, on REAL weights (CenterFace + dlib ship with the install)."""
import json

import cv2
import numpy as np
import pytest

from raycurate.cli import main
from raycurate.config import load_config, typed
from raycurate.people.targets import ReferenceError, load_targets, parse_person, persons_in
from raycurate.video.sampling import Candidate, select_frames
from raycurate.video.select import pose_bin

from .conftest import IMAGES

FR = IMAGES / "face_recognition"


def test_parse_person():
    assert parse_person("Ada Lovelace=a.jpg, b.jpg") == ("Ada Lovelace", ["a.jpg", "b.jpg"])
    for bad in ("ada", "=a.jpg", "ada=", "../x=a.jpg"):
        with pytest.raises(ReferenceError):
            parse_person(bad)


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return typed(load_config(overrides=[("models.dir", str(tmp_path_factory.mktemp("models")))]))


@pytest.fixture(scope="module")
def embedded(settings):
    """The obama/biden photos through the run's own face models (as stored face_embeddings)."""
    from raycurate.analyzers import build_analyzer
    from raycurate.decode import decode_image

    face = build_analyzer("face", settings.analyzers.face, settings.models)
    feats = build_analyzer("face_features", settings.analyzers.face_features, settings.models)
    face.setup()
    feats.setup()
    out = {}
    for name in ("obama2.jpg", "obama3.jpg", "biden.jpg"):
        rgb = decode_image((FR / name).read_bytes()).rgb
        batch = feats(face({"image": [rgb], "error": [None]}))
        out[name] = (batch["face_embeddings"][0], batch["face_embedding_model"][0])
    return out


def test_a_target_matches_its_person_and_no_one_else(settings, embedded):
    (obama,) = load_targets({"obama": [str(FR / "obama.jpg")]}, settings)
    assert obama.family == "dlib" and obama.references == (str(FR / "obama.jpg"),)
    assert persons_in(*embedded["obama2.jpg"], [obama]) == ["obama"]
    assert persons_in(*embedded["obama3.jpg"], [obama]) == ["obama"]
    assert persons_in(*embedded["biden.jpg"], [obama]) == []


def test_bad_reference_photos_are_refused_before_any_work(settings, tmp_path):
    with pytest.raises(ReferenceError, match="grass.jpg of x shows no face"):
        load_targets({"x": [str(IMAGES / "negatives" / "grass.jpg")]}, settings)
    a = cv2.imread(str(FR / "obama.jpg"))
    cv2.imwrite(str(tmp_path / "two.jpg"), np.hstack([a, a[:, ::-1]]))   # two faces of one size
    with pytest.raises(ReferenceError, match="2 faces of similar size"):
        load_targets({"x": [str(tmp_path / "two.jpg")]}, settings)


def test_selection_spreads_across_pose_bins():
    frontal = [Candidate(i * 10, 0.9 - i * 0.01, 0, "frontal/level/unknown") for i in range(10)]
    profile = [Candidate(200 + i * 10, 0.6, 0, "profile/level/unknown") for i in range(3)]
    plain = select_frames(frontal + profile, min_separation=5, max_frames=4, per_scene=False)
    spread = select_frames(frontal + profile, min_separation=5, max_frames=4, per_scene=False, spread=True)
    assert all(c.bin.startswith("frontal") for c in plain)
    assert {c.bin for c in spread} == {"frontal/level/unknown", "profile/level/unknown"}
    assert pose_bin({"face_pose": [[15.0, -35.0, 0.0]], "emotion_dominant": "happy"}) == "three-quarter/up/happy"
    assert pose_bin({"face_pose": [[-3.0, 70.0, 0.0]]}) == "profile/level/unknown"


def _slideshow(path, photos, seconds=2, fps=10, size=(640, 480)):
    """A video made of still photos (letterboxed), ``seconds`` each: frame ranges of known people."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for photo in photos:
        img = cv2.imread(str(photo))
        scale = min(size[0] / img.shape[1], size[1] / img.shape[0])
        small = cv2.resize(img, (int(img.shape[1] * scale), int(img.shape[0] * scale)))
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        y, x = (size[1] - small.shape[0]) // 2, (size[0] - small.shape[1]) // 2
        frame[y:y + small.shape[0], x:x + small.shape[1]] = small
        for _ in range(seconds * fps):
            writer.write(frame)
    writer.release()


@pytest.mark.slow   # a run on local Ray (16 s)
def test_person_end_to_end_on_photos_and_a_video(tmp_path, capsys):
    from raycurate.store import STAGE3_TABLE, open_table

    inp = tmp_path / "in"
    inp.mkdir()
    for name in ("obama2.jpg", "obama3.jpg", "biden.jpg"):
        (inp / name).write_bytes((FR / name).read_bytes())
    (inp / "astronaut.png").write_bytes((IMAGES / "faces" / "skimage_astronaut.png").read_bytes())
    _slideshow(inp / "show.mp4", [FR / "obama3.jpg", FR / "biden.jpg", FR / "obama2.jpg"])   # frames 0-19, 20-39, 40-59
    out = tmp_path / "out"
    rc = main(["run", str(inp), "--out", str(out), "--person", f"obama={FR / 'obama.jpg'}",
               "--set", "ray.num_cpus=2", "--set", f"models.dir={tmp_path / 'models'}", "--set", "video.sample_rate=5",
               "--set", "video.motion_threshold=0", "--set", "video.min_separation=5", "--set", "dedup.enabled=false"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    m = json.loads((out / "manifest.json").read_text())
    assert m["persons"]["targets"]["obama"]["family"] == "dlib"
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    kept = {r["uri"].rsplit("/", 1)[-1]: r for r in rows}
    assert rows and all(r["persons"] == ["obama"] for r in rows), kept.keys()
    assert {"obama2.jpg", "obama3.jpg"} <= set(kept) and not {"biden.jpg", "astronaut.png"} & set(kept)
    assert m["counts"]["gates"]["person.target"]["dropped"] >= 2   # biden, the astronaut
    s3 = open_table(str(out / "db"), STAGE3_TABLE).search().where("selected = true").limit(None).to_list()
    assert s3 and all(r["stage3_target"] == "obama" for r in s3)
    assert all(not 20 <= r["frame_index"] < 40 for r in s3)   # biden's part of the video gives no winner
    assert sum(m["video"]["counts"]["pose_bins"].values()) == len(s3)
    assert "persons obama in" in printed
    assert set(m["people"]["named"]) == {"obama"}   # the identity of obama's faces now bears the name
    # a kohya folder per target, its name the trigger word of every caption; a JSONL per target
    folder = out / "train" / "10_obama"
    captions = sorted(folder.glob("*.txt"))
    assert len(captions) == len(rows) and all("obama" in c.read_text() for c in captions)
    assert not (out / "train" / "10_person").exists()
    assert len((out / "people" / "obama.jsonl").read_text().splitlines()) == len(rows)


def test_the_ui_stages_reference_photos_and_passes_person_to_the_run(tmp_path):
    from raycurate import cli
    from raycurate.ui import make_session
    from raycurate.ui.runner import RunRequest, build_argv
    from raycurate.ui.session import UserError

    session = make_session(db=None, workdir=str(tmp_path / "work"), roots=[str(tmp_path)], max_upload_mb=5,
                           host="127.0.0.1", port=0)
    assert session.person("", None) == []
    with pytest.raises(UserError, match="both a name and at least one reference photo"):
        session.person("ada", [])
    with pytest.raises(UserError, match="letters, digits"):
        session.person("../ada", [str(FR / "obama.jpg")])
    ((name, refs),) = session.person("obama", [str(FR / "obama.jpg"), str(FR / "obama2.jpg")])
    assert name == "obama" and len(refs) == 2 and all(r.startswith(str(tmp_path / "work" / "uploads")) for r in refs)
    req = RunRequest(input_uri=str(tmp_path), out_dir=str(tmp_path / "o"), db=str(tmp_path / "db"), preset="youtube",
                     profile=None, persons=[(name, refs)])
    args = cli._parser().parse_args(build_argv(req)[3:])
    assert [parse_person(p) for p in args.persons] == [("obama", refs)]


def test_a_face_ambiguous_between_two_known_people_shows_no_target(settings, embedded):
    """The identities' rule: within the threshold AND at least the margin nearer the target than any other
    known person. Two targets made from photos of one man: his other photos are near both, so they show
    neither; next to a Biden target they show Obama."""
    (obama,) = load_targets({"obama": [str(FR / "obama.jpg")]}, settings)
    (twin,) = load_targets({"twin": [str(FR / "obama_partial_face.jpg")]}, settings)
    (biden,) = load_targets({"biden": [str(FR / "biden.jpg")]}, settings)
    assert obama.margin == settings.people.margin_dlib > 0 and obama.manifest()["margin"] == obama.margin
    vec, model = embedded["obama3.jpg"]
    d_obama, d_twin = float(obama.distance(np.asarray(vec))[0]), float(twin.distance(np.asarray(vec))[0])
    assert d_obama <= obama.threshold and abs(d_obama - d_twin) < obama.margin
    assert persons_in(vec, model, [obama, twin]) == []
    assert persons_in(vec, model, [obama, biden]) == ["obama"]
    # a stored identity not the target's own is a rival too: obama3's own vector as one leaves no margin
    own = np.asarray(vec, dtype=np.float32) / np.linalg.norm(vec, axis=1, keepdims=True)
    assert persons_in(vec, model, [obama], others={"obama": own}) == []
    assert persons_in(vec, model, [obama], others={"obama": np.asarray([biden.centroid])}) == ["obama"]
