"""Fixtures for the media tests: a private X server with a solid-colour root window, a small video file that
stands in for a camera, and process-wide aiortc/aioice patches undone after each test."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from coalesce_common.media import aiortc_patches
from coalesce_common.media.ice import reset_host_addresses_policy, set_host_addresses_policy

XVFB_START_TIMEOUT = 15.0
XSETROOT_TIMEOUT = 10.0
ROOT_COLOUR = (255, 0, 0)
ROOT_SIZE = (640, 480)

VIDEO_SIZE = (160, 120)
VIDEO_FRAMES = 30
VIDEO_FPS = 30.0

Rgb = tuple[int, int, int]


def video_colour(index: int) -> Rgb:
    """The solid colour of frame ``index`` in :func:`video_file`; neighbours differ in every channel."""
    return ((index * 8) % 256, 255 - (index * 8) % 256, (index * 37) % 256)


@dataclass(frozen=True)
class VideoFile:
    path: Path
    width: int
    height: int
    frames: int
    fps: float

    def nearest_index(self, rgb: np.ndarray) -> tuple[int, float]:
        """The frame index whose colour is nearest the mean colour of ``rgb``, and the distance to it."""
        mean = rgb.reshape(-1, 3).mean(axis=0)
        distances = [float(np.linalg.norm(mean - np.array(video_colour(i)))) for i in range(self.frames)]
        best = int(np.argmin(distances))
        return best, distances[best]


def write_video(path: Path, width: int, height: int, *, frames: int, fps: float) -> VideoFile:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened(), "OpenCV cannot write MJPG files"
    try:
        for index in range(frames):
            r, g, b = video_colour(index)
            writer.write(np.full((height, width, 3), (b, g, r), dtype=np.uint8))
    finally:
        writer.release()
    return VideoFile(path, width, height, frames, fps)


@pytest.fixture(scope="session")
def video_file(tmp_path_factory: pytest.TempPathFactory) -> VideoFile:
    """A 160x120, 30 fps MJPG file of 30 frames, frame ``i`` a solid :func:`video_colour` (i)."""
    return write_video(
        tmp_path_factory.mktemp("video") / "camera.avi", *VIDEO_SIZE, frames=VIDEO_FRAMES, fps=VIDEO_FPS
    )


def _read_display_number(fd: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"Xvfb wrote no display number within {timeout:.0f} s (got {data!r})")
        readable, _, _ = select.select([fd], [], [], remaining)
        if readable:
            chunk = os.read(fd, 64)
            if not chunk:
                break  # Xvfb exited
            data += chunk
    return data.decode().strip()


@pytest.fixture(scope="module")
def red_root_display(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private 640x480 Xvfb whose root window is solid :data:`ROOT_COLOUR`; yields its display (":N")."""
    xvfb, xsetroot = shutil.which("Xvfb"), shutil.which("xsetroot")
    if xvfb is None or xsetroot is None:
        pytest.skip("needs Xvfb and xsetroot (apt-get install xvfb x11-xserver-utils)")
    log_path = tmp_path_factory.mktemp("media-xvfb") / "xvfb.log"
    read_fd, write_fd = os.pipe()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            # -noreset: without it the server resets when its last client (xsetroot) leaves, and the root
            # window turns black again.
            [
                xvfb,
                "-displayfd",
                str(write_fd),
                "-screen",
                "0",
                "{}x{}x24".format(*ROOT_SIZE),
                "-nolisten",
                "tcp",
                "-noreset",
            ],
            pass_fds=(write_fd,),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    os.close(write_fd)
    try:
        # Xvfb writes the number only once it accepts clients: that is the readiness signal.
        number = _read_display_number(read_fd, XVFB_START_TIMEOUT)
        if not number.isdigit():
            pytest.fail(f"Xvfb did not start: {log_path.read_text(errors='replace')[-2000:]}")
        display = f":{number}"
        red = "#{:02x}{:02x}{:02x}".format(*ROOT_COLOUR)
        subprocess.run([xsetroot, "-display", display, "-solid", red], check=True, timeout=XSETROOT_TIMEOUT)
        yield display
    finally:
        os.close(read_fd)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture
def patched_aiortc() -> Iterator[None]:
    """aiortc and aioice with every Coalesce patch, as ``new_peer_connection`` installs them."""
    aiortc_patches.install()
    yield
    aiortc_patches.uninstall()


@pytest.fixture
def loopback_only_ice() -> Iterator[None]:
    set_host_addresses_policy(only=["127.0.0.1"])
    yield
    reset_host_addresses_policy()
