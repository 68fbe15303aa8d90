"""Fixtures for the sender's app core (``coalesce_client.app``) on a plain asyncio loop: no Qt anywhere.

* Every test gets its own ``XDG_CONFIG_HOME``, ``XDG_DATA_HOME`` and ``XDG_CACHE_HOME`` and a plaintext
  keyring (keyrings.alt) inside them, so settings and passwords never touch the developer's
  (``isolated_home``, also used by the Qt tests in ``tests/client_ui``).
* Real receivers come from ``tests/e2e``'s ``make_receiver`` (TLS signaling, SPAKE2, aiortc on 127.0.0.1),
  with ICE kept on loopback; a video file stands in for the webcam and no screen can be grabbed
  (:func:`no_screen`), as on a headless test machine.
* ``server`` is a tiny HTTP server on loopback answering fixed paths (the cloud's update endpoint and
  downloads, where a whole cloud is not needed).
* :func:`until` waits for a model to reach a state, woken by the model's own change notices, never by a
  timer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import keyring
import keyring.backend
import pytest
from keyrings.alt.file import PlaintextKeyring

from coalesce_client.models.media import Monitor
from coalesce_common.cloud.updates import installed_version
from coalesce_common.errors import MediaError
from coalesce_testing.waiting import WAIT, Observed, until  # noqa: F401 - the client_app tests import them from here
from tests.e2e.conftest import loopback_only_ice, make_receiver, video_file  # noqa: F401 - fixtures

PIN = "4821"
SENDER_NAME = "Ada's laptop"
"""The longest a test waits for a share to connect or end (real TLS, SPAKE2, ICE and DTLS on loopback)."""


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Private config, data and cache folders, and a file keyring in the data folder."""
    home = tmp_path / "home"
    for name, folder in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        (home / folder).mkdir(parents=True)
        monkeypatch.setenv(name, str(home / folder))
    monkeypatch.delenv("COALESCE_PROXY_PASSWORD", raising=False)
    # The plaintext file keyring only because a test names it (coalesce_common.keyring_store refuses it else).
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    previous: keyring.backend.KeyringBackend = keyring.get_keyring()
    keyring.set_keyring(PlaintextKeyring())
    yield home
    keyring.set_keyring(previous)


@pytest.fixture(scope="session", autouse=True)
def _version_read_before_any_loop() -> None:
    """The app reads its version (from the installed distribution's files) while it is built, before its
    event loop runs, and keeps it (``installed_version`` is cached). Tests build the app core inside their
    loop, so the one read happens here first, as it does in the app."""
    installed_version()


def write_app_settings(path: Path, **settings: object) -> None:
    """Write ``app.json`` as an earlier run of the app would have left it (blocking: call it in a thread)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings) + "\n")


def no_screen(display: str | None) -> list[Monitor]:
    raise MediaError("No screen can be captured here: share a camera instead.")


class Server:
    """A tiny HTTP/1.1 server on loopback answering fixed paths."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        path = request.split(b" ")[1].decode()
        status, body = self.routes.get(path, (404, b'{"error": {"code": "not_found"}}'))
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
        )
        await writer.drain()
        writer.close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    served = Server()
    tcp = await asyncio.start_server(served.handle, "127.0.0.1", 0)
    served.port = tcp.sockets[0].getsockname()[1]
    async with tcp:
        yield served
