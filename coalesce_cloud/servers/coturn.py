"""coturn (STUN/TURN) as a child process, and the TURN REST API credentials it accepts.

:class:`CoturnServer` writes ``turnserver.conf`` under ``CoturnConfig.state_dir`` (mode 0600: it holds the
shared secret) and runs ``turnserver -c`` in the foreground. It listens on ``host`` for UDP and TCP on
``listening_port`` and for TLS on ``tls_port``, relays on ``host`` within ``relay_min_port..relay_max_port``,
and accepts only time-limited REST credentials (``use-auth-secret``) made by :func:`turn_rest_credentials`
with the same ``static_auth_secret``. Loopback peers are allowed, so clients and peers on one machine work.

TLS follows :mod:`coalesce_common.tls` as far as coturn 4.6.1 (Debian 12) can: TLS 1.2 with the policy's
ECDHE AEAD suites only (``cipher-list``, ``no-tlsv1``, ``no-tlsv1_1``), no DTLS listener. It cannot offer
TLS 1.3, whatever the configuration (:data:`NO_TLS13_WHY`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from coalesce_cloud.servers._fs import write_file
from coalesce_cloud.servers.process import (
    DEFAULT_START_TIMEOUT,
    ManagedProcess,
    ServerLifecycle,
    find_executable,
    tcp_port_accepts,
)
from coalesce_common.tls import CIPHER_LIST

log = logging.getLogger(__name__)

NO_TLS13_WHY = (
    "coturn 4.6.1 offers no TLS 1.3: it peeks at the ClientHello's legacy version (always 1.2 since\n"
    "TLS 1.3, RFC 8446 4.1.2) and hands the connection to a context made with TLSv1_2_server_method()\n"
    "(ns_ioalib_engine_impl.c check_tentative_tls, mainrelay.c openssl_load_certificates); no option\n"
    "changes that. coturn 4.6.2 uses one TLS_server_method() context and negotiates TLS 1.3."
)


def turn_rest_credentials(secret: str, user: str, ttl: int, now: float | None = None) -> tuple[str, str]:
    """TURN REST API credentials valid for ``ttl`` seconds from ``now`` (default: the current time).

    Returns ``(username, password)`` with ``username = f"{expiry}:{user}"`` (expiry in Unix seconds) and
    ``password = base64(HMAC-SHA1(secret, username))``, the scheme coturn checks with ``use-auth-secret``
    (draft-uberti-behave-turn-rest-00). The password is a secret: never log it.
    """
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    if not user:
        raise ValueError("user must not be empty")
    issued = time.time() if now is None else now
    username = f"{int(issued) + ttl}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class CoturnConfig:
    state_dir: Path
    certfile: Path
    """Certificate chain (PEM) for TLS, e.g. ``CertFiles.cert``."""
    keyfile: Path
    listening_port: int
    """UDP and TCP."""
    tls_port: int
    """TLS over TCP (443 in production, where HTTP proxies let it through)."""
    relay_min_port: int
    relay_max_port: int
    host: str = "127.0.0.1"
    """Address to listen on and to relay from."""
    realm: str = "coalesce.test"
    static_auth_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.relay_min_port <= self.relay_max_port <= 65535:
            raise ValueError("relay ports must satisfy 0 < relay_min_port <= relay_max_port <= 65535")

    @property
    def config_file(self) -> Path:
        return self.state_dir / "turnserver.conf"


def render_turnserver_conf(config: CoturnConfig) -> str:
    state = config.state_dir
    lines = [
        "# Written by coalesce_cloud.servers.coturn; rewritten on every start. Holds a secret: mode 0600.",
        f"listening-ip={config.host}",
        f"relay-ip={config.host}",
        f"listening-port={config.listening_port}",
        f"tls-listening-port={config.tls_port}",
        f"min-port={config.relay_min_port}",
        f"max-port={config.relay_max_port}",
        f"realm={config.realm}",
        "use-auth-secret",
        f"static-auth-secret={config.static_auth_secret}",
        "fingerprint",
        f"cert={config.certfile}",
        f"pkey={config.keyfile}",
        *(f"# {line}" for line in NO_TLS13_WHY.splitlines()),
        "# TLS 1.2: the ECDHE AEAD suites of coalesce_common/tls.py only.",
        f"cipher-list={CIPHER_LIST}",
        "no-tlsv1",
        "no-tlsv1_1",
        # Nothing reaches TURN over DTLS (browsers and aiortc use UDP, TCP and TLS), as in deploy/coturn.
        "no-dtls",
        # Without it, relaying to 127.0.0.1 peers times out (everything is on one machine in dev and tests).
        "allow-loopback-peers",
        "no-multicast-peers",
        "no-cli",
        "no-software-attribute",
        f"userdb={state / 'turndb'}",
        f"pidfile={state / 'turnserver.pid'}",
        "log-file=stdout",
        "simple-log",
    ]
    return "\n".join(lines) + "\n"


class CoturnServer(ServerLifecycle):
    """One turnserver. ``start``/``stop`` block; ``async_start``/``aclose`` run them in a thread."""

    def __init__(self, config: CoturnConfig) -> None:
        self.config = config
        self._process: ManagedProcess | None = None

    def __repr__(self) -> str:
        return f"<CoturnServer {self.config.host}:{self.config.listening_port} running={self.running}>"

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def listening_port(self) -> int:
        return self.config.listening_port

    @property
    def tls_port(self) -> int:
        return self.config.tls_port

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @property
    def urls(self) -> list[str]:
        """ICE server URLs for this server: TURN over UDP, TCP and TLS."""
        host, port, tls_port = self.config.host, self.config.listening_port, self.config.tls_port
        return [
            f"turn:{host}:{port}?transport=udp",
            f"turn:{host}:{port}?transport=tcp",
            f"turns:{host}:{tls_port}?transport=tcp",
        ]

    def credentials(self, user: str, ttl: int = 3600) -> tuple[str, str]:
        """REST credentials this server accepts, valid for ``ttl`` seconds."""
        return turn_rest_credentials(self.config.static_auth_secret, user, ttl)

    def start(self, *, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Write the configuration, start turnserver, and wait until its TCP and TLS ports accept."""
        config = self.config
        turnserver = find_executable("turnserver", package="coturn")
        config.state_dir.mkdir(parents=True, exist_ok=True)
        write_file(config.config_file, render_turnserver_conf(config), mode=0o600)
        self._process = ManagedProcess(
            "turnserver",
            [str(turnserver), "-c", str(config.config_file)],
            log_path=config.state_dir / "turnserver.log",
            cwd=config.state_dir,
        )
        self._process.start(self._ready, timeout=timeout)

    def _ready(self) -> bool:
        config = self.config
        return tcp_port_accepts(config.host, config.listening_port) and tcp_port_accepts(
            config.host, config.tls_port
        )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a timeout. Safe to call again."""
        if self._process is not None:
            self._process.stop()
