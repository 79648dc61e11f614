"""The static HTML report (raycurate/report): its SVG plots alone, then the report of one real run (a few
photos, a corrupt file and the face clip, fast CPU settings) read back against the run's tables, the page's
sections, the ``raycurate report`` command, and the page rendered in Debian's Chromium."""
from __future__ import annotations

import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from collections import Counter

import pytest

from raycurate.report import svg

from .conftest import DATA, IMAGES

# -- the plots, alone -------------------------------------------------------------------------------------


def _parse(text: str) -> ET.Element:
    root = ET.fromstring(text)   # valid XML, or this raises
    assert root.tag == "svg"
    return root


def _by_class(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if name in (e.get("class") or "").split()]


def test_histogram_bars_and_threshold_line_position():
    values = [0.0, 1.0, 2.0, 2.5, 9.0, 10.0]
    root = _parse(svg.histogram(values, [svg.Line(5.0, "filter.x <= 5")], title="x", width=300, height=160))
    bars = _by_class(root, "bar")
    assert len(bars) == 20
    assert sum(int(b.find("title").text) for b in bars) == len(values)
    (line,) = _by_class(root, "threshold")
    # plot area: 34 px from the left, 8 from the right; 5 is the middle of 0..10
    assert float(line.get("x1")) == pytest.approx(34 + (300 - 42) / 2, abs=0.1)
    assert line.find("title").text == "filter.x <= 5"


def test_histogram_range_grows_to_show_a_threshold_outside_the_values():
    root = _parse(svg.histogram([0.1, 0.2, 0.3], [svg.Line(0.9, "max")], title="nsfw", width=300))
    (line,) = _by_class(root, "threshold")
    assert float(line.get("x1")) == pytest.approx(300 - 8, abs=0.1)   # the range's right end


def test_integer_histogram_has_one_bar_per_value_and_its_line_between_bars():
    root = _parse(svg.histogram([0, 0, 1, 3], [svg.Line(1, "min_faces", "min"), svg.Line(2, "max_faces", "max")],
                                title="face_count", integer=True, width=300))
    bars = _by_class(root, "bar")
    assert [int(b.find("title").text) for b in bars] == [2, 1, 0, 1]   # 0, 1, 2, 3
    bar_w = (300 - 42) / 4
    lines = {t.find("title").text: float(t.get("x1")) for t in _by_class(root, "threshold")}
    assert lines["min_faces"] == pytest.approx(34 + bar_w, abs=0.1)       # between the 0 and the 1 bars
    assert lines["max_faces"] == pytest.approx(34 + 3 * bar_w, abs=0.1)   # between the 2 and the 3 bars


def test_log_histogram_places_the_threshold_on_the_log_axis():
    b = svg.bin_values([0.0, 9.0, 99.0, 9999.0], [99.0], log=True)
    assert svg.wants_log([0.0, 9.0, 99.0, 9999.0]) and not svg.wants_log([1.0, 20.0, 150.0])
    assert b.lo == pytest.approx(0.0) and b.hi == pytest.approx(4.0)
    assert b.x(99.0, 0, 100) == pytest.approx(50.0)   # log10(1 + 99) = 2 of 0..4
    assert sum(b.counts) == 4
    root = _parse(svg.histogram([0.0, 9.0, 99.0, 9999.0], [svg.Line(99.0, "blur")], title="sharpness"))
    assert "(log scale)" in "".join(root.itertext())


def test_timeline_marks_cuts_selected_frames_and_points():
    series = [svg.Series("stage1", [(0, 0.2), (10, 0.5), (20, 0.9)], 0.15), svg.Series("stage3", [(20, 0.8)], 0.45)]
    root = _parse(svg.timeline(series, length=40, cuts=[15], selected=[20], title="clip.mp4", width=900))
    assert len(_by_class(root, "point")) == 4
    (cut,) = _by_class(root, "cut")
    assert float(cut.get("x1")) == pytest.approx(34 + 15 / 40 * (900 - 34 - 110), abs=0.1)
    assert len(_by_class(root, "selected")) == 1
    assert sorted(float(t.get("data-value")) for t in _by_class(root, "threshold")) == [0.15, 0.45]


