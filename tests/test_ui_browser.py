"""The web UI in a real browser: Debian's Chromium driven by Playwright against ``raycurate ui`` on
127.0.0.1. It runs the bundled sample (a copy of tests/data: 40 images, 5 videos) with the YouTube preset and
checks every number it sees against the LanceDB table.

Screenshots go to ``$RAYCURATE_ARTIFACTS`` (default ``tests/artifacts/ui/``; the folder ignores itself
in git); their paths and each step's time are printed (``pytest -s`` shows them).
Without Chromium or Playwright the test is skipped, except under CI (``CI`` set), where it fails.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import DATA, stop_group

pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]   # a browser drives a run through the UI (70 s)

# the bundled sample, whole: tests/data (40 images, 6 videos and 11 other files: licences, ground truth)
SAMPLE = [DATA / "images", DATA / "videos", DATA / "licenses"]
ASTRONAUT = "images/faces/skimage_astronaut.png"
VIDEOS = 6
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
REPO = Path(__file__).resolve().parent.parent
# the gates of the default filter for the analysers of the fast-cpu profile, written out by hand so that
# the test does not trust the UI's own SQL
OK = "error IS NULL AND quality_error IS NULL AND content_error IS NULL AND face_error IS NULL AND nsfw_error IS NULL"
GATES = {"min_side": "width >= 64 AND height >= 64", "blurry": "quality_is_blurry = false",
         "faces": "face_count >= 1", "nsfw": "nsfw_score <= 0.5"}


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"browser test cannot run under CI: {why}")
    pytest.skip(why)


def _chromium() -> str:
    path = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else shutil.which("chromium")
    if not path:
        _unavailable("Debian's chromium is not installed (apt-get install chromium; scripts/setup.sh does it as root)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright)")
    try:
        import gradio  # noqa: F401
    except ImportError:
        _unavailable("gradio is not installed (pip install 'raycurate[ui]')")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _artifacts() -> Path:
    folder = Path(os.environ.get("RAYCURATE_ARTIFACTS") or REPO / "tests" / "artifacts") / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder.parent / ".gitignore"
    if not os.environ.get("RAYCURATE_ARTIFACTS") and not ignore.exists():
        ignore.write_text("*\n")
    return folder


class Steps:
    """Times each step and records the screenshots, printed at the end."""

    def __init__(self, page, folder: Path) -> None:
        self.page, self.folder, self.t0, self.last = page, folder, time.monotonic(), time.monotonic()
        self.lines: list[str] = []

    def done(self, what: str) -> None:
        now = time.monotonic()
        self.lines.append(f"{now - self.t0:6.1f} s  (+{now - self.last:5.1f})  {what}")
        self.last = now

    def shot(self, name: str) -> Path:
        path = self.folder / name
        self.page.screenshot(path=str(path), full_page=True)
        self.lines.append(f"           screenshot {path}")
        return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    chromium = _chromium()
    base = tmp_path_factory.mktemp("ui")
    root, work = base / "root", base / "work"
    sample = root / "sample"
    sample.mkdir(parents=True)
    for src in SAMPLE:
        shutil.copytree(src, sample / src.name)
    (base / "outside").mkdir()
    port = _free_port()
    log = open(base / "ui.log", "wb")
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "raycurate.cli", "ui", "--root", str(root), "--out", str(work),
                             "--port", str(port), "--max-upload-mb", "3", "--profile", "fast-cpu"], stdout=log, stderr=subprocess.STDOUT,
                            cwd=base, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if proc.poll() is not None or time.monotonic() - t0 > 120:
                raise RuntimeError("raycurate ui did not start:\n" + (base / "ui.log").read_text()[-3000:])
            time.sleep(0.5)
        print(f"\n[ui] server up in {time.monotonic() - t0:.1f} s at {url}")
        yield {"url": url, "root": root, "sample": sample, "work": work, "base": base, "chromium": chromium}
    finally:
        stop_group(proc, timeout=20)
        log.close()


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=server["chromium"], args=CHROMIUM_ARGS)
        yield b
        b.close()


def _page(browser, url: str):
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.set_default_timeout(30_000)
    page.goto(url)
    page.wait_for_selector("#start")
    return page


def _text(page, selector: str) -> str:
    return page.locator(selector).inner_text()


def _wait_text(page, selector: str, pattern: str, timeout: float = 30) -> str:
    """Wait until the element's text matches ``pattern`` (a regex); returns the text."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = _text(page, selector)
        if re.search(pattern, text):
            return text
        time.sleep(0.25)
    raise AssertionError(f"{selector} never matched {pattern!r}; last text: {text!r}")


