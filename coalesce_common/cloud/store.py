"""Device credentials in the OS keyring (:mod:`coalesce_common.keyring_store`): never in a file or a log.

One entry per application (``coalesce-sender`` / ``coalesce-receiver``) holds the JSON of
:class:`DeviceCredentials`. With no working OS keyring, :func:`save` raises
:class:`~coalesce_common.keyring_store.KeyringUnavailable`. Tests select keyrings.alt's file backend in a
temporary folder through ``PYTHON_KEYRING_BACKEND``.
"""

from __future__ import annotations

import json
import logging

from coalesce_common.cloud.rest import DeviceCredentials
from coalesce_common.errors import CoalesceError
from coalesce_common.keyring_store import delete_secret, get_secret, set_secret

logger = logging.getLogger(__name__)

ENTRY = "cloud-device"


class CredentialStoreError(CoalesceError):
    pass


def save(service: str, credentials: DeviceCredentials) -> None:
    set_secret(service, ENTRY, json.dumps(credentials.to_json()))
    logger.info("saved cloud credentials for device %s in the keyring", credentials.device_id)


def load(service: str) -> DeviceCredentials | None:
    text = get_secret(service, ENTRY)
    if not text:
        return None
    try:
        return DeviceCredentials.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise CredentialStoreError(
            "The stored cloud credentials are damaged: enroll this device again."
        ) from exc


def forget(service: str) -> None:
    delete_secret(service, ENTRY)
