"""Where a device's cloud credentials are kept: the OS keyring, or the credential systemd hands a service.

Secrets live only in an OS secret store, never in a plain file. Two stores qualify:

- the OS keyring (:mod:`coalesce_common.keyring_store`): one entry per application (``coalesce-sender`` /
  ``coalesce-receiver``) holds the JSON of :class:`DeviceCredentials`. With no working OS keyring,
  :func:`save` raises :class:`~coalesce_common.keyring_store.KeyringUnavailable`. Tests select keyrings.alt's
  file backend in a temporary folder through ``PYTHON_KEYRING_BACKEND``.
- a systemd credential: a room box runs as a system service, where no Secret Service exists. Its
  credentials are encrypted on disk by ``systemd-creds`` (:mod:`coalesce_common.cloud.credstore`) and
  systemd decrypts them at each start into ``$CREDENTIALS_DIRECTORY/cloud-device``, a private in-memory
  folder only the service can read. That copy is read-only to the service.

:func:`credential_source` chooses between them, once, for the whole process; everything else talks to a
:class:`CredentialSource`. Reading may touch D-Bus (the keyring) or the disk: call it in a worker thread.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from coalesce_common.cloud.rest import DeviceCredentials
from coalesce_common.errors import CoalesceError
from coalesce_common.keyring_store import delete_secret, get_secret, set_secret

logger = logging.getLogger(__name__)

ENTRY = "cloud-device"
"""The keyring entry, and the systemd credential's name (``LoadCredentialEncrypted=cloud-device:...``)."""
CREDENTIALS_DIRECTORY = "CREDENTIALS_DIRECTORY"
_REENROLL_AS_ROOT = "enroll this device again with its enroll command, as root, and restart the service."


class CredentialStoreError(CoalesceError):
    """Cloud credentials that cannot be read (damaged, or unreadable) or sealed (see ``credstore``)."""


class CredentialSource(Protocol):
    """Where this device's cloud credentials come from and where rotated ones go. Blocking calls."""

    def load(self) -> DeviceCredentials | None:
        """The credentials, or ``None`` when this device is not enrolled there."""
        ...

    def save(self, credentials: DeviceCredentials) -> None:
        """Keep ``credentials`` (after enrollment, or after the cloud rotated the XMPP password)."""
        ...


@dataclass(frozen=True)
class KeyringCredentials:
    """The credentials in the OS keyring entry of ``service``."""

    service: str

    def load(self) -> DeviceCredentials | None:
        return load(self.service)

    def save(self, credentials: DeviceCredentials) -> None:
        save(self.service, credentials)


@dataclass(frozen=True)
class SystemdCredentials:
    """The credentials systemd decrypted for this service (``$CREDENTIALS_DIRECTORY/cloud-device``).

    The copy is read-only and the encrypted original belongs to root, so rotated credentials cannot be
    written back. Nothing is lost by that: the caller holds the rotated ones for as long as it runs, and
    after a restart the stale password is refused once and the device asks the cloud for a new one with
    its API token, which never rotates.
    """

    path: Path

    def load(self) -> DeviceCredentials | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not text"
            raise CredentialStoreError(
                f"The cloud credentials systemd passed to this service ({self.path}) cannot be read "
                f"({why}): {_REENROLL_AS_ROOT}"
            ) from exc
        damaged = f"The cloud credentials systemd passed to this service are damaged: {_REENROLL_AS_ROOT}"
        return _parse(text, damaged)

    def save(self, credentials: DeviceCredentials) -> None:
        logger.info(
            "the cloud gave device %s a new XMPP password; it is kept in memory only (systemd credentials "
            "are read-only), and asked for again after a restart",
            credentials.device_id,
        )


def credential_source(service: str, environ: Mapping[str, str] = os.environ) -> CredentialSource:
    """The credential systemd passed to this process, if any; else the keyring entry of ``service``."""
    directory = environ.get(CREDENTIALS_DIRECTORY)
    if directory:
        path = Path(directory) / ENTRY
        if path.exists():
            return SystemdCredentials(path)
    return KeyringCredentials(service)


def save(service: str, credentials: DeviceCredentials) -> None:
    set_secret(service, ENTRY, json.dumps(credentials.to_json()))
    logger.info("saved cloud credentials for device %s in the keyring", credentials.device_id)


def load(service: str) -> DeviceCredentials | None:
    text = get_secret(service, ENTRY)
    if not text:
        return None
    return _parse(text, "The stored cloud credentials are damaged: enroll this device again.")


def forget(service: str) -> None:
    delete_secret(service, ENTRY)


def _parse(text: str, damaged: str) -> DeviceCredentials:
    try:
        return DeviceCredentials.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise CredentialStoreError(damaged) from exc
