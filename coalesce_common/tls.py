"""The TLS policy of every Coalesce endpoint, and the identity and contexts of the local signaling channel.

The policy ("modern"): TLS 1.3, and TLS 1.2 with ECDHE key exchange and AEAD ciphers only
(:data:`TLS12_CIPHERS`: AES-GCM and ChaCha20-Poly1305; no CBC, CAMELLIA, ARIA, CCM, no RSA key exchange,
no DHE, which would need well-chosen DH parameters on every server and buys nothing once ECDHE is there).
TLS 1.3 suites are all AEAD with forward secrecy already, so only the 1.2 list is spelled out.
:data:`CIPHER_LIST` is that list in OpenSSL's syntax, which Python's ``ssl``, ejabberd (fast_tls) and coturn
all read; the receiver, the sender, the REST API, ejabberd and coturn (managed and ``deploy/``) take it from
here.

A receiver creates its own ECDSA P-256 key and self-signed certificate on first run and keeps them
(0600) in its data folder. Nobody vouches for it through a CA: senders trust it because PIN pairing
confirms its fingerprint, or because mDNS advertised that fingerprint. So client contexts do not check
the chain; they hand the peer certificate's fingerprint to the caller to verify.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import logging
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

logger = logging.getLogger(__name__)

CERT_FILE = "receiver-cert.pem"
KEY_FILE = "receiver-key.pem"

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2
TLS12_CIPHERS: tuple[str, ...] = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
)
"""The TLS 1.2 suites (OpenSSL names) any Coalesce endpoint accepts, in Mozilla's order (ejabberd, with
cipher_server_preference, prefers them so)."""
CIPHER_LIST = ":".join(TLS12_CIPHERS)


def apply_policy(ctx: ssl.SSLContext) -> ssl.SSLContext:
    """Restrict ``ctx`` to the policy: TLS 1.2 or later, :data:`TLS12_CIPHERS` for 1.2. Returns ``ctx``."""
    ctx.minimum_version = MINIMUM_VERSION
    ctx.set_ciphers(CIPHER_LIST)
    return ctx


def policy_context_factory(_config: object, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """``default()`` (a server's own context: certificate, ALPN) under the policy; the shape of uvicorn's
    ``ssl_context_factory``, whose ``ssl_version`` cannot say "1.2 or later"."""
    return apply_policy(default())


@dataclass(frozen=True)
class TlsIdentity:
    cert_path: Path
    key_path: Path
    fingerprint: str  # "AB:CD:..." SHA-256 of the DER certificate


def fingerprint_of_der(der: bytes) -> str:
    """SHA-256 fingerprint of a DER certificate as upper-case colon-separated hex (as SDP writes it)."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def normalise_fingerprint(text: str) -> str:
    """Accept ``ab:cd..``, ``ABCD..`` or ``sha-256 AB:..`` and return the canonical ``AB:CD:..`` form."""
    hexdigits = "".join(c for c in text.split()[-1] if c not in ":").upper()
    return ":".join(hexdigits[i : i + 2] for i in range(0, len(hexdigits), 2))


def load_or_create_identity(data_dir: Path, common_name: str = "Coalesce receiver") -> TlsIdentity:
    """Load the receiver's certificate and key from ``data_dir``, creating them (0600) on first run."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path = data_dir / CERT_FILE, data_dir / KEY_FILE
    if not (cert_path.exists() and key_path.exists()):
        _create(cert_path, key_path, common_name)
        logger.info("created a new TLS identity in %s", data_dir)
    for path in (cert_path, key_path):
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    fingerprint = fingerprint_of_der(cert.public_bytes(serialization.Encoding.DER))
    return TlsIdentity(cert_path, key_path, fingerprint)


def _create(cert_path: Path, key_path: Path, common_name: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64] or "Coalesce receiver")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(key_path, key_pem)
    _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def server_context(identity: TlsIdentity) -> ssl.SSLContext:
    """A server context under the policy (:func:`apply_policy`)."""
    ctx = apply_policy(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    ctx.load_cert_chain(identity.cert_path, identity.key_path)
    return ctx


def client_context() -> ssl.SSLContext:
    """A client context that defers trust to fingerprint checks (pairing or mDNS pinning)."""
    ctx = apply_policy(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
