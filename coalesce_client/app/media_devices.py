"""This computer's screens and cameras, kept current in :class:`~coalesce_client.models.media.MediaSources`.

Cameras are listed once, in the background at start (OpenCV probing is slow); a share that needs one
awaits that listing (:meth:`MediaDevices.cameras_loaded`). Screens are grabbed again whenever a share
starts, and every ``thumbnail_interval`` while one runs (:meth:`MediaDevices.refresh_thumbnails`), so that
the sharing page's thumbnails stay fresh.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from coalesce_client.app.config import SenderConfig, SenderServices
from coalesce_client.app.scheduler import Scheduler
from coalesce_client.models.media import Camera, MediaSources
from coalesce_client.models.session import ShareSession
from coalesce_common.errors import MediaError


class MediaDevices:
    """Lists screens and cameras into ``media``; the camera chosen in ``session`` is listed even if unseen."""

    def __init__(
        self,
        media: MediaSources,
        session: ShareSession,
        scheduler: Scheduler,
        config: SenderConfig,
        services: SenderServices,
    ) -> None:
        self._media = media
        self._session = session
        self._scheduler = scheduler
        self._config = config
        self._services = services
        self._cameras_task: asyncio.Task[None] | None = None

    def cameras_loaded(self) -> asyncio.Task[None]:
        """The (one) task that lists the cameras; awaited by a share that needs one."""
        if self._cameras_task is None:
            self._cameras_task = self._scheduler.spawn(self._load_cameras(), "cameras")
        return self._cameras_task

    def add_camera_file(self, path: str) -> None:
        """Offer a video file as a camera (for demos, and where no webcam is at hand)."""
        self._media.add_camera(Camera(path, Path(path).name))

    async def refresh_monitors(self) -> None:
        try:
            monitors = await asyncio.to_thread(self._services.grab_monitors, self._config.display)
        except MediaError as exc:
            self._media.set_monitors([], str(exc))
        else:
            self._media.set_monitors(monitors)

    async def refresh_thumbnails(self) -> None:
        """Grab the screens again every ``thumbnail_interval``, until cancelled."""
        while True:
            await asyncio.sleep(self._config.thumbnail_interval)
            await self.refresh_monitors()

    async def _load_cameras(self) -> None:
        cameras = await asyncio.to_thread(self._services.list_cameras)
        chosen = self._session.media.camera
        if chosen is not None and not any(c.spec == chosen for c in cameras):
            cameras.append(Camera(chosen, Path(chosen).name if not chosen.isdigit() else f"Camera {chosen}"))
        self._media.set_cameras(cameras)
