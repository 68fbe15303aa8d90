"""The browser baseline: two real Chromiums on two real Xvfbs carry the timestamp strip over WebRTC.

No timing assertions: the run has to deliver legible frames, name the codec Chromium used, count bytes
and CPU, and leave snapshots of the receiving screen. Nothing here skips: setup.sh installs Chromium.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import browser, glass
from benchmarks.procs import BenchmarkError, cpu_seconds, descendants

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.x11
def test_a_short_run_carries_legible_frames_from_one_chromium_to_the_other(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.browser", "--size", "640x360", "--seconds", "2", "--warmup", "1",
         "--log-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=100, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", report["chromium"])
    result = report["result"]
    assert result["ok"], result["error"]
    assert result["codec"].startswith("H264"), result["codec"]  # the case's codec, as Chromium reports it
    assert result["streams"] == 1
    at_glass = result["glass_latency_ms"]
    assert at_glass["samples"] > 0 and len(result["latencies_ms"]) == at_glass["samples"]
    assert all(x > 0 for x in result["latencies_ms"])  # read off the receiving screen, after the painting
    assert result["glass_unreadable"] <= 0.01 * result["glass_samples"]
    assert result["displayed_fps"] > 0  # the picture on the receiving screen changes
    assert result["bitrate_mbps"] > 0
    assert result["sender_cpu"] > 0 and result["receiver_cpu"] > 0
    assert 0 < result["first_frame_s"] < result["first_frame_from_launch_s"]
    snapshots = result["snapshots"]
    assert len(snapshots) == glass.SNAPSHOTS
    assert result["sender_memory_mib"] > 50 and result["receiver_memory_mib"] > 50  # whole browsers
    for snapshot in snapshots:
        picture = np.load(snapshot["path"])
        assert picture.shape == (360, 640, 3) and picture.dtype == np.uint8
        # The video reaches the screen's last column and row (no black line left by a too-small window).
        assert picture[:, -1].max() > 0 and picture[-1].max() > 0
    legible = [s for s in snapshots if s["counter"] is not None]
    assert legible, "no snapshot showed a legible strip"
    assert all(s["timestamp_ms"] is not None for s in legible)  # what quality.py looks the frame up by


def test_the_pages_load_nothing_from_off_the_machine() -> None:
    for path in browser.WEB_DIR.iterdir():
        text = path.read_text()
        assert not re.search(r"https?://(?!127\.0\.0\.1)", text), path.name
        assert not re.search(r"""(src|href)=["'](?!\w+\.(js|html)["'])""", text), path.name


def test_content_hints_follow_the_case() -> None:
    assert browser.content_hint("static") == "detail"
    assert browser.content_hint("motion") == "motion"


def test_chromium_version_is_the_installed_ones_and_empty_when_absent(tmp_path: Path) -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", browser.chromium_version())
    assert browser.chromium_version(tmp_path / "no-chromium") == ""


def test_a_process_tree_holds_children_and_grandchildren() -> None:
    # A shell whose own child prints its pid: the tree must reach two levels down.
    shell = subprocess.Popen(["sh", "-c", 'sleep 60 & echo "$!"; wait'], stdout=subprocess.PIPE, text=True)
    try:
        assert shell.stdout is not None
        grandchild = int(shell.stdout.readline())
        tree = descendants(os.getpid())
        assert {os.getpid(), shell.pid, grandchild} <= set(tree)
        assert descendants(grandchild) == [grandchild]
        own = cpu_seconds(os.getpid())  # read first: the clock of this busy process only moves on
        assert browser.tree_cpu_seconds(os.getpid()) >= own
    finally:
        os.kill(grandchild, 15)
        shell.wait(timeout=10)


def test_no_browser_for_an_unknown_profile_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkError, match="no Chromium"):
        browser.browser_pid(tmp_path / "nobody")
