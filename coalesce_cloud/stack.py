"""A whole cloud on one machine: CA and certificates, ejabberd, coturn and the REST API (HTTPS).

``coalesce-cloud up`` runs it for development and demos; the end-to-end tests run the same stack. All
state (certificates, secrets, database, server configs and logs) lives in one folder; every port is
configurable and defaults to a free one. :meth:`LocalCloud.listeners` names every port the stack opens and
what for: all are bound to ``host`` except ejabberd's admin API and the Erlang distribution port, which are
on 127.0.0.1 whatever ``host`` is (there is no epmd, no XMPP component port and no server-to-server port).
Stopping is prompt: idle HTTPS keep-alive clients do not hold it up (:class:`_ApiServer`), and a killed
stack leaves no server behind (:mod:`coalesce_cloud.servers.process`). Production runs the pieces
separately (``deploy/``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import SecretStr

from coalesce_cloud.api.app import create_app
from coalesce_cloud.api.share_page import SHARE_PATH
from coalesce_cloud.core.config import Settings, TurnRegion, TurnSettings, XmppSettings
from coalesce_cloud.servers.certs import CaFiles, issue_server_cert, make_ca
from coalesce_cloud.servers.coturn import CoturnConfig, CoturnServer
from coalesce_cloud.servers.ejabberd import EjabberdConfig, EjabberdNode
from coalesce_cloud.servers.ejabberd.config import WEBSOCKET_PATH
from coalesce_cloud.servers.errors import ServerStartError
from coalesce_common.tls import policy_context_factory

logger = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """One free port. Several calls may give the same port: pick a set with :meth:`StackPorts.fill`."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _PortPicker:
    """Free ports, all different: each stays bound until the picker closes, so the kernel cannot hand
    the same number out twice, nor give a TCP pick the number that another pick holds for UDP."""

    def __init__(self, given: Iterable[int]) -> None:
        self._held = contextlib.ExitStack()
        self._taken = {port for port in given if port}

    def pick(self, host: str, *kinds: int) -> int:
        """A port free on ``host`` for every socket type in ``kinds`` (coturn's port is UDP and TCP)."""
        for _ in range(100):
            with contextlib.ExitStack() as attempt:
                first = attempt.enter_context(socket.socket(socket.AF_INET, kinds[0]))
                first.bind((host, 0))
                port = int(first.getsockname()[1])
                if port in self._taken:
                    continue
                try:
                    for kind in kinds[1:]:
                        attempt.enter_context(socket.socket(socket.AF_INET, kind)).bind((host, port))
                except OSError:
                    continue
                self._held.enter_context(attempt.pop_all())
                self._taken.add(port)
                return port
        raise OSError(f"found no port on {host} free for all of {kinds}")

    def close(self) -> None:
        self._held.close()


def _secret_file(path: Path, length: int = 32) -> str:
    """A random secret kept (0600) in ``path``, created on first use."""
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(length)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


SHUTDOWN_GRACE_SECONDS = 3
"""How long a request still running at shutdown may take to finish before it is cancelled."""
CLOSED_CONNECTION_POLL_SECONDS = 0.05
"""uvicorn offers no event for a connection it closed; it polls its own set every 0.1 s."""


class _ApiServer(uvicorn.Server):
    """uvicorn without its signal handlers (whoever runs the stack owns SIGINT and SIGTERM), and with a
    shutdown that does not wait for idle clients.

    At shutdown uvicorn closes the idle keep-alive connections and waits until every connection is gone.
    Over TLS a closed connection lingers until the client answers our close_notify, which a client that
    leaves its idle socket unread (http.client, requests, a suspended laptop) does only when it next looks,
    or until asyncio gives up after 30 s: one such client held ``coalesce-cloud up`` at "stopping…". A
    connection whose close has flushed everything owes the client nothing more (TLS does not ask the
    closing side to wait for the peer's close_notify: RFC 8446 §6.1, RFC 5246 §7.2.1), so it is aborted.
    Requests still running get :data:`SHUTDOWN_GRACE_SECONDS`.
    """

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        dropping = asyncio.ensure_future(self._drop_closed_connections())
        try:
            await super().shutdown(sockets)
        finally:
            dropping.cancel()

    async def _drop_closed_connections(self) -> None:
        while True:
            for connection in list(self.server_state.connections):
                transport = connection.transport
                if transport.is_closing() and not transport.get_write_buffer_size():
                    transport.abort()
            await asyncio.sleep(CLOSED_CONNECTION_POLL_SECONDS)


LOOPBACK = "127.0.0.1"
"""Where the servers' control ports listen, whatever ``host`` is: nothing but this machine may reach them."""
RELAY_PORTS = 40
"""Size of the TURN relay range chosen when none is given: one port per allocation, plenty for a demo."""


