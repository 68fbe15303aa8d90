"""A device's XMPP login heals rotated credentials the way the proxy settings say, off the event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from urllib.parse import urlsplit

import keyring
import pytest
from keyrings.alt.file import PlaintextKeyring

from coalesce_common.cloud import store
from coalesce_common.cloud.device import connect_xmpp
from coalesce_common.net.proxy import DIRECT, ProxyConfig, ProxyHop, ProxyResolver
from tests.cloudlab import Admin

SERVICE = "coalesce-test-device"


class RecordingResolver(ProxyResolver):
    """Says DIRECT for everything, and remembers every destination it was asked about."""

    def __init__(self) -> None:
        super().__init__(ProxyConfig(mode="none"))
        self.asked: list[tuple[str, int]] = []

    async def resolve(self, host: str, port: int, scheme: str = "https") -> list[ProxyHop]:
        self.asked.append((host, port))
        return [DIRECT]


class ThreadRecordingKeyring(PlaintextKeyring):
    """A file keyring that notes which thread each write came from."""

    writers: list[threading.Thread] = []

    def set_password(self, service: str, username: str, password: str) -> None:
        self.writers.append(threading.current_thread())
        super().set_password(service, username, password)


@pytest.fixture
def recording_keyring() -> ThreadRecordingKeyring:
    backend = ThreadRecordingKeyring()
    backend.writers = []
    keyring.set_keyring(backend)  # the autouse file_keyring fixture restores the previous one
    return backend


async def test_a_refused_login_fetches_new_credentials_through_the_resolver(
    admin: Admin, recording_keyring: ThreadRecordingKeyring
) -> None:
    enrolled = await admin.enroll("Laptop behind a proxy", "sender")
    stale = enrolled.with_xmpp(dataclasses.replace(enrolled.xmpp, password="not-the-password"))
    resolver = RecordingResolver()

    stream, healed = await connect_xmpp(stale, service=SERVICE, timeout=10, resolver=resolver)
    try:
        assert stream.connected
    finally:
        await stream.aclose()

    api = urlsplit(enrolled.api_url)
    assert (api.hostname, api.port) in resolver.asked, "the credential rotation bypassed the proxy settings"
    assert (enrolled.xmpp.host, enrolled.xmpp.port) in resolver.asked
    assert healed.xmpp.password not in (stale.xmpp.password, enrolled.xmpp.password)
    assert await asyncio.to_thread(store.load, SERVICE) == healed
    assert recording_keyring.writers, "the new credentials were not saved"
    assert threading.main_thread() not in recording_keyring.writers, "a keyring call ran on the event loop"
