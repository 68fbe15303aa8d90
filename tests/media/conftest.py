"""Fixtures for the media tests: a private X server with a solid-colour root window, a small video file that
stands in for a camera, and process-wide aiortc/aioice patches undone after each test."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from coalesce_common.media import aiortc_patches
from coalesce_common.media.ice import reset_host_addresses_policy, set_host_addresses_policy
from coalesce_testing.xvfb import XvfbError, XvfbMissing, start_xvfb

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


@pytest.fixture(scope="module")
def red_root_display(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private 640x480 Xvfb whose root window is solid :data:`ROOT_COLOUR`; yields its display (":N")."""
    xsetroot = shutil.which("xsetroot")
    if xsetroot is None:
        pytest.skip("needs xsetroot (apt-get install x11-xserver-utils)")
    try:
        server = start_xvfb(*ROOT_SIZE, log_path=tmp_path_factory.mktemp("media-xvfb") / "xvfb.log")
    except XvfbMissing as exc:
        pytest.skip(str(exc))
    except XvfbError as exc:
        pytest.fail(str(exc))
    with server:
        red = "#{:02x}{:02x}{:02x}".format(*ROOT_COLOUR)
        # Xvfb runs with -noreset, so the root stays red after xsetroot, its only client, leaves.
        subprocess.run(
            [xsetroot, "-display", server.display, "-solid", red], check=True, timeout=XSETROOT_TIMEOUT
        )
        yield server.display


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
