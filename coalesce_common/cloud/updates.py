"""Signed update manifests: the canonical form both the cloud (signing) and devices (verifying) use.

A manifest is a JSON object (platform, version, url, sha256, notes, published_at). Its signature is
ed25519 over ``canonical_json(manifest)``: sorted keys, no spaces, UTF-8. Devices hold the cloud's
public key from enrollment; a manifest whose signature does not verify is refused, whoever served it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from coalesce_common.errors import CoalesceError

REQUIRED = ("platform", "version", "url", "sha256")


class UpdateVerificationError(CoalesceError):
    """The update manifest is not signed by the cloud's key: it was tampered with. Nothing is installed."""


@dataclass(frozen=True)
class Manifest:
    platform: str
    version: str
    url: str
    sha256: str
    notes: str = ""
    published_at: str = ""


def canonical_json(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_manifest(private_key: Ed25519PrivateKey, manifest: dict[str, Any]) -> dict[str, Any]:
    """The document the API serves: the manifest and its base64 signature."""
    signature = private_key.sign(canonical_json(manifest))
    return {"manifest": manifest, "signature": base64.b64encode(signature).decode()}


def verify_manifest(public_key_b64: str, document: dict[str, Any]) -> Manifest:
    """Return the manifest of ``document`` if its signature verifies with the cloud's key; else raise."""
    manifest = document.get("manifest")
    signature = document.get("signature")
    if not isinstance(manifest, dict) or not isinstance(signature, str):
        raise UpdateVerificationError("The update manifest is malformed: refused.")
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64, validate=True))
        key.verify(base64.b64decode(signature, validate=True), canonical_json(manifest))
    except (InvalidSignature, ValueError, binascii.Error) as exc:
        raise UpdateVerificationError(
            "The update manifest's signature does not verify: it may have been tampered with. Refused."
        ) from exc
    if any(not isinstance(manifest.get(k), str) or not manifest.get(k) for k in REQUIRED):
        raise UpdateVerificationError("The signed update manifest lacks a required field: refused.")
    return Manifest(**{k: str(manifest.get(k, "")) for k in (*REQUIRED, "notes", "published_at")})


def version_tuple(version: str) -> tuple[int, ...]:
    """``"1.10.2"`` → ``(1, 10, 2)``, for comparing versions (non-numeric parts count as 0)."""
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))
