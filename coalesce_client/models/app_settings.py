"""The desktop app's own settings: ``$XDG_CONFIG_HOME/coalesce/app.json`` (``~/.config/coalesce/app.json``).

It sits beside ``sender.json`` (the proxy choice, owned by :mod:`coalesce_client.settings`) and holds what
only the app needs: the display name, the last receiver or meeting, the media choice and the cloud's
address. No secrets: cloud credentials and proxy passwords live in the OS keyring. A damaged or missing
file gives the defaults; unknown keys are kept, so older and newer versions can share the file.

The flows change the settings from the event loop's thread (a share started, an enrollment done), so there the
file is written in a worker thread: the loop never waits for the disk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from coalesce_client.models.destination import Destination
from coalesce_client.models.observable import Observable
from coalesce_client.models.session import MediaChoice
from coalesce_common.net.proxy import ProxyConfig

logger = logging.getLogger(__name__)


def app_settings_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "coalesce" / "app.json"


@dataclass(frozen=True)
class AppSettings:
    display_name: str = field(default_factory=socket.gethostname)
    last_destination: Destination | None = None
    media: MediaChoice = field(default_factory=MediaChoice)
    cloud_url: str = ""
    cloud_ca: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        data = dict(self.extra)
        data.update(
            {
                "display_name": self.display_name,
                "last_destination": self.last_destination.to_json() if self.last_destination else None,
                "screen": self.media.screen,
                "camera": self.media.camera,
                "cloud_url": self.cloud_url,
                "cloud_ca": self.cloud_ca,
            }
        )
        return data

    @classmethod
    def from_json(cls, data: object) -> AppSettings:
        if not isinstance(data, dict):
            return cls()
        defaults = cls()
        known = {"display_name", "last_destination", "screen", "camera", "cloud_url", "cloud_ca"}
        screen = data.get("screen", defaults.media.screen)
        camera = data.get("camera")
        return cls(
            display_name=_text(data.get("display_name")) or defaults.display_name,
            last_destination=Destination.from_json(data.get("last_destination")),
            media=MediaChoice(
                screen=screen if isinstance(screen, int) and screen > 0 else None,
                camera=str(camera) if isinstance(camera, str | int) else None,
            ),
            cloud_url=_text(data.get("cloud_url")),
            cloud_ca=_text(data.get("cloud_ca")),
            extra={k: v for k, v in data.items() if k not in known},
        )


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def load_app_settings(path: Path) -> AppSettings:
    try:
        return AppSettings.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return AppSettings()
    except (OSError, ValueError) as exc:
        logger.warning("ignoring the unreadable settings file %s: %s", path, exc)
        return AppSettings()


def save_app_settings(settings: AppSettings, path: Path) -> None:
    """Write atomically (a crash mid-write leaves the previous file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.part")
    partial.write_text(json.dumps(settings.to_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)


class AppSettingsModel(Observable):
    """The settings in force; :meth:`update` changes and saves them.

    Built before the app's event loop runs (it reads the file).
    """

    def __init__(self, path: Path | None = None) -> None:
        super().__init__()
        self.path = path or app_settings_path()
        self.settings = load_app_settings(self.path)
        self._save_lock = threading.Lock()
        self._saving: asyncio.Future[None] | None = None

    def update(self, **changes: Any) -> None:
        """Change the settings in force and save them: at once with no event loop in this thread, else in a
        worker thread (:meth:`saved` waits for it)."""
        updated = replace(self.settings, **changes)
        if updated == self.settings:
            return
        self.settings = updated
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._save()
        else:
            self._saving = loop.run_in_executor(None, self._save)
        self._changed()

    async def saved(self) -> None:
        """Return once the settings in force are on disk (or could not be written, which is logged)."""
        if self._saving is not None:
            await self._saving

    def _save(self) -> None:
        # One write at a time, each of the newest settings: writes that run out of order still end on them.
        with self._save_lock:
            try:
                save_app_settings(self.settings, self.path)
            except OSError as exc:
                logger.warning("could not save the settings to %s: %s", self.path, exc)


class ProxyChoice(Observable):
    """The proxy settings in force (``sender.json`` plus the keyring), as the settings form shows them."""

    def __init__(self, config: ProxyConfig | None = None) -> None:
        super().__init__()
        self.config = config or ProxyConfig()
        self.error: str | None = None
        # Why a password cannot be kept here (no working OS keyring), shown where it is typed; None: it can.
        self.keyring_problem: str | None = None
        self.session_only = False  # the password in force is kept in memory, for this session only

    def set_config(self, config: ProxyConfig, *, session_only: bool = False) -> None:
        self.config = config
        self.session_only = session_only
        self.error = None
        self._changed()

    def set_keyring_problem(self, message: str | None) -> None:
        self.keyring_problem = message
        self._changed()

    def set_error(self, message: str) -> None:
        self.error = message
        self._changed()
