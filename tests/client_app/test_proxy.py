"""The proxy settings without Qt: saved to ``sender.json`` with the password in the keyring, read back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import keyring
import pytest

from coalesce_client.app.config import SenderServices
from coalesce_client.app.proxy import ProxySettings
from coalesce_client.app.scheduler import Scheduler
from coalesce_client.models.app_settings import ProxyChoice
from coalesce_client.models.session import ShareSession
from coalesce_common.net.proxy import ProxyConfig
from tests.client_app.conftest import until

MANUAL = ProxyConfig(mode="manual", url="socks5://alice:s3cret@proxy.corp:1080")


@pytest.fixture
async def scheduler() -> AsyncIterator[Scheduler]:
    scheduler = Scheduler(asyncio.get_running_loop())
    yield scheduler
    await scheduler.aclose()


def settings(scheduler: Scheduler) -> tuple[ProxySettings, ProxyChoice, ShareSession]:
    choice, session = ProxyChoice(), ShareSession()
    return ProxySettings(choice, session, scheduler, SenderServices()), choice, session


async def test_a_saved_proxy_keeps_its_password_in_the_keyring_and_is_read_back(
    scheduler: Scheduler, isolated_home: Path
) -> None:
    proxy, choice, _ = settings(scheduler)
    proxy.save(MANUAL)
    await until(choice, lambda: choice.config == MANUAL, "the saved proxy in force")
    sender_json = isolated_home / "config" / "coalesce" / "sender.json"
    assert json.loads(await asyncio.to_thread(sender_json.read_text))["proxy"] == {
        "mode": "manual",
        "url": "socks5://alice@proxy.corp:1080",
    }
    password = await asyncio.to_thread(keyring.get_password, "coalesce-sender", "proxy:alice@proxy.corp:1080")
    assert password == "s3cret"

    again, choice, _ = settings(scheduler)  # the next start of the app
    await again.load()
    assert choice.config == MANUAL and choice.error is None


async def test_a_proxy_that_cannot_be_saved_is_said_in_settings_and_on_the_first_screen(
    scheduler: Scheduler, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = isolated_home / "not-a-folder"
    await asyncio.to_thread(blocker.write_text, "")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(blocker))  # sender.json cannot be written under a file
    proxy, choice, session = settings(scheduler)
    proxy.save(MANUAL)
    await until(choice, lambda: choice.error is not None, "the error")
    assert choice.error is not None and choice.error.startswith("The proxy settings could not be saved: ")
    assert session.error == choice.error
    assert choice.config == ProxyConfig()  # still what was in force before


async def test_saved_settings_that_do_not_parse_are_said(scheduler: Scheduler, isolated_home: Path) -> None:
    sender_json = isolated_home / "config" / "coalesce" / "sender.json"
    await asyncio.to_thread(sender_json.parent.mkdir, parents=True)
    saved = {"proxy": {"mode": "manual", "url": "socks5://alice@proxy.corp:x"}}
    await asyncio.to_thread(sender_json.write_text, json.dumps(saved))
    proxy, choice, _ = settings(scheduler)
    await proxy.load()
    assert choice.error is not None
    assert choice.error.startswith("The saved proxy settings could not be read: ")