def test_funnel_bars_split_kept_dropped_errors():
    steps = [svg.Step("decoded", 10, 8, 0, 2), svg.Step("gate", 8, 5, 3), svg.Step("none", 0, 0)]
    root = _parse(svg.funnel(steps, title="f", width=900))
    widths = {(" ".join(e.get("class").split()[1:]), e.find("title").text.split(":")[0]): float(e.get("width"))
              for e in _by_class(root, "bar")}
    assert set(widths) == {("kept", "decoded"), ("errors", "decoded"), ("kept", "gate"), ("dropped", "gate")}
    assert widths[("kept", "decoded")] == pytest.approx(4 * widths[("errors", "decoded")])
    assert widths[("kept", "gate")] + widths[("dropped", "gate")] == pytest.approx(widths[("kept", "decoded")])


# -- one real run -----------------------------------------------------------------------------------------

CLIP = DATA / "videos" / "faces_two_shots.mp4"


@pytest.fixture(scope="module")
def report_run(tmp_path_factory, ray_session):
    from raycurate.cli import main

    inp = tmp_path_factory.mktemp("report_in")
    for src in [*sorted((IMAGES / "faces").iterdir()), *sorted((IMAGES / "negatives").iterdir()), CLIP]:
        shutil.copy(src, inp / src.name)
    (inp / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    out = tmp_path_factory.mktemp("report_out")
    rc = main(["run", str(inp), "--out", str(out), "--profile", "fast-cpu", "--preset", "youtube",
               "--set", "video.max_frames=4", "--set", "analyzers.emotion.enabled=true",   # FER and BlazePose
               "--set", "analyzers.pose.enabled=true"])
    manifest = json.loads((out / "manifest.json").read_text())
    return {"rc": rc, "out": out, "db": str(out / "db"), "manifest": manifest, "run": manifest["run_id"],
            "html": (out / "report.html").read_text(encoding="utf-8")}


@pytest.fixture(scope="module")
def data(report_run):
    from raycurate.config import recorded_settings
    from raycurate.report.data import read_report

    m = report_run["manifest"]
    return read_report(report_run["db"], report_run["run"], m, settings=recorded_settings(m))


def _table(run, name):
    from raycurate.store import open_table

    return open_table(run["db"], name)


def test_the_run_writes_its_report_and_times_it(report_run):
    m = report_run["manifest"]
    assert report_run["rc"] == 0
    assert m["report"]["file"] == str(report_run["out"] / "report.html")
    assert m["report"]["bytes"] == len(report_run["html"].encode("utf-8"))
    assert 0 < m["timings_s"]["report"] == m["report"]["seconds"]


def test_video_funnel_matches_the_tables(report_run, data):
    run = f"run_id = '{report_run['run']}'"
    steps = {s.label: s for s in data.video_funnel}
    video = report_run["manifest"]["video"]["counts"]
    assert steps["motion filter"].n_in == video["candidates"]
    assert steps["video stage 1"].n_in == _table(report_run, "frames").count_rows(run) > 0
    selected = _table(report_run, "stage3").count_rows(f"{run} AND selected = true")
    assert steps["video winners (separation, max frames)"].kept == selected == video["stages"]["stage3"]["selected"] > 0


def test_the_funnel_is_counted_once_by_the_run_and_read_by_the_report_and_the_ui(report_run, data):
    from raycurate.config import recorded_settings
    from raycurate.report.data import read_report
    from raycurate.ui.progress import funnel_rows

    m = report_run["manifest"]
    run = m["funnel"]["run"]
    assert [s["path"] for s in run] == sorted((s["path"] for s in run), key=("input", "video", "images").index)
    rows = [(s["stage"], s["in"], s["kept"], s["dropped"], s["errors"]) for s in run]
    shown = [(s.label, s.n_in, s.kept, s.dropped, s.errors) for s in data.video_funnel + data.image_funnel]
    # the report draws the video path's steps, then the listing with the image path's
    assert shown == rows[1:1 + len(data.video_funnel)] + rows[:1] + rows[1 + len(data.video_funnel):]
    assert rows[0][0] == "input files" and len(data.video_funnel) > 3
    assert funnel_rows(m) == [list(row) for row in rows]   # the web UI's table: the same steps, in run order
    # the page OUT holds shows the catalogue's funnel, as the manifest holds it, down to the export
    page = read_report(report_run["db"], report_run["run"], m, catalogue=True)
    assert [s.label for s in page.image_funnel][-1] == "exported" == m["funnel"]["catalogue"][-1]["stage"]
    # a manifest without its funnel (written before manifests held one): the same counts, from the tables
    older = {k: v for k, v in m.items() if k != "funnel"}
    again = read_report(report_run["db"], report_run["run"], older, settings=recorded_settings(m))
    assert [(s.label, s.n_in, s.kept, s.dropped, s.errors) for s in again.video_funnel + again.image_funnel] \
        == [row for row in shown if row[0] != "input files"]


def test_image_funnel_takes_each_gate_in_turn(report_run, data):
    m = report_run["manifest"]
    steps = [s for s in data.image_funnel]
    assert steps[0].label == "input files" and steps[0].n_in == m["input"]["files"]
    gates = [s for s in steps if s.label.startswith("gate ")]
    assert [s.label for s in gates] == [f"gate {g['name']}" for g in m["gates"]]
    for a, b in zip(gates, gates[1:]):
        assert b.n_in == a.kept and a.n_in == a.kept + a.dropped
    decoded = next(s for s in steps if s.label.startswith("images decoded"))
    assert decoded.n_in == m["counts"]["rows_written"] and decoded.errors == m["counts"]["decode_errors"] == 1
    assert steps[-1].label == "duplicates removed" and steps[-1].kept == m["counts"]["kept"] > 0   # one run: all
    catalogue = m["funnel"]["catalogue"]
    assert catalogue[-1]["stage"] == "exported" and catalogue[-1]["kept"] == m["counts"]["exported"]
    assert catalogue[-2]["kept"] == m["counts"]["kept"]


def test_every_stored_score_has_a_histogram_with_its_thresholds(report_run, data):
    run = f"run_id = '{report_run['run']}'"
    by = {(h.table, h.column): h for h in data.histograms}
    for table, column in (("images", "nsfw_score"), ("images", "quality_sharpness"), ("frames", "stage1_score"),
                          ("frames", "motion"), ("stage3", "stage3_score")):
        stored = _table(report_run, table).count_rows(f"{run} AND {column} IS NOT NULL")
        assert len(by[(table, column)].values) == stored
    cfg = report_run["manifest"]["config"]
    assert [ln.value for ln in by[("images", "nsfw_score")].lines] == [cfg["filter"]["max_nsfw_score"]]
    assert [ln.value for ln in by[("images", "face_count")].lines] == [cfg["filter"]["min_faces"]]
    blur = cfg["analyzers"]["quality"]["blur_threshold"]
    assert [ln.value for ln in by[("images", "quality_sharpness")].lines] == [blur]
    assert [ln.value for ln in by[("frames", "stage1_score")].lines] == [cfg["cascade"]["stage1"]["threshold"]]
    assert by[("frames", "quality_sharpness")].lines == []   # the blur gate reads the images table only
    assert not any(c.endswith("_ms") or c == "file_size" for _, c in by)


def test_timeline_of_the_face_clip(report_run, data):
    (t,) = [t for t in data.timelines if t.uri.endswith("faces_two_shots.mp4")]
    truth = json.loads(CLIP.with_suffix(".json").read_text())
    assert t.cuts == truth["cuts"] and t.length == truth["frames"]
    run = f"run_id = '{report_run['run']}'"
    stage3 = _table(report_run, "stage3").search().where(f"{run} AND selected = true").select(["frame_index"]) \
        .limit(None).to_list()
    assert t.selected == sorted(r["frame_index"] for r in stage3)
    s1 = next(s for s in t.series if s.name == "stage1")
    assert len(s1.points) == _table(report_run, "frames").count_rows(f"{run} AND video_uri = '{t.uri}'")


def test_kept_sheet_and_dropped_samples_show_their_values(report_run, data):
    m = report_run["manifest"]
    assert data.kept_total == m["counts"]["kept"] == len(data.kept)
    assert all(c.thumb and c.thumb.startswith("data:image/jpeg;base64,") for c in data.kept)
    assert all("face_count" in c.values and "nsfw_score" in c.values for c in data.kept)
    assert any("stage3_score" in c.values and "from" in c.values for c in data.kept)   # a frame of the clip
    gates = {g.name: g for g in data.rejected}
    assert gates["min_side"].dropped == 1
    (tiny,) = gates["min_side"].samples
    assert tiny.title == "skimage_no_time_for_that_tiny.gif" and int(tiny.values["width"]) < 64
    assert gates["face.min_faces"].samples and all(c.values["face_count"] == "0"
                                                   for c in gates["face.min_faces"].samples)
    assert gates["face.min_faces"].dropped == m["counts"]["gates"]["face.min_faces"]["dropped"]


def test_identities_models_and_errors(report_run, data):
    run = f"run_id = '{report_run['run']}'"
    faces = _table(report_run, "faces").count_rows(f"{run} AND identity_id IS NOT NULL")
    assert data.identities and sum(int(c.values["faces in this run"]) for c in data.identities) == faces
    assert any(c.thumb for c in data.identities)
    models = {r["analyser"]: r for r in data.models}
    assert models["face"]["stored"] == report_run["manifest"]["models"]["face"]["model"]
    skipped = report_run["manifest"]["skipped_analyzers"]
    assert {n for n, r in models.items() if r["model (manifest)"] == "skipped"} == set(skipped)
    assert "clip" not in models   # off in the fast-cpu profile: no column of it stored
    broken = [(e["table"], e["column"]) for e in data.errors if e["where"].endswith("broken.jpg")]
    assert broken == [("images", "error")]
    assert data.errors_total >= 1


def test_expressions_and_bodies_are_counted_from_the_table(report_run, data):
    """The people section's counts are the stored columns' (every face's expression; the largest person's
    body shot and orientation): the 4 portraits of faces/ each show one face and one body facing the camera."""
    from raycurate.report.people import body_shot

    rows = _table(report_run, "images").search().where(f"run_id = '{report_run['run']}'").limit(None).to_list()
    tallies = {t.title.split(" (")[0]: dict(t.counts) for t in data.people}
    faces = [label for r in rows for label in r["emotion_faces"] or []]
    assert sum(tallies["Expression of every face"].values()) == len(faces) >= 4
    assert tallies["Expression of every face"]["happy"] >= 1          # the astronaut smiles
    bodies = [r for r in rows if r["pose_count"] is not None]
    assert tallies["Body shot of the largest person"] == dict(Counter(map(body_shot, bodies)))
    assert tallies["Body orientation of the largest person"]["front"] >= 4
    assert '<section id="people">' in report_run["html"] and "Expression of every face" in report_run["html"]


def test_page_has_every_section_and_nothing_from_the_network(report_run):
    from raycurate.report.html import SECTIONS

    page = report_run["html"]
    for key, _ in SECTIONS:
        assert f'<section id="{key}">' in page
    assert not re.search(r"https?://", page)
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert refs and all(r.startswith(("data:", "#")) for r in refs)
    for block in re.findall(r"<svg.*?</svg>", page, flags=re.S):
        _parse(block)


def test_report_without_its_manifest_says_what_it_lacks(report_run):
    from raycurate.report.data import read_report

    d = read_report(report_run["db"], report_run["run"], None)
    assert d.notes and not d.kept and not d.rejected
    assert d.video_funnel and d.histograms and all(not h.lines for h in d.histograms)


def test_report_command(report_run, tmp_path, capsys):
    from raycurate.cli import main

    target = tmp_path / "r.html"
    assert main(["report", str(report_run["out"]), "--out", str(target), "--run", report_run["run"]]) == 0
    assert report_run["run"] in capsys.readouterr().out
    assert '<section id="identities">' in target.read_text(encoding="utf-8")
    assert main(["report", report_run["db"], "--run", "no-such-run"]) == 2
    assert "no run no-such-run" in capsys.readouterr().err


# -- in a browser ----------------------------------------------------------------------------------------

def test_report_renders_in_chromium(report_run):
    from .test_ui_browser import CHROMIUM_ARGS, _artifacts, _unavailable

    if not shutil.which("chromium") and not os.path.exists("/usr/bin/chromium"):
        _unavailable("Debian's chromium is not installed (apt-get install chromium; scripts/setup.sh does it as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright)")
    import io

    from PIL import Image

    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                    args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda r: requests.append(r.url))
        page.goto((report_run["out"] / "report.html").as_uri())
        boxes = page.evaluate("[...document.querySelectorAll('svg')].map(s => {const r = s.getBoundingClientRect();"
                              " return [r.width, r.height]})")
        images = page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth])")
        height = page.evaluate("document.body.scrollHeight")
        shot = page.screenshot(full_page=True)
        (_artifacts() / "report.png").write_bytes(shot)
        browser.close()
    assert boxes and all(w > 100 and h > 50 for w, h in boxes)
    assert images and all(done and width > 0 for done, width in images)
    assert height > 3000
    assert all(u.startswith(("file:", "data:")) for u in requests), [u for u in requests if "://" in u][:5]
    colours = Image.open(io.BytesIO(shot)).convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 100   # not one colour: plots and pictures drawn


def test_an_empty_run_has_a_report_too(tmp_path):
    from raycurate.cli import main
    from raycurate.report.html import SECTIONS

    (tmp_path / "in").mkdir()
    assert main(["run", str(tmp_path / "in"), "--out", str(tmp_path / "out")]) == 0
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert all(f'<section id="{key}">' in page for key, _ in SECTIONS) and "nothing stored" in page
    assert not (tmp_path / "out" / "db").exists()   # reading the report made no DB
