"""Device credentials in the OS keyring (keyring): never in a config file, never in logs.

One entry per application (``coalesce-sender`` / ``coalesce-receiver``) holds the JSON of
:class:`DeviceCredentials`. Tests select keyrings.alt's file backend in a temporary folder.
"""

from __future__ import annotations

import contextlib
import json
import logging

import keyring
import keyring.errors

from coalesce_common.cloud.rest import DeviceCredentials
from coalesce_common.errors import CoalesceError

logger = logging.getLogger(__name__)

ENTRY = "cloud-device"


class CredentialStoreError(CoalesceError):
    pass


def save(service: str, credentials: DeviceCredentials) -> None:
    try:
        keyring.set_password(service, ENTRY, json.dumps(credentials.to_json()))
    except keyring.errors.KeyringError as exc:
        raise CredentialStoreError(
            f"Cannot store the cloud credentials in the system keyring ({exc}). "
            "Unlock or install a keyring (Secret Service, macOS Keychain, Windows Credential Locker)."
        ) from exc
    logger.info("saved cloud credentials for device %s in the keyring", credentials.device_id)


def load(service: str) -> DeviceCredentials | None:
    try:
        text = keyring.get_password(service, ENTRY)
    except keyring.errors.KeyringError as exc:
        raise CredentialStoreError(f"Cannot read the system keyring ({exc}).") from exc
    if not text:
        return None
    try:
        return DeviceCredentials.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise CredentialStoreError(
            "The stored cloud credentials are damaged: enroll this device again."
        ) from exc


def forget(service: str) -> None:
    with contextlib.suppress(keyring.errors.PasswordDeleteError):
        keyring.delete_password(service, ENTRY)
