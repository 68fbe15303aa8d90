"""Screens and cameras without Qt: listed into ``MediaSources``, the chosen camera kept even when unseen."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from coalesce_client.app.config import SenderConfig, SenderServices
from coalesce_client.app.media_devices import MediaDevices
from coalesce_client.app.scheduler import Scheduler
from coalesce_client.models.media import Camera, MediaSources, Monitor
from coalesce_client.models.session import MediaChoice, ShareSession
from tests.client_app.conftest import no_screen, until


@pytest.fixture
async def scheduler() -> AsyncIterator[Scheduler]:
    scheduler = Scheduler(asyncio.get_running_loop())
    yield scheduler
    await scheduler.aclose()


async def test_cameras_are_listed_once_with_the_chosen_one_even_if_unplugged(scheduler: Scheduler) -> None:
    calls: list[int] = []

    def list_cameras() -> list[Camera]:
        calls.append(1)
        return [Camera("0", "Integrated webcam")]

    media, session = MediaSources(), ShareSession(MediaChoice(None, "2"))
    services = SenderServices(list_cameras=list_cameras)
    devices = MediaDevices(media, session, scheduler, SenderConfig(), services)
    assert devices.cameras_loaded() is devices.cameras_loaded()
    await devices.cameras_loaded()
    assert [(c.spec, c.label) for c in media.cameras] == [("0", "Integrated webcam"), ("2", "Camera 2")]
    assert calls == [1]
    devices.add_camera_file("/videos/demo.mp4")
    assert media.cameras[-1] == Camera("/videos/demo.mp4", "demo.mp4")


async def test_screens_are_grabbed_again_while_sharing_and_a_failure_is_said(scheduler: Scheduler) -> None:
    grabs: list[str | None] = []

    def grab_monitors(display: str | None) -> list[Monitor]:
        grabs.append(display)
        if len(grabs) > 2:
            return no_screen(display)
        return [Monitor(1, 1920, 1080)]

    media = MediaSources()
    config = SenderConfig(display=":7", thumbnail_interval=0.01)
    services = SenderServices(grab_monitors=grab_monitors)
    devices = MediaDevices(media, ShareSession(), scheduler, config, services)
    await devices.refresh_monitors()
    assert [m.index for m in media.monitors] == [1] and media.screen_problem is None
    scheduler.spawn(devices.refresh_thumbnails(), "thumbnails")
    await until(media, lambda: media.screen_problem is not None, "the screen gone")
    assert media.monitors == []
    assert media.screen_problem == "No screen can be captured here: share a camera instead."
    assert set(grabs) == {":7"}
