"""A slixmpp client for the server tests whose events are futures and queues (waited on with timeouts)."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import slixmpp

EVENT_TIMEOUT = 15.0


class TestClient:
    """``await TestClient.login(...)`` returns a client with a started session (initial presence sent)."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, jid: str, password: str, ssl_context: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        self.xmpp = slixmpp.ClientXMPP(jid, password)
        self.xmpp.ssl_context = ssl_context
        self.session_started: asyncio.Future[None] = loop.create_future()
        self.disconnected: asyncio.Future[None] = loop.create_future()
        self.messages: asyncio.Queue[Any] = asyncio.Queue()
        self.xmpp.add_event_handler("session_start", self._on_session_start)
        self.xmpp.add_event_handler("failed_all_auth", self._on_auth_failed)
        self.xmpp.add_event_handler("disconnected", self._on_disconnected)
        self.xmpp.add_event_handler("connection_failed", self._on_connection_failed)
        self.xmpp.add_event_handler("message", self.messages.put_nowait)

    @classmethod
    async def login(
        cls,
        jid: str,
        password: str,
        *,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        direct_tls: bool,
    ) -> TestClient:
        client = cls(jid, password, ssl_context)
        # Exactly one way in, so the test knows which listener it used.
        client.xmpp.enable_direct_tls = direct_tls
        client.xmpp.enable_starttls = not direct_tls
        client.xmpp.enable_plaintext = False
        client.xmpp.connect(host, port)
        try:
            await asyncio.wait_for(asyncio.shield(client.session_started), EVENT_TIMEOUT)
        except BaseException:
            client.xmpp.abort()
            raise
        return client

    @property
    def sasl_mechanism(self) -> str:
        mechanism = self.xmpp.plugin["feature_mechanisms"].mech
        assert mechanism is not None, "no SASL mechanism was chosen"
        return str(mechanism.name)

    @property
    def offered_mechanisms(self) -> set[str]:
        return set(self.xmpp.plugin["feature_mechanisms"].mech_list)

    @property
    def tls_version(self) -> str | None:
        transport = self.xmpp.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        return ssl_object.version() if ssl_object is not None else None

    def send_chat(self, to: str, body: str) -> None:
        self.xmpp.send_message(mto=slixmpp.JID(to), mbody=body, mtype="chat")

    async def next_message(self) -> Any:
        return await asyncio.wait_for(self.messages.get(), EVENT_TIMEOUT)

    async def wait_disconnected(self) -> None:
        await asyncio.wait_for(asyncio.shield(self.disconnected), EVENT_TIMEOUT)

    async def close(self) -> None:
        if not self.disconnected.done():
            self.xmpp.disconnect()
            try:
                await self.wait_disconnected()
            except TimeoutError:
                self.xmpp.abort()

    def _on_session_start(self, _event: Any) -> None:
        self.xmpp.send_presence()
        if not self.session_started.done():
            self.session_started.set_result(None)

    def _on_auth_failed(self, _event: Any) -> None:
        if not self.session_started.done():
            self.session_started.set_exception(PermissionError("authentication failed"))

    def _on_connection_failed(self, error: Any) -> None:
        if not self.session_started.done():
            self.session_started.set_exception(ConnectionError(f"connection failed: {error}"))

    def _on_disconnected(self, _event: Any) -> None:
        if not self.disconnected.done():
            self.disconnected.set_result(None)
        if not self.session_started.done():
            self.session_started.set_exception(ConnectionError("disconnected before the session started"))
