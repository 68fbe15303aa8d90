"""Every TLS port of a receiver and of the cloud `coalesce-cloud up` runs (REST API, ejabberd STARTTLS and
direct TLS, coturn) accepts TLS 1.3 and, for TLS 1.2, only the ECDHE AEAD suites of coalesce_common.tls;
never TLS 1.0 or 1.1. Each port is probed suite by suite (tests/tls_probe.py); a permissive server shows
that the probe itself would see a violation."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import threading
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from coalesce_cloud import cli
from coalesce_cloud.stack import LocalCloud
from coalesce_common.tls import TLS12_CIPHERS, load_or_create_identity
from coalesce_receiver.services.receiver import Receiver, ReceiverConfig
from tests.tls_probe import Scan, scan

# Every server here has an ECDSA P-256 certificate, so the ECDHE-RSA half of the policy cannot be chosen.
EXPECTED_TLS12 = frozenset(suite for suite in TLS12_CIPHERS if "-ECDSA-" in suite)


def assert_modern(result: Scan, *, tls13: bool = True) -> None:
    assert result.tls12_suites == EXPECTED_TLS12, sorted(result.tls12_suites)
    assert result.old_versions == frozenset()
    assert result.tls13 is tls13


class PermissiveServer:
    """A TLS server that accepts anything (TLS 1.0 up, every suite): what a violation looks like."""

    def __init__(self, data_dir: Path) -> None:
        identity = load_or_create_identity(data_dir)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.ctx.minimum_version = ssl.TLSVersion.TLSv1
        self.ctx.set_ciphers("ALL:@SECLEVEL=0")
        self.ctx.load_cert_chain(identity.cert_path, identity.key_path)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, name="permissive-tls", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            conn.settimeout(3)
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)  # until the client closes
            except OSError:
                pass

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(10)


@pytest.fixture
def permissive_server(tmp_path: Path) -> Iterator[PermissiveServer]:
    server = PermissiveServer(tmp_path / "permissive")
    yield server
    server.close()


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[Receiver]:
    config = ReceiverConfig(
        name="TLS Room", host="127.0.0.1", port=0, fallback_port=None, data_dir=tmp_path / "box", mdns=False
    )
    room = Receiver(config)
    await room.start()
    yield room
    await room.aclose()


def test_the_probe_sees_old_versions_and_weak_suites(permissive_server: PermissiveServer) -> None:
    result = scan("127.0.0.1", permissive_server.port)
    assert {"TLSv1", "TLSv1.1"} <= result.old_versions
    assert {"ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384"} <= result.tls12_suites  # CBC
    assert result.tls12_suites > EXPECTED_TLS12 and result.tls13


async def test_the_receiver_accepts_only_the_policy(receiver: Receiver) -> None:
    assert_modern(await asyncio.to_thread(scan, "127.0.0.1", receiver.port))


async def test_the_rest_api_accepts_only_the_policy(local_cloud: LocalCloud) -> None:
    assert_modern(await asyncio.to_thread(scan, local_cloud.host, local_cloud.ports.api))


@pytest.mark.parametrize("listener", ["starttls", "direct-tls"])
async def test_ejabberd_accepts_only_the_policy(local_cloud: LocalCloud, listener: str) -> None:
    if listener == "starttls":
        port, domain = local_cloud.ports.xmpp_starttls, local_cloud.domain
    else:
        port, domain = local_cloud.ports.xmpp_tls, None
    assert_modern(await asyncio.to_thread(scan, local_cloud.host, port, xmpp_domain=domain))


def _coturn_negotiates_tls13() -> bool:
    """coturn 4.6.2 and later can; 4.6.1 cannot (coalesce_cloud.servers.coturn.NO_TLS13_WHY)."""
    version = subprocess.run(["turnserver", "--version"], capture_output=True, text=True, check=False)
    parts = tuple(int(part) for part in version.stdout.split()[0].split(".")[:3])
    return parts >= (4, 6, 2)


async def test_coturn_accepts_only_the_policy(local_cloud: LocalCloud) -> None:
    result = await asyncio.to_thread(scan, local_cloud.host, local_cloud.ports.turn_tls)
    assert_modern(result, tls13=await asyncio.to_thread(_coturn_negotiates_tls13))


def test_coalesce_cloud_serve_applies_the_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve`` (production's REST API) hands uvicorn the same policy: its context, as uvicorn builds it
    from the arguments ``serve`` passes, allows TLS 1.2+ and the policy's suites only."""
    identity = load_or_create_identity(tmp_path / "api-tls")
    settings = tmp_path / "cloud.toml"
    lines = [f'state_dir = "{tmp_path / "state"}"', f'tls_cert = "{identity.cert_path}"']
    settings.write_text("\n".join([*lines, f'tls_key = "{identity.key_path}"', ""]))
    captured: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: captured.update(options, app=app))
    assert cli.main(["serve", "--config", str(settings), "--host", "127.0.0.1", "--port", "0"]) == 0
    config = uvicorn.Config(**captured)
    config.load()
    assert config.ssl is not None
    assert config.ssl.minimum_version is ssl.TLSVersion.TLSv1_2
    tls12 = {c["name"] for c in config.ssl.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 == set(TLS12_CIPHERS)
