"""The OS keyring, and only the OS keyring: where the apps keep every secret (proxy passwords, cloud tokens).

``keyring`` uses the store with the highest priority that works: Secret Service (SecretStorage) on Linux,
Credential Locker on Windows, Keychain on macOS. When none works (no Secret Service on the session bus, for
example), it takes whatever backend is left, and with ``keyrings.alt`` installed that is a file that keeps
secrets in base64 under ``~/.local/share/python_keyring/``. This module never lets that happen: a plaintext
or placeholder backend is used only when ``PYTHON_KEYRING_BACKEND`` names it, as the tests do. Otherwise
:func:`set_secret` raises :class:`KeyringUnavailable`, whose message says what to do, and the app offers to
use the secret for this session only.

Every function here talks to the keyring (D-Bus on Linux): call them in a worker thread.
"""

from __future__ import annotations

import logging
import os
import secrets

import keyring
import keyring.backend
import keyring.errors
from keyring.backends.chainer import ChainerBackend

from coalesce_common.errors import CoalesceError

logger = logging.getLogger(__name__)

EXPLICIT_BACKEND = "PYTHON_KEYRING_BACKEND"
# Backends that would write secrets to a file anyone reading the disk can decode, or that store nothing.
_REFUSED_MODULES = ("keyrings.alt", "keyring.backends.fail", "keyring.backends.null")
_HOW_TO_FIX = (
    "Start or unlock the system keyring (GNOME Keyring or KWallet on Linux, Keychain on macOS, "
    "Credential Manager on Windows) and try again."
)


class KeyringUnavailable(CoalesceError):
    """No OS keyring works here, so a secret cannot be kept (it is never written to a plain file)."""


def _refused(backend: keyring.backend.KeyringBackend) -> bool:
    return type(backend).__module__.startswith(_REFUSED_MODULES)


def _describe(backend: keyring.backend.KeyringBackend) -> str:
    kind = type(backend)
    return f"{kind.__module__}.{kind.__qualname__}"


def os_keyring() -> keyring.backend.KeyringBackend:
    """The keyring that keeps the secrets: an OS store, or the backend ``PYTHON_KEYRING_BACKEND`` names.

    Raises :class:`KeyringUnavailable` when keyring would fall back to a plaintext file or to nothing.
    """
    backend = keyring.get_keyring()
    if os.environ.get(EXPLICIT_BACKEND):
        return backend
    chain = backend.backends if isinstance(backend, ChainerBackend) else [backend]
    for candidate in chain:
        if not _refused(candidate):
            return candidate
    logger.info(
        "no OS keyring: only %s", ", ".join(_describe(candidate) for candidate in chain) or "no backend"
    )
    raise KeyringUnavailable(
        f"No system keyring is working on this computer, so Coalesce cannot keep the secret. {_HOW_TO_FIX}"
    )


def keyring_problem() -> str | None:
    """Why secrets cannot be kept here (the message to show), or ``None`` when the OS keyring works."""
    try:
        os_keyring()
    except KeyringUnavailable as exc:
        return str(exc)
    return None


# Backends raise more than keyring's own errors: jeepney's D-Bus errors (a Secret Service that does not
# answer), the platform stores' OS errors. All of them mean the same to the user, so all are mapped here.
_BACKEND_ERRORS = Exception


def set_secret(service: str, entry: str, secret: str) -> None:
    backend = os_keyring()
    try:
        backend.set_password(service, entry, secret)
    except _BACKEND_ERRORS as exc:
        logger.info("the keyring %s refused to store an entry: %s", _describe(backend), exc)
        raise KeyringUnavailable(f"The system keyring refused to keep the secret. {_HOW_TO_FIX}") from exc


PROBE_ENTRY = "coalesce-probe"


def check_writable(service: str) -> None:
    """Store and delete a throwaway entry: raises :class:`KeyringUnavailable` when the keyring will not keep
    secrets. A keyring can be there and still refuse (a locked Secret Service whose unlock prompt was
    dismissed): finding out before a one-time enrollment code is spent keeps the code usable."""
    set_secret(service, PROBE_ENTRY, secrets.token_hex(8))
    delete_secret(service, PROBE_ENTRY)


def get_secret(service: str, entry: str) -> str | None:
    """The secret, or ``None`` when there is none or no keyring works (nothing to read then)."""
    try:
        backend = os_keyring()
    except KeyringUnavailable:
        return None
    try:
        return backend.get_password(service, entry)
    except _BACKEND_ERRORS as exc:
        logger.info("the keyring %s could not be read: %s", _describe(backend), exc)
        raise KeyringUnavailable(f"The system keyring could not be read. {_HOW_TO_FIX}") from exc


def delete_secret(service: str, entry: str) -> None:
    """Forget the secret; nothing to do when there is none or no keyring works."""
    try:
        os_keyring().delete_password(service, entry)
    except (KeyringUnavailable, keyring.errors.PasswordDeleteError):
        pass
    except _BACKEND_ERRORS as exc:  # a D-Bus or OS error: the entry stays, and nothing else can be done
        logger.info("the keyring could not delete an entry: %s", exc)
