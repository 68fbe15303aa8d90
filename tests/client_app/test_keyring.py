"""The keyring rule: secrets go to an OS keyring or nowhere, never to keyrings.alt's plaintext file.

The first tests run a fresh interpreter with the developer's venv as it is (keyrings.alt installed) and no
Secret Service on the session bus: exactly where keyring itself would fall back to the base64 file under
``$XDG_DATA_HOME/python_keyring/``. The others drive the app core's proxy flow: the problem is said where the
password is typed and "for this session only" keeps it in memory while ``sender.json`` gets the rest.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from coalesce_client.app.config import SenderServices
from coalesce_client.app.proxy import ProxySettings
from coalesce_client.app.scheduler import Scheduler
from coalesce_client.models.app_settings import ProxyChoice
from coalesce_client.models.session import ShareSession
from coalesce_client.settings import load_proxy, save_proxy
from coalesce_common.keyring_store import KeyringUnavailable
from coalesce_common.net.proxy import ProxyConfig
from tests.client_app.conftest import until

SECRET = "s3cret-Pa55"
MANUAL = ProxyConfig(mode="manual", url=f"http://alice:{SECRET}@proxy.corp:3128")

_PROBE = """
import json, keyring
from keyring.backends.chainer import ChainerBackend
from coalesce_client.settings import save_proxy, settings_path
from coalesce_common import keyring_store
from coalesce_common.net.proxy import ProxyConfig

backend = keyring.get_keyring()
chain = backend.backends if isinstance(backend, ChainerBackend) else [backend]
outcomes = {}
try:
    save_proxy(ProxyConfig(mode="manual", url="http://alice:%(secret)s@proxy.corp:3128"))
    outcomes["proxy"] = "saved"
except keyring_store.KeyringUnavailable as exc:
    outcomes["proxy"] = str(exc)
try:
    keyring_store.set_secret("coalesce-sender", "cloud-device", '{"token": "%(secret)s"}')
    outcomes["cloud"] = "saved"
except keyring_store.KeyringUnavailable as exc:
    outcomes["cloud"] = str(exc)
print(json.dumps({
    "chain": [type(b).__module__ + "." + type(b).__name__ for b in chain],
    "outcomes": outcomes,
    "settings_written": settings_path().exists(),
}))
"""


def _probe(home: Path, **extra: str) -> dict[str, object]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHON_KEYRING_BACKEND", "DBUS_SESSION_BUS_ADDRESS", "KEYRING_PROPERTY_KEYRING"}
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CACHE_HOME=str(home / "cache"),
        # no Secret Service: a session bus that is not there
        DBUS_SESSION_BUS_ADDRESS=f"unix:path={home / 'no-bus'}",
        **extra,
    )
    result = subprocess.run(
        [sys.executable, "-c", _PROBE % {"secret": SECRET}],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def _files_holding(folder: Path, text: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def test_with_no_os_keyring_a_secret_is_refused_and_never_written_to_a_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    found = _probe(home)
    # The premise: left alone, keyring would have used keyrings.alt's plaintext file here.
    assert any(name.startswith("keyrings.alt.file.") for name in found["chain"]), found  # type: ignore[attr-defined]
    outcomes = found["outcomes"]
    assert isinstance(outcomes, dict)
    for what in ("proxy", "cloud"):
        assert outcomes[what].startswith("No system keyring is working on this computer"), outcomes
        assert "GNOME Keyring or KWallet" in outcomes[what]
    assert found["settings_written"] is False, "nothing is saved when the password cannot be kept"
    assert not (home / "data" / "python_keyring").exists()
    assert _files_holding(home, SECRET) == []


def test_a_test_that_names_the_file_keyring_still_gets_it(tmp_path: Path) -> None:
    """The control: the same run with PYTHON_KEYRING_BACKEND set stores the secret in the file keyring."""
    home = tmp_path / "home"
    found = _probe(home, PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring")
    assert found["outcomes"] == {"proxy": "saved", "cloud": "saved"}
    assert (home / "data" / "python_keyring").is_dir()


@pytest.fixture
async def scheduler() -> AsyncIterator[Scheduler]:
    scheduler = Scheduler(asyncio.get_running_loop())
    yield scheduler
    await scheduler.aclose()


def _no_keyring(config: ProxyConfig) -> Path:
    raise KeyringUnavailable("No system keyring is working on this computer (found: none).")


async def test_the_settings_say_why_a_password_cannot_be_kept(
    scheduler: Scheduler, isolated_home: Path
) -> None:
    services = SenderServices(
        save_proxy=_no_keyring, keyring_problem=lambda: "No system keyring is working on this computer."
    )
    choice, session = ProxyChoice(), ShareSession()
    proxy = ProxySettings(choice, session, scheduler, services)
    await proxy.load()
    assert choice.keyring_problem == "No system keyring is working on this computer."

    proxy.save(MANUAL)
    await until(choice, lambda: choice.error is not None, "the refused save")
    assert choice.error is not None and "No system keyring" in choice.error
    assert choice.config != MANUAL, "a password that could not be kept is not in force silently"
    assert not await asyncio.to_thread((isolated_home / "config" / "coalesce" / "sender.json").exists)


async def test_for_this_session_only_the_password_is_used_but_not_saved(
    scheduler: Scheduler, isolated_home: Path
) -> None:
    saved: list[ProxyConfig] = []

    def save_without_keyring(config: ProxyConfig) -> Path:
        saved.append(config)
        return save_proxy(config)  # raises if any password reached it: the file keyring is not asked

    services = SenderServices(save_proxy=save_without_keyring, keyring_problem=lambda: "no keyring")
    choice, session = ProxyChoice(), ShareSession()
    proxy = ProxySettings(choice, session, scheduler, services)
    proxy.save(MANUAL, session_only=True)
    await until(choice, lambda: choice.config == MANUAL, "the proxy in force with its password")
    assert choice.session_only and choice.error is None
    assert saved == [ProxyConfig(mode="manual", url="http://alice@proxy.corp:3128")]
    sender_json = isolated_home / "config" / "coalesce" / "sender.json"
    assert SECRET not in await asyncio.to_thread(sender_json.read_text)
    assert await asyncio.to_thread(_files_holding, isolated_home, SECRET) == []
    # The next start has the proxy without its password (it was for that session only).
    reloaded = await asyncio.to_thread(load_proxy)
    assert reloaded.url == "http://alice@proxy.corp:3128"
