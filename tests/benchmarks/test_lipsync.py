"""The lip-sync benchmark: its timing of flashes and clicks, its matching, and a short real run.

The figures are the benchmark's to publish; these tests check that it measures, not what it measures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import avprobe, lipsync
from benchmarks.flash import click_samples
from benchmarks.run import run_order

RATE = avprobe.RATE


def test_a_flash_begins_between_the_last_dark_grab_and_the_first_light_one() -> None:
    times = [0.0, 0.004, 0.008, 0.012, 0.016, 0.5, 0.9, 0.904, 1.5, 1.504]
    levels = [0, 0, 255, 255, 0, 0, 0, 255, 0, 255]
    # The flicker at 1.5 s is a new flash; a second rise 0.3 s after the first would not be.
    assert avprobe.flash_onsets(times, levels) == pytest.approx([0.006, 0.902, 1.502])
    assert avprobe.flash_onsets([0.0, 0.1, 0.2, 0.3], [0, 255, 0, 255]) == pytest.approx([0.05])


def test_a_click_begins_at_its_first_loud_sample() -> None:
    samples = np.zeros(RATE * 2, dtype=np.int16)
    click = (click_samples() * 32767).astype(np.int16)
    for at in (0.25, 1.25):
        samples[int(at * RATE) : int(at * RATE) + click.size] = click
    onsets = avprobe.click_onsets(samples, start=10.0)
    assert len(onsets) == 2
    assert onsets == pytest.approx([10.25, 11.25], abs=0.001)  # the 2 ms fade-in is under a millisecond


def test_the_recording_starts_at_the_tightest_bound_its_fragments_allow() -> None:
    # Fragments of 240 samples (5 ms) arrive at 5 ms steps after 3.0 s, one of them 2 ms late.
    arrivals = [(3.005 + 0.005 * n + (0.002 if n == 3 else 0.0), 240 * (n + 1)) for n in range(10)]
    assert avprobe.recording_start(arrivals) == pytest.approx(3.0)


def test_each_event_pairs_the_room_flash_and_click_with_the_source_ones_before_them() -> None:
    source = lipsync.source_events([1.0, 2.3, 3.5, 5.0], [1.004, 2.302, 3.9, 5.003])
    assert source == [(1.0, 1.004), (2.3, 2.302), (5.0, 5.003)]  # 3.5 heard 0.4 s off: no pair
    events = lipsync.matched_events(source, room_flashes=[1.05, 2.36, 5.2], room_clicks=[1.114, 2.402])
    assert [round(e["video_latency"], 3) for e in events] == [0.05, 0.06]
    assert [round(e["audio_latency"], 3) for e in events] == [0.11, 0.1]
    assert [round(e["offset"], 3) for e in events] == [0.06, 0.04]  # the sound is late
    summary = lipsync.summarize(events)
    assert summary["events"] == 2
    assert summary["within_bound"] == 0.5
    assert lipsync.summarize([]) == {"events": 0}


def test_a_latency_longer_than_the_gap_between_flashes_is_matched_by_the_runs_typical_one() -> None:
    flashes = [1.0, 2.2, 3.7, 4.8, 6.3]  # 1.1-1.5 s apart, as the pattern's random intervals
    source = [(f, f + 0.003) for f in flashes]
    room_flashes = [f + 1.7 for f in flashes[:4]]  # 1.7 s late: each is nearer the flash after its own
    room_clicks = [f + 1.75 for f in flashes]
    events = lipsync.matched_events(source, room_flashes, room_clicks)
    assert len(events) == 4
    assert all(e["video_latency"] == pytest.approx(1.7) for e in events)
    assert all(e["offset"] == pytest.approx(0.047) for e in events)


def test_each_side_goes_first_as_often_as_the_runs_allow() -> None:
    orders = [run_order(i, ["a", "b", "c"]) for i in range(3)]
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]


@pytest.mark.x11
def test_a_short_run_times_coalesces_sound_against_its_picture(tmp_path: Path) -> None:
    """A real share with sound: the room sees the flashes and hears the clicks, and each is matched."""
    report_path = tmp_path / "lipsync.json"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks", "lipsync", "--sides", "coalesce", "--runs", "1",
         "--seconds", "5", "--warmup", "2", "--size", "640x360", "--json", str(report_path)],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(report_path.read_text())
    side = report["sides"]["coalesce"]
    assert side["failed"] == 0
    assert side["events"] >= 2, report["runs"]["coalesce"]
    event = report["runs"]["coalesce"][0]["events"][0]
    assert 0 < event["video_latency"] < lipsync.MAX_LATENCY
    assert 0 < event["audio_latency"] < lipsync.MAX_LATENCY
    assert abs(event["source_offset"]) < lipsync.SOURCE_PAIRING
    assert "| coalesce |" in run.stdout