def _table(work: Path):
    import lancedb

    return lancedb.connect(str(work / "db")).open_table("images")


def _count(work: Path, where: str) -> int:
    return _table(work).count_rows(where)


def _shown_count(page) -> int:
    return int(re.search(r"(\d+) kept rows", _text(page, "#results-count")).group(1))


def _wait_count(page, expected: int, timeout: float = 30) -> None:
    _wait_text(page, "#results-count", rf"\b{expected} kept rows", timeout)


def _set_slider(page, elem: str, value: float) -> None:
    box = page.locator(f"#{elem} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_path_traversal_is_refused(server, browser):
    """../../etc/passwd and an absolute path outside the roots are refused in the page and start no run;
    gradio's file route refuses them too; an upload over the size limit is refused."""
    page = _page(browser, server["url"])
    path_box = page.locator("#input-path textarea")
    for bad in ("../../etc/passwd", "/etc", str(server["base"] / "outside"), "../../../../../../etc/passwd"):
        path_box.fill(bad)
        page.click("#start")
        status = _wait_text(page, "#run-status", "Refused.*" + re.escape(bad) + " is outside the roots")
        assert "Running" not in status and "Starting" not in status
    runs = server["work"] / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "a refused path started a run"
    _artifacts()
    page.screenshot(path=str(_artifacts() / "00-path-refused.png"), full_page=True)
    print(f"\n[ui] screenshot {_artifacts() / '00-path-refused.png'}")
    for probe in ("file=/etc/passwd", "file=../../../../etc/passwd", "file=%2e%2e/%2e%2e/etc/passwd",
                  f"file={server['sample'] / 'images' / 'face_recognition' / 'biden.jpg'}"):   # not even the roots: only thumbnails and exports
        resp = page.request.get(server["url"] + "gradio_api/" + probe)
        assert resp.status in (403, 404), (probe, resp.status)
        assert "root:" not in resp.text()
    # the upload size limit (--max-upload-mb 3)
    big = {"name": "big.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8\xff" + b"0" * (4 << 20)}
    assert page.request.post(server["url"] + "gradio_api/upload", multipart={"files": big}).status == 413
    small = {"name": "small.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8\xff" + b"0" * 1000}
    assert page.request.post(server["url"] + "gradio_api/upload", multipart={"files": small}).status == 200
    page.close()


def test_browser_end_to_end(server, browser):
    page = _page(browser, server["url"])
    steps = Steps(page, _artifacts())
    work, sample = server["work"], server["sample"]
    try:
        # first look: the how-to text, no table yet, the sample prefilled
        assert "How to start" in _text(page, "#intro")
        assert "No curated table yet" in _text(page, "#db-summary")
        assert page.locator("#input-path textarea").input_value() == str(sample)
        steps.shot("01-first-open.png")
        steps.done("page opened: how-to, sample prefilled")

        # the YouTube preset fills the video parameters
        page.click("#preset label:has-text('YouTube')")
        page.wait_for_function("document.querySelector('#video-sample_rate input[type=number]').value == '5'")
        assert page.locator("#video-max_frames input[type=number]").input_value() == "60"
        assert page.locator("#video-min_separation input[type=number]").input_value() == "30"
        assert page.locator("#video-scene_detection input[type=checkbox]").is_checked()
        steps.done("YouTube preset chosen: sample rate 5, max frames 60, scene detection on")
        page.click("#analysers button:has-text('Analysers and thresholds')")
        page.locator("#analyser-face input[type=checkbox]").wait_for()
        assert page.locator("#analyser-face input[type=checkbox]").is_checked()
        assert not page.locator("#analyser-clip input[type=checkbox]").is_checked()   # fast-cpu: no CLIP
        steps.shot("01b-analysers-and-thresholds.png")

        # run the sample; watch the live progress
        page.click("#start")
        _wait_text(page, "#run-status", r"Starting|Running", 30)
        progress_shot = False
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            status = _text(page, "#run-status")
            if re.search(r"Finished|Failed|Cancelled", status):
                break
            if not progress_shot and "video stage 1" in _text(page, "#progress-table"):
                steps.shot("02-run-progress.png")
                progress_shot = True
            time.sleep(0.5)
        assert "Finished" in status, status + "\n" + page.locator("#run-log textarea").input_value()[-3000:]
        steps.shot("03-run-finished.png")
        steps.done("run finished")
        run_dirs = list((work / "runs").iterdir())
        assert len(run_dirs) == 1
        manifest = json.loads((run_dirs[0] / "manifest.json").read_text())
        run_id = manifest["run_id"]
        assert manifest["config"]["video"]["sample_rate"] == 5 and manifest["config"]["video"]["max_frames"] == 60
        assert manifest["input"]["videos"] == VIDEOS and manifest["counts"]["video_frames"] > 0
        table = page.locator("#progress-table").inner_text()
        assert "video stage 1" in table and "duplicates removed" in table

        # Results: the gallery count is the table's kept count
        run = f"run_id = '{run_id}'"
        kept_sql = f"{run} AND {OK} AND {' AND '.join(GATES.values())} AND duplicate_of IS NULL"
        kept = _count(work, kept_sql)
        assert kept == manifest["counts"]["kept"] and kept > 0
        page.click("button[role=tab]:has-text('Results')")
        _wait_count(page, kept)
        assert page.locator("#results-gallery .thumbnail-item").count() == kept
        steps.shot("04-results.png")
        steps.done(f"results: gallery shows {kept} kept rows = LanceDB count")

        # detail view: attributes, drawn face boxes, lineage
        page.locator("#results-gallery .thumbnail-item").first.click()
        _wait_text(page, "#detail-lineage", r"id [0-9a-f]{16}")
        lineage = _text(page, "#detail-lineage")
        assert "photo:" in lineage or "of video" in lineage
        page.wait_for_selector("#detail-image img")
        detail = _text(page, "#detail-json")
        assert "face_boxes" in detail and "quality_sharpness" in detail
        content_id = re.search(r"id ([0-9a-f]{16})", lineage).group(1)
        steps.shot("05-detail.png")
        steps.done("detail view: attributes, face boxes drawn, lineage")

        # manual reject: stored in the table, the count drops by one; clearing it brings it back
        page.click("#label-reject")
        _wait_count(page, kept - 1)
        labels = _table(work).search().where(f"starts_with(id, '{content_id}')").select(["manual_label"]).to_list()
        assert labels and all(r["manual_label"] == "reject" for r in labels)
        page.click("#label-clear")
        _wait_count(page, kept)
        assert _count(work, f"starts_with(id, '{content_id}') AND manual_label IS NOT NULL") == 0
        steps.done("manual reject stored in the table (count -1), then cleared")

        # similar-image search from the detail view: the picture itself comes first at distance 0
        page.click("#find-similar")
        _wait_text(page, "#search-status", "nearest to row " + content_id[:12], 60)
        assert page.locator("#search-id textarea").input_value().startswith(content_id)
        first = page.locator("#search-gallery .thumbnail-item").first
        first.wait_for()
        n_hits = page.locator("#search-gallery .thumbnail-item").count()
        assert n_hits >= 2
        steps.shot("06-search-similar.png")
        steps.done(f"similar-frame search: {n_hits} hits")
        # and by an uploaded image
        page.locator("#search-image input[type=file]").set_input_files(str(sample / ASTRONAUT))
        page.wait_for_function("document.querySelector('#search-id textarea').value == ''")
        page.click("#search-go")
        _wait_text(page, "#search-status", r"nearest to the uploaded skimage_astronaut\.png", 60)
        page.wait_for_function("document.querySelector('#search-gallery').innerText.includes('#1 d=0.00')")
        caption = page.locator("#search-gallery").inner_text()
        assert re.search(r"#1 d=0\.00\d · skimage_astronaut", caption), caption
        steps.done("upload search: the uploaded image's own row first at distance 0")
        # pick a hit to search from it
        page.locator("#search-gallery .thumbnail-item").nth(1).click()
        _wait_text(page, "#search-status", r"nearest to row [0-9a-f]{12}", 60)
        picked = page.locator("#search-id textarea").input_value()
        assert re.fullmatch(r"[0-9a-f]{64}", picked) and not picked.startswith(content_id)
        steps.done("picked a hit: searched again from it")

        # a filter re-queries LanceDB: minimum faces 1 -> 0 lets pictures without faces in
        page.click("button[role=tab]:has-text('Results')")
        _set_slider(page, "f-min-faces", 0)
        loose = _count(work, f"{run} AND {OK} AND {GATES['min_side']} AND {GATES['blurry']} AND {GATES['nsfw']} "
                             "AND duplicate_of IS NULL")
        assert loose != kept
        _wait_count(page, loose)
        steps.shot("07-filter-min-faces-0.png")
        steps.done(f"filter moved (minimum faces 0): {kept} -> {loose} rows = LanceDB count")
        # video frames only: a frame's detail names its source video, frame index and timestamp
        frames = _count(work, f"{run} AND {OK} AND {GATES['min_side']} AND {GATES['blurry']} AND {GATES['nsfw']} "
                              "AND duplicate_of IS NULL AND media_type = 'video_frame'")
        assert frames > 0, "no video frame kept with minimum faces 0: the lineage check needs one"
        page.locator("#f-media label:has-text('photos')").click()
        _wait_count(page, frames)
        page.locator("#results-gallery .thumbnail-item").first.click()
        lineage = _wait_text(page, "#detail-lineage", r"of video .*\.(avi|mp4)")
        assert re.search(r"frame \d+ at \d+\.\d{3} s", lineage), lineage
        steps.shot("07b-video-frame-lineage.png")
        steps.done(f"video frames only: {frames} rows; detail shows the lineage ({lineage.splitlines()[0][:90]})")
        page.locator("#f-media label:has-text('photos')").click()
        _wait_count(page, loose)
        _set_slider(page, "f-min-faces", 1)
        _wait_count(page, kept)

        # export: a zip with one metadata line per kept row
        page.click("button[role=tab]:has-text('Export')")
        page.click("#export-go")
        _wait_text(page, "#export-status", r"rows exported", 60)
        zips = list((work / "exports").glob("*.zip"))
        assert len(zips) == 1
        import zipfile

        with zipfile.ZipFile(zips[0]) as z:
            names = z.namelist()
            meta = z.read("metadata.jsonl").decode().splitlines()
        assert len(meta) == kept and any(n.startswith("train/10_person/") for n in names)
        page.locator("#export-file a").first.wait_for()
        steps.shot("08-export.png")
        steps.done(f"export zip: {len(names)} files, {len(meta)} metadata rows")

        # plots: the funnel ends at the kept count
        page.click("button[role=tab]:has-text('Plots')")
        _wait_text(page, "#funnel-table", r"duplicates removed", 30)
        funnel = _text(page, "#funnel-table")
        m = re.search(r"duplicates removed\s+(\d+)\s+(\d+)", funnel)
        assert m and int(m.group(2)) == kept, funnel
        page.wait_for_selector("#funnel-plot canvas, #funnel-plot svg")
        steps.shot("09-plots.png")
        steps.done("plots: funnel and histograms")
    finally:
        print("\n[ui] browser test steps:\n" + "\n".join(steps.lines))
        page.close()