@dataclass(frozen=True)
class Listener:
    """One address the local cloud listens on, and what for."""

    host: str
    port: int
    transport: str
    """``tcp``, ``udp`` or ``tcp+udp``."""
    purpose: str
    last_port: int | None = None
    """The end of a range that starts at ``port`` (the TURN relay ports)."""

    def __str__(self) -> str:
        ports = f"{self.port}-{self.last_port}" if self.last_port is not None else str(self.port)
        return f"{self.host}:{ports} {self.transport}"


@dataclass
class StackPorts:
    api: int = 0
    xmpp_starttls: int = 0
    xmpp_tls: int = 0
    xmpp_websocket: int = 0
    xmpp_admin_api: int = 0
    erlang_dist: int = 0
    turn: int = 0
    turn_tls: int = 0
    relay_min: int = 0
    relay_max: int = 0

    def fill(self, host: str) -> None:
        """Give every port left at 0 a free one, no two the same, none the same as a port given."""
        given = (self.api, self.xmpp_starttls, self.xmpp_tls, self.xmpp_websocket, self.xmpp_admin_api,
                 self.erlang_dist, self.turn, self.turn_tls)  # fmt: skip
        picker = _PortPicker(given)
        try:
            for name in ("api", "xmpp_starttls", "xmpp_tls", "xmpp_websocket", "turn_tls"):
                if not getattr(self, name):
                    setattr(self, name, picker.pick(host, socket.SOCK_STREAM))
            for name in ("xmpp_admin_api", "erlang_dist"):
                if not getattr(self, name):
                    setattr(self, name, picker.pick(LOOPBACK, socket.SOCK_STREAM))
            if not self.turn:  # coturn listens on it for TURN over UDP and over TCP
                self.turn = picker.pick(host, socket.SOCK_DGRAM, socket.SOCK_STREAM)
        finally:
            picker.close()
        if not self.relay_min:
            self.relay_min = 49160 + (free_port(host, socket.SOCK_DGRAM) % 4000)
            if self.relay_min <= self.turn < self.relay_min + RELAY_PORTS:
                self.relay_min = self.turn + 1
            self.relay_max = self.relay_min + RELAY_PORTS - 1


