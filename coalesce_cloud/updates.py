"""The cloud's update signing key (ed25519, 0600) and published manifests.

The manifest format, signing and verification are shared with devices: ``coalesce_common.cloud.updates``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coalesce_common.cloud.updates import (
    PLATFORM_PATTERN,
    Manifest,
    ManifestInvalid,
    SignatureInvalid,
    UpdateError,
    canonical_json,
    sign_manifest,
    verify_manifest,
)

__all__ = [
    "PLATFORM_PATTERN",
    "Manifest",
    "ManifestInvalid",
    "SignatureInvalid",
    "UpdateError",
    "canonical_json",
    "generate_signing_key",
    "load_manifest",
    "load_or_create_signing_key",
    "load_signing_key",
    "public_key_b64",
    "save_signing_key",
    "sign_manifest",
    "verify_manifest",
]


# ------------------------------------------------------------------------------------------------ keys


def generate_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_key_b64(private_key: Ed25519PrivateKey) -> str:
    raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def save_signing_key(private_key: Ed25519PrivateKey, path: Path) -> None:
    """Write the key as unencrypted PKCS#8 PEM, readable by its owner only."""
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(pem)


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise UpdateError(f"cannot read the update signing key {path}: {exc.strerror}") from exc
    except (ValueError, TypeError) as exc:  # cryptography's own words about the PEM
        raise UpdateError(f"cannot read the update signing key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise UpdateError(f"the update signing key {path} is not an ed25519 key")
    return key


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """Load the key at ``path``, creating it (0600) first if there is none."""
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another replica made it first
            save_signing_key(generate_signing_key(), path)
    return load_signing_key(path)


# ------------------------------------------------------------------------------------------- manifests


def load_manifest(manifest_dir: Path, platform: str) -> Manifest | None:
    """The manifest in ``manifest_dir/<platform>.json``, or None if there is none for that platform."""
    if not re.match(PLATFORM_PATTERN, platform):
        return None
    path = manifest_dir / f"{platform}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ManifestInvalid(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:  # the JSON decoder's words: what is wrong, and where
        raise ManifestInvalid(f"cannot read {path}: {exc}") from exc
    manifest = Manifest.from_dict(data)
    if manifest.platform != platform:
        raise ManifestInvalid(f"{path} holds a manifest for {manifest.platform}")
    return manifest
