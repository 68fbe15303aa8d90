"""The app core as the desktop app runs it, minus Qt: the flows together, and quitting mid-share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from coalesce_client.app import SenderConfig, SenderCore, SenderModels, SenderServices
from coalesce_client.models.media import Camera
from coalesce_client.models.session import SharePhase
from coalesce_common.net.proxy import ProxyConfig
from tests.client_app.conftest import SENDER_NAME, no_screen, until, write_app_settings
from tests.e2e.conftest import ReceiverFactory

LOOPBACK = ["127.0.0.1"]


async def test_a_receiver_found_is_shared_to_and_quitting_tells_it(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path], isolated_home: Path
) -> None:
    receiver = await make_receiver(name="Aurora", mdns=True, mdns_interfaces=LOOPBACK)
    settings_path = isolated_home / "config" / "coalesce" / "app.json"
    await asyncio.to_thread(write_app_settings, settings_path, display_name=SENDER_NAME)
    models = await asyncio.to_thread(SenderModels.create, settings_path)  # the app reads them before its loop
    camera = Camera(str(video_file()), "Test camera")
    core = SenderCore(
        models,
        loop=asyncio.get_running_loop(),
        config=SenderConfig(discovery_interfaces=LOOPBACK, discovery_settle=0.2),
        services=SenderServices(
            grab_monitors=no_screen,
            list_cameras=lambda: [camera],
            load_credentials=lambda: None,
            local_addresses=lambda: LOOPBACK,
        ),
    )
    running = asyncio.ensure_future(core.run())
    try:
        receivers = models.receivers
        await until(receivers, lambda: [r.name for r in receivers.receivers] == ["Aurora"], "Aurora listed")
        await until(models.media, lambda: models.media.cameras == [camera], "the cameras listed")
        core.share.share_receiver(receivers.receivers[0])
        await until(models.session, lambda: models.session.phase is SharePhase.SHARING, "sharing")
        assert [s.sender_name for s in receiver.model.shares] == [SENDER_NAME]

        core.save_settings(display_name="  ", proxy=ProxyConfig(mode="none"))  # blank: the name stays
        await until(models.proxy, lambda: models.proxy.config == ProxyConfig(mode="none"), "the proxy saved")
        assert models.settings.settings.display_name == SENDER_NAME
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    await until(receiver.model, lambda: receiver.model.shares == [], "the receiver told")
    assert models.session.phase is SharePhase.IDLE
    await core.aclose()  # again: nothing left to do