@dataclass
class LocalCloud:
    state_dir: Path
    host: str = "127.0.0.1"
    domain: str = "coalesce.test"
    ports: StackPorts = field(default_factory=StackPorts)
    meeting_ttl_seconds: int = 12 * 3600
    web_guest_sweep_seconds: float = 30.0

    ca: CaFiles | None = None
    ejabberd: EjabberdNode | None = None
    coturn: CoturnServer | None = None
    settings: Settings | None = None
    _api: uvicorn.Server | None = None
    _api_task: asyncio.Task[None] | None = None

    @property
    def api_url(self) -> str:
        return f"https://{self.host}:{self.ports.api}"

    @property
    def websocket_url(self) -> str:
        """Where web guests' browsers speak XMPP (RFC 7395), as the API tells them."""
        return f"wss://{self.host}:{self.ports.xmpp_websocket}{WEBSOCKET_PATH}"

    @property
    def share_page_url(self) -> str:
        """The browser sharing page (served by the API)."""
        return f"{self.api_url}{SHARE_PATH}"

    @property
    def ca_file(self) -> str:
        assert self.ca is not None
        return str(self.ca.cert)

    @property
    def admin_token(self) -> str:
        return _secret_file(self.state_dir / "admin-token")

    def listeners(self) -> list[Listener]:
        """Every port the stack listens on (once started), bound to ``host`` unless said otherwise."""
        ports, host = self.ports, self.host
        return [
            Listener(host, ports.api, "tcp", "REST API (HTTPS)"),
            Listener(host, ports.xmpp_starttls, "tcp", "XMPP, STARTTLS required (ejabberd)"),
            Listener(host, ports.xmpp_tls, "tcp", "XMPP, direct TLS (ejabberd)"),
            Listener(
                host, ports.xmpp_websocket, "tcp", "XMPP over WebSocket, TLS, for browser guests (ejabberd)"
            ),
            Listener(
                LOOPBACK, ports.xmpp_admin_api, "tcp", "ejabberd admin API for the REST API, loopback only"
            ),
            Listener(
                LOOPBACK, ports.erlang_dist, "tcp", "Erlang distribution for ejabberdctl, loopback only"
            ),
            Listener(host, ports.turn, "tcp+udp", "STUN/TURN (coturn)"),
            Listener(host, ports.turn_tls, "tcp", "TURN over TLS (coturn; no DTLS listener)"),
            Listener(
                host,
                ports.relay_min,
                "udp",
                "TURN relay ports, opened per allocation",
                last_port=ports.relay_max,
            ),
        ]

    async def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.ports.fill(self.host)
        hosts = [self.host, "localhost", self.domain]
        self.ca = ca = make_ca(self.state_dir / "ca")
        api_cert = issue_server_cert(ca, self.state_dir / "certs", "api", hosts)
        xmpp_cert = issue_server_cert(ca, self.state_dir / "certs", "xmpp", hosts)
        turn_cert = issue_server_cert(ca, self.state_dir / "certs", "turn", hosts)
        turn_secret = _secret_file(self.state_dir / "turn-secret")
        xmpp_api_password = _secret_file(self.state_dir / "xmpp-api-password")
        try:
            self.ejabberd = EjabberdNode(
                EjabberdConfig(
                    state_dir=self.state_dir / "ejabberd",
                    certfile=xmpp_cert.combined,
                    c2s_port=self.ports.xmpp_starttls,
                    c2s_tls_port=self.ports.xmpp_tls,
                    http_api_port=self.ports.xmpp_admin_api,
                    dist_port=self.ports.erlang_dist,
                    ca_file=ca.cert,
                    host=self.host,
                    http_api_host=LOOPBACK,
                    domain=self.domain,
                    api_password=xmpp_api_password,
                    websocket_port=self.ports.xmpp_websocket,
                    websocket_origins=(self.api_url,),
                )
            )
            self.coturn = CoturnServer(
                CoturnConfig(
                    state_dir=self.state_dir / "coturn",
                    certfile=turn_cert.cert,
                    keyfile=turn_cert.key,
                    listening_port=self.ports.turn,
                    tls_port=self.ports.turn_tls,
                    relay_min_port=self.ports.relay_min,
                    relay_max_port=self.ports.relay_max,
                    host=self.host,
                    realm=self.domain,
                    static_auth_secret=turn_secret,
                )
            )
            await asyncio.gather(self.ejabberd.async_start(), self.coturn.async_start())
            self.settings = Settings(
                state_dir=self.state_dir,
                public_url=self.api_url,
                admin_token=SecretStr(self.admin_token),
                meeting_ttl=datetime.timedelta(seconds=self.meeting_ttl_seconds),
                web_guest_sweep_every=datetime.timedelta(seconds=self.web_guest_sweep_seconds),
                tls_cert=api_cert.cert,
                tls_key=api_cert.key,
                xmpp=XmppSettings(
                    domain=self.domain,
                    host=self.host,
                    starttls_port=self.ports.xmpp_starttls,
                    tls_port=self.ports.xmpp_tls,
                    api_url=self.ejabberd.api_url,
                    api_user=self.ejabberd.config.api_user,
                    api_password=SecretStr(xmpp_api_password),
                    websocket_url=self.websocket_url,
                ),
                turn=TurnSettings(
                    static_auth_secret=SecretStr(turn_secret),
                    regions=[
                        TurnRegion(
                            name="local",
                            host=self.host,
                            port=self.ports.turn,
                            tls_port=self.ports.turn_tls,
                            # Firefox relays over TLS only to a name (the certificate carries localhost)
                            tls_host="localhost" if self.host == "127.0.0.1" else None,
                        )
                    ],
                ),
            )
            await self._start_api(self.settings, api_cert.cert, api_cert.key)
        except BaseException:
            await self.aclose()
            raise
        self._write_summary()

    async def _start_api(self, settings: Settings, cert: Path, key: Path) -> None:
        config = uvicorn.Config(
            create_app(settings),
            host=self.host,
            port=self.ports.api,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            ssl_context_factory=policy_context_factory,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        )
        self._api = server = _ApiServer(config)
        self._api_task = asyncio.ensure_future(server.serve())
        while not server.started:
            if self._api_task.done():
                self._api_task.result()
                raise ServerStartError("the REST API stopped while starting; its log above says why")
            await asyncio.sleep(0.02)  # uvicorn offers no started event; this waits for its flag

    def _write_summary(self) -> None:
        summary: dict[str, Any] = {
            "api_url": self.api_url,
            "ca_file": self.ca_file,
            "admin_token_file": str(self.state_dir / "admin-token"),
            "xmpp": {
                "domain": self.domain,
                "starttls_port": self.ports.xmpp_starttls,
                "tls_port": self.ports.xmpp_tls,
                "websocket_url": self.websocket_url,
            },
            "share_page_url": self.share_page_url,
            "turn": {"port": self.ports.turn, "tls_port": self.ports.turn_tls},
            "listeners": [
                {"address": str(listener), "purpose": listener.purpose} for listener in self.listeners()
            ],
        }
        (self.state_dir / "cloud.json").write_text(json.dumps(summary, indent=2) + "\n")

    async def aclose(self) -> None:
        if self._api is not None and self._api_task is not None:
            self._api.should_exit = True
            with contextlib.suppress(Exception):
                await self._api_task
            self._api = self._api_task = None
        if self.coturn is not None:
            await self.coturn.aclose()
        if self.ejabberd is not None:
            await self.ejabberd.aclose()

    async def __aenter__(self) -> LocalCloud:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
