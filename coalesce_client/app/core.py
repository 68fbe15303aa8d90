"""The sender app's core: its models and the flows that change them, started and stopped together.

:class:`SenderCore` composes one object per job: :class:`~coalesce_client.app.share_flow.ShareFlow`,
:class:`~coalesce_client.app.discovery.Discovery`, :class:`~coalesce_client.app.cloud.CloudStanding`,
:class:`~coalesce_client.app.proxy.ProxySettings` and
:class:`~coalesce_client.app.media_devices.MediaDevices`, all sharing one
:class:`~coalesce_client.app.scheduler.Scheduler`. :meth:`SenderCore.run` is the app's main coroutine: it
keeps discovery, the device lists, the proxy settings and the cloud standing going until it is
cancelled, then ends any share cleanly (the receiver is told).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from coalesce_client.app.cloud import CloudStanding
from coalesce_client.app.config import SenderConfig, SenderServices
from coalesce_client.app.discovery import Discovery
from coalesce_client.app.media_devices import MediaDevices
from coalesce_client.app.proxy import ProxySettings
from coalesce_client.app.scheduler import Scheduler
from coalesce_client.app.share_flow import ShareFlow
from coalesce_client.models.app_settings import AppSettingsModel, ProxyChoice
from coalesce_client.models.cloud import CloudAccount, UpdateOffer
from coalesce_client.models.media import MediaSources
from coalesce_client.models.receivers import ReceiverList
from coalesce_client.models.session import ShareSession
from coalesce_common.net.proxy import ProxyConfig


@dataclass
class SenderModels:
    """Everything the sender's views observe."""

    receivers: ReceiverList
    session: ShareSession
    media: MediaSources
    settings: AppSettingsModel
    account: CloudAccount
    update: UpdateOffer
    proxy: ProxyChoice

    @classmethod
    def create(cls, settings_path: Path | None = None) -> SenderModels:
        settings = AppSettingsModel(settings_path)
        return cls(
            receivers=ReceiverList(),
            session=ShareSession(settings.settings.media),
            media=MediaSources(),
            settings=settings,
            account=CloudAccount(),
            update=UpdateOffer(),
            proxy=ProxyChoice(),
        )


class SenderCore:
    """The flows of the sender app over its models; see the module docstring."""

    def __init__(
        self,
        models: SenderModels,
        *,
        loop: asyncio.AbstractEventLoop,
        config: SenderConfig | None = None,
        services: SenderServices | None = None,
    ) -> None:
        self.models = models
        self.config = config = config or SenderConfig()
        services = services or SenderServices()
        self.scheduler = scheduler = Scheduler(loop)
        self.devices = MediaDevices(models.media, models.session, scheduler, config, services)
        self.share = ShareFlow(
            models.session, models.settings, models.media, self.devices, scheduler, config, services
        )
        self.discovery = Discovery(models.receivers, config, services)
        self.cloud = CloudStanding(
            models.account, models.update, models.settings, scheduler, config, services
        )
        self.proxy = ProxySettings(models.proxy, models.session, scheduler, services)

    async def run(self) -> None:
        """The app's main coroutine: background work until cancelled, then :meth:`aclose`."""
        scheduler = self.scheduler
        if self.config.discovery:
            scheduler.spawn(self.discovery.run(), "discovery")
        self.devices.cameras_loaded()
        scheduler.spawn(self.proxy.load(), "proxy")
        scheduler.spawn(self.cloud.run(), "cloud")
        try:
            await asyncio.Event().wait()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """End a share in progress (telling the receiver), stop all background work, let the settings file
        be written. Idempotent."""
        if self.scheduler.closed:
            return
        self.share.cancel_pin()
        await self.scheduler.aclose()
        await self.models.settings.saved()

    async def __aenter__(self) -> SenderCore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def save_settings(self, *, display_name: str, proxy: ProxyConfig, session_only: bool = False) -> None:
        """Keep the display name (app.json) and the proxy choice (sender.json, password to the keyring, or
        with ``session_only`` in memory until the app quits)."""
        settings = self.models.settings
        settings.update(display_name=display_name.strip() or settings.settings.display_name)
        self.proxy.save(proxy, session_only=session_only)
