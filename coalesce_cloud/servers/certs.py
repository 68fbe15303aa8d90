"""A private certificate authority and server certificates for the cloud's servers (dev and tests).

:func:`make_ca` creates (or reuses) an ECDSA P-256 CA in a directory; :func:`issue_server_cert` issues (or
reuses) a server certificate signed by it, with subjectAltNames for DNS names and IP addresses. Keys are
written with mode 0600. Clients trust ``CaFiles.cert``; ejabberd reads ``CertFiles.combined`` (leaf, CA,
key in one PEM); coturn reads ``cert`` (leaf + CA) and ``key``.

Both functions are idempotent: existing files are reused as long as they still fit (same CA, same names,
not about to expire), otherwise they are replaced.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from coalesce_cloud.servers._fs import write_file, write_private_file

log = logging.getLogger(__name__)

CA_VALIDITY = datetime.timedelta(days=3650)
SERVER_VALIDITY = datetime.timedelta(days=397)
RENEW_BEFORE = datetime.timedelta(days=30)
BACKDATE = datetime.timedelta(minutes=5)  # tolerate clocks slightly behind ours
CA_COMMON_NAME = "Coalesce development CA"


@dataclass(frozen=True)
class CaFiles:
    """A CA: ``cert`` is what clients trust; ``key`` (0600) signs server certificates."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class CertFiles:
    """A server certificate.

    ``cert``: leaf then CA certificate (PEM); ``key``: the private key (PEM, 0600); ``combined``: leaf, CA
    and key in one file (0600), the form ejabberd's ``certfiles`` wants.
    """

    cert: Path
    key: Path
    combined: Path
    hosts: tuple[str, ...]


def make_ca(directory: Path, *, common_name: str = CA_COMMON_NAME) -> CaFiles:
    """Create a CA in ``directory`` (``ca.crt``, ``ca.key``), or reuse the one already there."""
    files = CaFiles(cert=directory / "ca.crt", key=directory / "ca.key")
    if _ca_usable(files):
        return files
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private_file(files.key, _key_pem(key))
    write_file(files.cert, cert.public_bytes(serialization.Encoding.PEM))
    log.info("created a development CA in %s", directory)
    return files


def issue_server_cert(ca: CaFiles, directory: Path, name: str, hosts: list[str]) -> CertFiles:
    """Issue ``name.crt``/``name.key``/``name.pem`` in ``directory`` for ``hosts`` (DNS names and IP
    addresses; the first one is also the common name), or reuse them if they still fit."""
    if not hosts:
        raise ValueError("a server certificate needs at least one host name or address")
    wanted = tuple(dict.fromkeys(hosts))
    files = CertFiles(
        cert=directory / f"{name}.crt",
        key=directory / f"{name}.key",
        combined=directory / f"{name}.pem",
        hosts=wanted,
    )
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    if _server_cert_usable(files, ca_cert, wanted):
        return files
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{ca.key} is not an EC private key")
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, wanted[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + SERVER_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([_general_name(host) for host in wanted]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
    key_pem = _key_pem(key)
    write_private_file(files.key, key_pem)
    write_private_file(files.combined, chain + key_pem)
    write_file(files.cert, chain)
    log.info("issued certificate %s for %s", files.cert, ", ".join(wanted))
    return files


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _ca_usable(files: CaFiles) -> bool:
    if not (files.cert.is_file() and files.key.is_file()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
        key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    except ValueError:
        return False
    return cert.public_key() == key.public_key() and cert.not_valid_after_utc - _now() > RENEW_BEFORE


def _server_cert_usable(files: CertFiles, ca_cert: x509.Certificate, hosts: tuple[str, ...]) -> bool:
    if not (files.cert.is_file() and files.key.is_file() and files.combined.is_file()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
        key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca_cert)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return (
        cert.public_key() == key.public_key()
        and set(names) == {_general_name(host) for host in hosts}
        and cert.not_valid_after_utc - _now() > RENEW_BEFORE
    )


def spki_sha256(pem: bytes) -> str:
    """Base64 of the SHA-256 of a PEM certificate's public key (SPKI): what Chromium's
    ``--ignore-certificate-errors-spki-list`` takes to trust a private CA, as the browser tests and the
    browser benchmark do with the local cloud's."""
    key = x509.load_pem_x509_certificate(pem).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()
