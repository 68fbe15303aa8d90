"""What the sender's widgets call: one plain method per user action, handed to the app core's flows.

The work itself is done without Qt in :mod:`coalesce_client.app` (:class:`~coalesce_client.app.SenderCore`);
this facade gives the widgets one object to hold and keeps them ignorant of how the core is cut into
flows. Every method returns at once; what follows shows up in the models the widgets observe.
"""

from __future__ import annotations

import asyncio

from coalesce_client.app import SenderConfig, SenderCore, SenderModels, SenderServices
from coalesce_common.discovery import ReceiverInfo
from coalesce_common.net.proxy import ProxyConfig
from coalesce_common.protocol import RoomCommand


class SenderController:
    """The widgets' entry to the app core (``models`` for what they show)."""

    def __init__(
        self,
        models: SenderModels,
        *,
        loop: asyncio.AbstractEventLoop,
        config: SenderConfig | None = None,
        services: SenderServices | None = None,
    ) -> None:
        self.models = models
        self.core = SenderCore(models, loop=loop, config=config, services=services)

    async def run(self) -> None:
        await self.core.run()

    async def aclose(self) -> None:
        await self.core.aclose()

    # -- sharing ---------------------------------------------------------------------------------

    def share_typed(self, text: str) -> None:
        self.core.share.share_typed(text)

    def share_receiver(self, info: ReceiverInfo) -> None:
        self.core.share.share_receiver(info)

    def share_last(self) -> None:
        self.core.share.share_last()

    def share_replacing(self) -> None:
        self.core.share.share_replacing()

    def stop(self) -> None:
        self.core.share.stop()

    def submit_pin(self, pin: str) -> None:
        self.core.share.submit_pin(pin)

    def cancel_pin(self) -> None:
        self.core.share.cancel_pin()

    def set_paused(self, paused: bool) -> None:
        self.core.share.set_paused(paused)

    def choose_sound(self, sound: bool) -> None:
        self.core.share.choose_sound(sound)

    def set_sound_volume(self, volume: float) -> None:
        self.core.share.set_sound_volume(volume)

    def control_room(self, command: RoomCommand, tile: int = 0, other: int = 0) -> None:
        self.core.share.control_room(command, tile, other)

    def choose_screen(self, screen: int | None) -> None:
        self.core.share.choose_screen(screen)

    def choose_camera(self, camera: str | None) -> None:
        self.core.share.choose_camera(camera)

    def add_camera_file(self, path: str) -> None:
        self.core.devices.add_camera_file(path)

    # -- settings and cloud ----------------------------------------------------------------------

    def save_settings(self, *, display_name: str, proxy: ProxyConfig, session_only: bool = False) -> None:
        self.core.save_settings(display_name=display_name, proxy=proxy, session_only=session_only)

    def enroll(
        self, *, url: str, code: str, ca_file: str, proxy: ProxyConfig, session_only: bool = False
    ) -> None:
        self.core.cloud.enroll(url=url, code=code, ca_file=ca_file, proxy=proxy, session_only=session_only)

    def install_update(self) -> None:
        self.core.cloud.install_update()
