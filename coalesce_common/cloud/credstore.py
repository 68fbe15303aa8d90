"""A service's cloud credentials encrypted for systemd: ``systemd-creds`` into its encrypted credential store.

A system service has no OS keyring, and systemd's answer is encrypted credentials: ``systemd-creds encrypt``
seals the data with a key derived from the host key in ``/var/lib/systemd/credential.secret`` (made by
``systemd-creds setup``) and from the TPM2 chip when there is one (``--with-key=auto``), so the file is
useless on another machine. The unit's ``LoadCredentialEncrypted=`` makes systemd decrypt it at each start
into the service's private ``$CREDENTIALS_DIRECTORY`` (read by
:class:`~coalesce_common.cloud.store.SystemdCredentials`).

The plaintext goes to ``systemd-creds`` through a pipe and never touches the disk; the sealed result is
written next to its final name with mode 0600 and renamed over it, so a box never sees half a file.
Encryption is tried once with a throw-away payload before anything is spent (such as a one-time
enrollment code), so that a missing tool or key fails first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
from pathlib import Path

from coalesce_common.cloud.rest import DeviceCredentials
from coalesce_common.cloud.store import ENTRY, CredentialStoreError

logger = logging.getLogger(__name__)

DEFAULT_CREDSTORE = Path("/etc/credstore.encrypted")
"""Where systemd (250+) looks for ``LoadCredentialEncrypted=`` files named by a relative path."""
TOOL = "systemd-creds"
_AS_ROOT = "Run the command as root (sudo) on a machine with systemd 250 or later."


def credential_file(credstore: Path, unit_prefix: str) -> Path:
    """``CREDSTORE/UNIT_PREFIX.cloud-device``: the file a unit names as ``UNIT_PREFIX.cloud-device``."""
    return credstore / f"{unit_prefix}.{ENTRY}"


async def check_can_encrypt(credstore: Path) -> None:
    """Make the host key if missing, the store folder (0700), and seal a probe: raises if any fails."""
    if shutil.which(TOOL) is None:
        raise CredentialStoreError(f"{TOOL} was not found, so the credentials cannot be sealed. {_AS_ROOT}")
    await _run(TOOL, "setup")
    try:
        await asyncio.to_thread(credstore.mkdir, mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        why = f"The folder {credstore} cannot be made ({exc.strerror})."
        raise CredentialStoreError(f"{why} {_AS_ROOT}") from exc
    await _encrypt(b"probe")


async def store_credentials(credentials: DeviceCredentials, target: Path) -> None:
    """Seal ``credentials`` into ``target`` (0600), replacing what was there."""
    sealed = await _encrypt(json.dumps(credentials.to_json()).encode())
    try:
        await asyncio.to_thread(_write_private, target, sealed)
    except OSError as exc:
        why = f"The file {target} cannot be written ({exc.strerror})."
        raise CredentialStoreError(f"{why} {_AS_ROOT}") from exc
    logger.info("sealed the cloud credentials of device %s into %s", credentials.device_id, target)


async def _encrypt(plaintext: bytes) -> bytes:
    return await _run(TOOL, "encrypt", "--with-key=auto", f"--name={ENTRY}", "-", "-", stdin=plaintext)


async def _run(*argv: str, stdin: bytes | None = None) -> bytes:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin)
    if process.returncode != 0:
        # systemd-creds says in a line what failed (no permission on the host key, no usable key, ...);
        # its note that the host key is not on encrypted media is not the reason
        lines = err.decode(errors="replace").splitlines()
        why = " ".join(line.strip() for line in lines if "encrypted media" not in line) or "no reason given"
        raise CredentialStoreError(f"{' '.join(argv[:2])} failed ({why}). {_AS_ROOT}")
    return out


def _write_private(target: Path, data: bytes) -> None:
    partial = target.with_name(f".{target.name}.partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
