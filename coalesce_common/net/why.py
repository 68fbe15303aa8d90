"""Low-level errors in plain words: what happened on the way to a host, and what to check.

The OS, OpenSSL and the libraries above them name their errors for programmers
(``ConnectionRefusedError: [Errno 111] Connect call failed``, ``gaierror: [Errno -2] Name or service not
known``, ``SSLCertVerificationError: ... self-signed certificate``). Every boundary that shows a network
failure to a person (LAN signaling, the REST client, XMPP, the proxy connector, the doctor, the admin CLI)
passes the exception to :func:`describe_os_error` for one sentence instead, and keeps the exception itself
for the log and for ``raise ... from exc``.

The sentence is chosen by exception type, errno and OpenSSL verify code, never by message text, and it
never carries an errno number or a class name. Wrapped errors (httpx around httpcore around the
``OSError``; websockets' handshake errors; the exception group of a multi-address connect) are unwrapped
to the lowest error that says what happened.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator

# OpenSSL's X509_V_ERR_* codes (``SSLCertVerificationError.verify_code``) that call for another check than
# "trust the certificate authority".
_CERT_NOT_YET_VALID = 9
_CERT_HAS_EXPIRED = 10
_HOSTNAME_MISMATCH = 62
_IP_ADDRESS_MISMATCH = 64

_REFUSED = {errno.ECONNREFUSED}
_TIMED_OUT = {errno.ETIMEDOUT}
_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}
_RESET = {errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE}
_FORBIDDEN = {errno.EACCES, errno.EPERM}

_MAX_DEPTH = 16


def where(host: str, port: int | None = None) -> str:
    """``host:port`` for messages, with brackets around an IPv6 address."""
    if port is None:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def describe_os_error(
    exc: BaseException,
    host: str,
    port: int | None = None,
    *,
    peer: str = "the server",
    how_to_trust: str = "",
) -> str:
    """One sentence, without a capital or a full stop, saying what ``exc`` means for reaching ``host``.

    ``peer`` names what should be listening there, for the advice (``"the room display"``, ``"the
    Coalesce cloud"``); ``how_to_trust`` says how to give a private CA's certificate (``"with --ca FILE"``).
    Callers embed the sentence: ``f"Could not reach the receiver: {why}."``.
    """
    at = where(host, port)
    for cause in _chain(exc):
        sentence = _sentence(cause, host, at, peer, how_to_trust)
        if sentence is not None:
            return sentence
    return f"the connection to {at} failed; check the address, the network and the proxy settings"


def describe_ca_file_error(exc: BaseException, path: str) -> str:
    """Why the CA certificate file ``path`` cannot be used (``load_verify_locations`` raised ``exc``)."""
    if isinstance(exc, FileNotFoundError):
        return f"there is no file {path}; check the path of the CA certificate"
    if isinstance(exc, PermissionError):
        return f"this user may not read {path}; check the file's permissions"
    if isinstance(exc, IsADirectoryError):
        return f"{path} is a folder; give the CA certificate file inside it"
    if isinstance(exc, ssl.SSLError):
        return f"{path} holds no PEM certificate; give the CA certificate (a file starting -----BEGIN)"
    return f"{path} cannot be read; check that it is a CA certificate file this user may read"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what it wraps, outer first: its cause and context, the members of an exception group,
    and exceptions passed as arguments (httpcore and python-socks wrap the original that way).

    A suppressed context is followed too: httpcore raises its own errors ``from None``-style over the
    ``OSError`` that says what happened.
    """
    seen: set[int] = set()
    pending = [exc]
    while pending and len(seen) < _MAX_DEPTH:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        pending.extend(inner for inner in (current.__cause__, current.__context__) if inner is not None)


def _sentence(exc: BaseException, host: str, at: str, peer: str, how_to_trust: str) -> str | None:
    """The sentence for this one error, or ``None`` when it says nothing more than its wrapper."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _untrusted(exc, host, peer, how_to_trust)
    if isinstance(exc, ssl.SSLError):
        if exc.reason == "WRONG_VERSION_NUMBER":  # OpenSSL's reason code, not a message
            return f"{at} does not speak TLS; check the port"
        return (
            f"the secure (TLS) connection to {at} failed; check the address and port, and that no proxy "
            "or firewall that inspects traffic is in the way"
        )
    if isinstance(exc, OSError) and exc.filename is not None:
        return None  # a file error (a CA file, say) is not about the way to the host
    code = exc.errno if isinstance(exc, OSError) else None
    if isinstance(exc, socket.gaierror):
        return f"the name {host} could not be found; check its spelling and this computer's network or DNS"
    if isinstance(exc, ConnectionRefusedError) or code in _REFUSED:
        return f"nothing is listening at {at}; check the address and port, and that {peer} is running"
    if isinstance(exc, TimeoutError) or code in _TIMED_OUT:
        return f"{at} did not answer in time; check the address, and that no firewall drops the connection"
    if code in _UNREACHABLE:
        return (
            f"{at} cannot be reached from this network; check that this computer is on the right network "
            "(Wi-Fi, VPN)"
        )
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError | EOFError) or (
        code in _RESET
    ):
        return (
            f"{at} closed the connection at once; check the port, and that no firewall or proxy blocks "
            "the connection"
        )
    if code in _FORBIDDEN:
        return f"this computer's firewall does not allow connections to {at}"
    return None


def _untrusted(exc: ssl.SSLCertVerificationError, host: str, peer: str, how_to_trust: str) -> str:
    if exc.verify_code == _CERT_HAS_EXPIRED:
        return f"the certificate of {host} has expired; its administrator must renew it"
    if exc.verify_code == _CERT_NOT_YET_VALID:
        return f"the certificate of {host} is not valid yet; check this computer's date and time"
    if exc.verify_code in (_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH):
        return (
            f"the certificate of {host} is made out to another name; check the address (use the name the "
            "certificate is for)"
        )
    return (
        f"the certificate of {host} is not trusted; check the address, and if {peer} has a certificate "
        f"authority of its own, give its CA certificate{f' {how_to_trust}' if how_to_trust else ''}"
    )
