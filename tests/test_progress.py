"""The progress model, its line cadence and its renderer (no Ray), with a fake clock."""
from __future__ import annotations

import io
import json

import pytest

from raycurate.progress import LineCadence, Progress, ProgressRenderer, Step, StepCounts, clock_text


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TtyBuffer(io.StringIO):
    def isatty(self) -> bool:
        return True


def image_progress(clock: FakeClock, total: int = 100) -> Progress:
    return Progress("images", [Step("decoded", "decoded", total), Step("face", "face", total),
                               Step("stored", "stored", total)], clock=clock)


def test_counts_add_up_per_step_and_snapshot_is_a_copy():
    counts = StepCounts()
    counts.add("decoded", 16)
    counts.add("decoded", 4)
    counts.add("face", 8)
    snap = counts.snapshot()
    snap["face"] = 0
    assert counts.snapshot() == {"decoded": 20, "face": 8}


def test_rate_counts_from_a_steps_first_items_not_from_the_start():
    clock = FakeClock()
    p = image_progress(clock)
    clock.now += 30            # actors starting: nothing yet
    p.update({"decoded": 10})
    assert p.rate("decoded") is None      # one reading: no rate yet
    clock.now += 5
    p.update({"decoded": 30})
    assert p.rate("decoded") == pytest.approx(4.0)   # 20 items in 5 s, the 30 s of start-up left out
    assert p.eta("decoded") == pytest.approx(70 / 4.0)
    assert p.rate("face") is None and p.eta("face") is None


def test_eta_of_a_step_done_is_zero_and_unknown_keys_are_ignored():
    clock = FakeClock()
    p = image_progress(clock, total=10)
    p.update({"decoded": 10, "somebody_else": 3})
    assert p.eta("decoded") == 0.0
    assert "somebody_else" not in p.counts


def test_pipeline_eta_takes_a_batched_step_at_its_upstream_rate():
    clock = FakeClock()
    p = image_progress(clock)
    p.update({"decoded": 10, "face": 4})
    clock.now += 10
    p.update({"decoded": 60, "face": 24})   # decoded 5/s, face 2/s; stored waits for its first batch
    # face: 76 left at 2/s = 38 s; stored: 100 left at face's 2/s = 50 s; decoded: 40 at 5/s = 8 s
    assert p.eta_total() == pytest.approx(50.0)
    assert "ETA 0:50" in p.line()


def test_line_shows_counts_totals_rates_and_elapsed_time():
    clock = FakeClock()
    p = image_progress(clock, total=58)
    p.update({"decoded": 16})
    clock.now += 4
    p.update({"decoded": 24, "face": 8})
    line = p.line()
    assert line.startswith("[raycurate] images 0:04: decoded 24/58 (2.0/s), face 8/58, stored 0/58")
    doc = json.loads(p.to_json())
    assert [s["count"] for s in doc["steps"]] == [24, 8, 0] and doc["steps"][0]["rate"] == 2.0


def test_clock_text():
    assert clock_text(0) == "0:00"
    assert clock_text(75) == "1:15"
    assert clock_text(3725) == "1:02:05"


def test_line_cadence_is_due_every_interval():
    clock = FakeClock()
    cadence = LineCadence(10.0, clock)
    due = []
    for _ in range(25):
        clock.now += 1
        due.append(cadence.due())
    assert [i + 1 for i, d in enumerate(due) if d] == [10, 20]


def test_plain_renderer_writes_a_line_once_items_arrive_then_every_10_s_and_at_the_end():
    clock = FakeClock()
    p = image_progress(clock)
    out = io.StringIO()
    r = ProgressRenderer(p, out, tty=False, interval=10.0)
    for second in range(1, 36):   # polled every second; the first items come at 3 s
        clock.now += 1
        if second >= 3:
            p.update({"decoded": 2 * second, "face": second, "stored": 0})
        r.refresh()
    r.close()
    lines = out.getvalue().splitlines()
    assert [line.split()[2] for line in lines] == ["0:03:", "0:13:", "0:23:", "0:33:", "0:35:"]
    assert lines[0].startswith("[raycurate] images 0:03: decoded 6/100")
    assert lines[-1].endswith("(done)") and "decoded 70/100 (2.0/s)" in lines[-1]
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_plain_renderer_stays_silent_before_anything_moves():
    clock = FakeClock()
    out = io.StringIO()
    r = ProgressRenderer(image_progress(clock), out, tty=False, interval=10.0)
    for _ in range(9):
        clock.now += 1
        r.refresh()
    assert out.getvalue() == ""


def test_terminal_renderer_draws_one_bar_per_step_with_rate_and_eta():
    clock = FakeClock()
    p = image_progress(clock)
    out = TtyBuffer()
    r = ProgressRenderer(p, out)
    assert r.tty
    p.update({"decoded": 10})
    clock.now += 5
    p.update({"decoded": 30, "face": 10})
    r.refresh()
    r.close()
    text = out.getvalue()
    assert "\r" in text                       # redrawn in place
    assert "images decoded" in text and "30/100" in text and "4.0/s" in text
    assert "ETA 0:18" in text                 # 70 left at 4/s: 17.5 s
    assert "images stored" in text and "0/100" in text
    assert "| 0/100, ETA 0:25" in text             # stored has no rate of its own: the pipeline's ETA (100 at 4/s)
    assert "[raycurate]" not in text          # no plain lines on a terminal


def test_no_pipeline_eta_when_the_last_steps_total_is_unknown():
    clock = FakeClock()
    p = Progress("videos", [Step("segments", "segments read", 6), Step("frames", "frames sampled"),
                            Step("winners", "winners")], clock=clock)
    p.update({"segments": 1, "frames": 10})
    clock.now += 5
    p.update({"segments": 6, "frames": 60})
    assert p.eta("segments") == 0.0 and p.eta_total() is None and "ETA" not in p.line()


def test_the_ui_reads_the_live_counts_the_driver_writes(tmp_path):
    from raycurate.ui.progress import live_text

    assert live_text(str(tmp_path)) == ""          # nothing started yet
    clock = FakeClock()
    p = image_progress(clock, total=58)
    p.update({"decoded": 16})
    clock.now += 4
    p.update({"decoded": 24, "face": 8})
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "progress-images.json").write_text(p.to_json())
    assert live_text(str(tmp_path)) == p.line().removeprefix("[raycurate] ")
    assert live_text(str(tmp_path)).startswith("images 0:04: decoded 24/58 (2.0/s), face 8/58")


def test_a_count_is_held_to_its_total():
    p = image_progress(FakeClock(), total=10)
    p.update({"decoded": 12})        # a batch run again after its worker died
    assert p.counts["decoded"] == 10 and p.eta("decoded") == 0.0
