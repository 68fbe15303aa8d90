"""Signed update manifests: the format, canonical JSON, signing and verification (cloud and devices).

A client asks ``GET /api/v1/updates/{platform}`` and gets a *document*::

    {"manifest": {"platform", "version", "url", "sha256", "notes", "published_at"},
     "signature": base64(ed25519 signature over canonical_json(manifest))}

``canonical_json`` is ``json.dumps(manifest, sort_keys=True, separators=(",", ":"))`` in UTF-8. Devices
trust the public key they got at enrollment (``update_public_key``, base64 of the raw 32 bytes), check the
signature with :func:`verify_manifest`, then the download's SHA-256 against the manifest. The cloud's
key management lives in ``coalesce_cloud.updates``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import importlib.metadata
import json
import platform
import re
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from coalesce_common.errors import CoalesceError

PLATFORM_PATTERN = r"^[a-z0-9]{2,16}-[a-z0-9_]{2,16}$"  # linux-x86_64, windows-x86_64, macos-arm64, ...
_PLATFORM = re.compile(PLATFORM_PATTERN)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FIELD_MAX = 4096


class UpdateError(CoalesceError):
    """An update manifest could not be trusted or read."""


class ManifestInvalid(UpdateError, ValueError):
    """The manifest is malformed: a field is missing, of the wrong type, or badly formatted."""


class SignatureInvalid(UpdateError):
    """The signature does not match the manifest and the trusted key: do not install this update."""


@dataclass(frozen=True)
class Manifest:
    platform: str
    version: str
    url: str
    sha256: str  # lower-case hex of the download
    notes: str
    published_at: str  # ISO 8601 with a UTC offset

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> Manifest:
        """Strictly parse a manifest; unknown keys are ignored (they are still covered by the signature)."""
        if not isinstance(data, Mapping):
            raise ManifestInvalid("the manifest must be a JSON object")
        values: dict[str, str] = {}
        for name in ("platform", "version", "url", "sha256", "notes", "published_at"):
            value = data.get(name)
            if not isinstance(value, str):
                raise ManifestInvalid(f"manifest field {name!r} must be a string")
            if len(value) > _FIELD_MAX:
                raise ManifestInvalid(f"manifest field {name!r} is longer than {_FIELD_MAX} characters")
            values[name] = value
        if not _PLATFORM.match(values["platform"]):
            raise ManifestInvalid(f"manifest platform {values['platform']!r} is not like 'linux-x86_64'")
        if not values["version"].strip():
            raise ManifestInvalid("manifest version is empty")
        if not values["url"].startswith(("https://", "http://")):
            raise ManifestInvalid("manifest url must be an http(s) URL")
        if not _SHA256.match(values["sha256"]):
            raise ManifestInvalid("manifest sha256 must be 64 lower-case hex digits")
        try:
            published = datetime.fromisoformat(values["published_at"])
        except ValueError as exc:
            raise ManifestInvalid("manifest published_at must be an ISO 8601 date and time") from exc
        if published.tzinfo is None:
            raise ManifestInvalid("manifest published_at must have a UTC offset")
        return cls(**values)


def canonical_json(manifest: Mapping[str, Any]) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode("utf-8")


def sign_manifest(private_key: Ed25519PrivateKey, manifest: Manifest) -> dict[str, Any]:
    """The document served to clients: the manifest and its signature."""
    body = manifest.to_dict()
    signature = private_key.sign(canonical_json(body))
    return {"manifest": body, "signature": base64.b64encode(signature).decode("ascii")}


def verify_manifest(public_key_b64: str, document: object, *, platform: str | None = None) -> Manifest:
    """Check ``document``'s signature with the trusted key and return its manifest.

    With ``platform``, also refuse a (validly signed) manifest meant for another platform. Raises
    :class:`SignatureInvalid` or :class:`ManifestInvalid`; never returns an unverified manifest.
    """
    try:
        raw_key = base64.b64decode(public_key_b64, validate=True)
        public_key = Ed25519PublicKey.from_public_bytes(raw_key)
    except (binascii.Error, ValueError) as exc:
        raise SignatureInvalid("the trusted update key is not a base64 raw ed25519 public key") from exc
    if not isinstance(document, Mapping):
        raise ManifestInvalid("the update document must be a JSON object")
    body, signature_b64 = document.get("manifest"), document.get("signature")
    if not isinstance(body, Mapping) or not isinstance(signature_b64, str):
        raise ManifestInvalid("the update document needs a 'manifest' object and a 'signature' string")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except binascii.Error as exc:
        raise SignatureInvalid("the update signature is not base64") from exc
    try:
        public_key.verify(signature, canonical_json(body))
    except InvalidSignature as exc:
        raise SignatureInvalid("the update manifest's signature does not match: do not install it") from exc
    manifest = Manifest.from_dict(body)
    if platform is not None and manifest.platform != platform:
        raise ManifestInvalid(f"the manifest is for {manifest.platform}, not {platform}")
    return manifest


def version_tuple(version: str) -> tuple[int, ...]:
    """``"1.10.2"`` → ``(1, 10, 2)``, for comparing versions (non-numeric parts count as 0)."""
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


DISTRIBUTION = "coalesce"


@functools.cache
def installed_version() -> str:
    """The version of Coalesce this device runs, as pyproject.toml gives it (the one place it is written).

    ``0`` when the distribution is not installed (code run from a bare source tree): any release is newer.
    """
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "0"


def current_platform() -> str:
    """This machine's platform name as update manifests use it, e.g. ``linux-x86_64``."""
    system = {"darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform.rstrip("0123456789"))
    machine = platform.machine().lower().replace("amd64", "x86_64").replace("aarch64", "arm64")
    return f"{system}-{machine}"
