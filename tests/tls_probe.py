"""A TLS scanner for the policy tests: which protocol versions and TLS 1.2 suites a server accepts.

One connection per probe with Python's ``ssl`` (the same OpenSSL the servers use): every TLS 1.2 suite
this OpenSSL knows (``ALL:COMPLEMENTOFALL`` at security level 0, so nothing is left out on our side),
TLS 1.0 and 1.1 with any suite, and TLS 1.3. A probe that fails (an alert, a reset, or no answer within
``timeout``) counts as refused; :func:`scan` against a deliberately permissive server shows that the
client side really offers what it probes. XMPP servers are probed after STARTTLS when ``xmpp_domain``
is given.
"""

from __future__ import annotations

import socket
import ssl
import warnings
from dataclasses import dataclass

_ANY_SUITE = "ALL:COMPLEMENTOFALL:@SECLEVEL=0"
_OLD_VERSIONS = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)


@dataclass(frozen=True)
class Scan:
    tls12_suites: frozenset[str]
    """TLS 1.2 suites the server accepted."""
    old_versions: frozenset[str]
    """TLS 1.0/1.1 versions the server accepted (``TLSv1``, ``TLSv1.1``)."""
    tls13: bool


def tls12_suite_names() -> list[str]:
    """Every suite (OpenSSL name) this OpenSSL can offer in a TLS 1.2 ClientHello."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers(_ANY_SUITE)
    return [c["name"] for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"]


def client_context(
    minimum: ssl.TLSVersion, maximum: ssl.TLSVersion, ciphers: str = _ANY_SUITE
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # offering TLS 1.0/1.1 is deprecated: that is the point here
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version, ctx.maximum_version = minimum, maximum
    ctx.set_ciphers(ciphers)
    return ctx


def handshake(
    host: str, port: int, ctx: ssl.SSLContext, *, xmpp_domain: str | None = None, timeout: float = 3.0
) -> tuple[str, str] | None:
    """(version, suite) if the handshake completes, None if the server refuses it."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            if xmpp_domain is not None:
                _starttls(raw, xmpp_domain)
            with ctx.wrap_socket(raw, server_hostname=xmpp_domain or host) as tls:
                version, cipher = tls.version(), tls.cipher()
                assert version is not None and cipher is not None
                return version, cipher[0]
    except (ssl.SSLError, OSError):  # alerts, resets, EOF and timeouts alike
        return None


def scan(host: str, port: int, *, xmpp_domain: str | None = None) -> Scan:
    tls12 = ssl.TLSVersion.TLSv1_2
    suites = frozenset(
        suite
        for suite in tls12_suite_names()
        if handshake(
            host, port, client_context(tls12, tls12, f"{suite}:@SECLEVEL=0"), xmpp_domain=xmpp_domain
        )
    )
    old = frozenset(
        result[0]
        for version in _OLD_VERSIONS
        if (result := handshake(host, port, client_context(version, version), xmpp_domain=xmpp_domain))
    )
    tls13 = ssl.TLSVersion.TLSv1_3
    result = handshake(host, port, client_context(tls13, tls13), xmpp_domain=xmpp_domain)
    return Scan(suites, old, result is not None and result[0] == "TLSv1.3")


def _starttls(sock: socket.socket, domain: str) -> None:
    sock.sendall(
        f"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        f"xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>".encode()
    )
    _read_until(sock, b"</stream:features")
    sock.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    _read_until(sock, b"<proceed")


def _read_until(sock: socket.socket, marker: bytes) -> None:
    """Read until ``marker`` and the end of the tag it starts (no TLS bytes follow before we answer)."""
    seen = b""
    while marker not in seen or b">" not in seen[seen.index(marker) :]:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"the server closed the stream before {marker!r}")
        seen += chunk
