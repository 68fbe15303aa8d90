"""A room box run by systemd: enrolled into systemd's encrypted credential store, linked with no keyring.

The real ``systemd-creds`` seals and unseals; its host key is a file in the test's folder
(``SYSTEMD_CREDENTIAL_SECRET``, as systemd's own tests do), so the machine's ``/var/lib/systemd`` is never
touched and no root is needed. systemd itself (PID 1) does not run here: the tests decrypt the sealed file
into a 0700 folder with ``systemd-creds decrypt``, which is what ``LoadCredentialEncrypted=`` does, and
hand it to the box as ``$CREDENTIALS_DIRECTORY``. The box's keyring is keyring's ``fail`` backend, so any
attempt to read or write the keyring breaks the run.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from coalesce_cloud.stack import LocalCloud
from coalesce_common.cloud.rest import CloudClient
from tests.cloud.e2e.test_cli import device_env, run
from tests.cloudlab import Admin

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-creds") is None,
    reason="systemd-creds is missing (Debian's systemd package; scripts/setup.sh installs it)",
)

SEALED_NAME = "coalesce-room.cloud-device"  # what the units' LoadCredentialEncrypted= names
ROTATION_NOTE = "kept in memory only"


def box_env(tmp_path: Path, credentials_dir: Path | None = None) -> dict[str, str]:
    """A box with no usable keyring, its own host key, and systemd's credentials folder when given."""
    env = {
        **device_env(tmp_path / "box-home"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "SYSTEMD_CREDENTIAL_SECRET": str(tmp_path / "credential.secret"),
    }
    env.pop("CREDENTIALS_DIRECTORY", None)
    if credentials_dir is not None:
        env["CREDENTIALS_DIRECTORY"] = str(credentials_dir)
    return env


def enroll_command(cloud: LocalCloud, code: str, credstore: Path) -> tuple[str, ...]:
    return (
        sys.executable, "-m", "coalesce_receiver", "enroll", cloud.api_url, "--code", code,
        "--ca", cloud.ca_file, "--name", "Sealed Room", "--credstore", str(credstore),
    )  # fmt: skip


def receiver_command(cloud_url: str, tmp_path: Path) -> tuple[str, ...]:
    return (
        sys.executable, "-m", "coalesce_receiver", "--headless", "--name", "Sealed Room", "--pin", "4821",
        "--host", "127.0.0.1", "--port", "0", "--no-mdns", "--data-dir", str(tmp_path / "box-data"),
        "--cloud", cloud_url,
    )  # fmt: skip


def give_to_service(credentials_dir: Path, name: str, data: bytes) -> None:
    """What systemd makes: a 0700 folder holding the credential as a read-only file."""
    credentials_dir.mkdir(mode=0o700)
    path = credentials_dir / name
    path.write_bytes(data)
    path.chmod(0o400)


async def meeting_id_of(box: asyncio.subprocess.Process) -> str:
    assert box.stdout is not None
    async with asyncio.timeout(60):
        while True:
            line = (await box.stdout.readline()).decode()
            assert line, "the box exited before it showed a meeting ID"
            if line.startswith("meeting ID "):
                return line.split()[-1]


async def stop(box: asyncio.subprocess.Process) -> None:
    box.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(box.wait(), 30) == 0


async def test_an_enrolled_box_links_with_its_systemd_credential_and_takes_a_remote_share(
    local_cloud: LocalCloud, admin: Admin, tmp_path: Path, camera_file: Path
) -> None:
    credstore = tmp_path / "credstore.encrypted"
    env = box_env(tmp_path)
    rc, out, err = await run(*enroll_command(local_cloud, await admin.enrollment_code(), credstore), env=env)
    assert rc == 0, err
    device_id = out.split("Enrolled as box ", 1)[1].split(";")[0]
    assert "--cloud" in out, "the enroll command does not say what to do next"
    sealed = credstore / SEALED_NAME
    host_key = tmp_path / "credential.secret"
    assert await asyncio.to_thread(host_key.is_file), "the enroll command did not make the host key"
    assert (await asyncio.to_thread(sealed.stat)).st_mode & 0o777 == 0o600
    assert (await asyncio.to_thread(credstore.stat)).st_mode & 0o777 == 0o700
    assert await asyncio.to_thread(lambda: [p.name for p in credstore.iterdir()]) == [SEALED_NAME]

    # LoadCredentialEncrypted=, by hand: decrypt into a private folder the box reads.
    credentials_dir = tmp_path / "credentials"
    await asyncio.to_thread(credentials_dir.mkdir, mode=0o700)
    rc, _, err = await run(
        "systemd-creds", "decrypt", "--name=cloud-device", str(sealed), str(credentials_dir / "cloud-device"),
        env=env,
    )  # fmt: skip
    assert rc == 0, err
    await asyncio.to_thread((credentials_dir / "cloud-device").chmod, 0o400)
    plain: dict[str, Any] = json.loads(await asyncio.to_thread((credentials_dir / "cloud-device").read_text))
    assert plain["device_id"] == device_id and plain["api_url"] == local_cloud.api_url
    assert plain["ca_file"] == str(await asyncio.to_thread(Path(local_cloud.ca_file).resolve))
    sealed_bytes = await asyncio.to_thread(sealed.read_bytes)
    for secret in (device_id, plain["token"], plain["xmpp"]["password"], plain["xmpp"]["jid"]):
        assert secret.encode() not in sealed_bytes, "the sealed file shows a secret in plain text"

    box = await asyncio.create_subprocess_exec(
        *receiver_command(local_cloud.api_url, tmp_path),
        stdout=asyncio.subprocess.PIPE,
        env=box_env(tmp_path, credentials_dir),
    )
    try:
        meeting_id = await meeting_id_of(box)
        sender_env = device_env(tmp_path / "sender")
        rc, out, err = await run(
            sys.executable, "-m", "coalesce_client", "enroll", local_cloud.api_url,
            await admin.enrollment_code(), "--ca", local_cloud.ca_file, "--name", "sealed-laptop",
            env=sender_env,
        )  # fmt: skip
        assert rc == 0, err
        rc, out, err = await run(
            sys.executable, "-m", "coalesce_client", "share", "--meeting", meeting_id, "--pin", "4821",
            "--relay-only", "--no-screen", "--camera", str(camera_file), "--duration", "2",
            "--name", "Sealed laptop", env=sender_env,
        )  # fmt: skip
        assert rc == 0, err
        assert "Share stopped." in out
    finally:
        await stop(box)


async def test_enrolling_where_nothing_can_be_sealed_fails_before_the_code_is_spent(
    local_cloud: LocalCloud, admin: Admin, tmp_path: Path
) -> None:
    code = await admin.enrollment_code(uses=1)
    env = box_env(tmp_path)
    rc, _, err = await run(*enroll_command(local_cloud, code, Path("/proc/no-credstore")), env=env)
    assert rc == 2
    assert "/proc/no-credstore cannot be made" in err and "as root" in err
    assert "Traceback" not in err

    rc, out, err = await run(*enroll_command(local_cloud, code, tmp_path / "credstore"), env=env)
    assert rc == 0, err
    assert "Enrolled as box " in out


async def test_a_rotated_xmpp_password_is_kept_in_memory_and_the_credential_left_alone(
    local_cloud: LocalCloud, admin: Admin, tmp_path: Path
) -> None:
    credentials = await admin.enroll("Sealed Room", "box")
    credentials_dir = tmp_path / "credentials"
    given = json.dumps(credentials.to_json()).encode()
    await asyncio.to_thread(give_to_service, credentials_dir, "cloud-device", given)
    async with CloudClient(credentials.api_url, token=credentials.token, ca_file=credentials.ca_file) as api:
        await api.rotate_xmpp(credentials.ca_file)  # the password systemd passes is now refused

    log = tmp_path / "box.log"
    with await asyncio.to_thread(log.open, "wb") as stderr:
        box = await asyncio.create_subprocess_exec(
            *receiver_command(local_cloud.api_url, tmp_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=box_env(tmp_path, credentials_dir),
        )
        try:
            assert await meeting_id_of(box)  # linked, with a password it asked the cloud for
        finally:
            await stop(box)
    lines = (await asyncio.to_thread(log.read_text)).splitlines()
    assert len([line for line in lines if ROTATION_NOTE in line]) == 1, lines
    assert await asyncio.to_thread((credentials_dir / "cloud-device").read_bytes) == given


async def test_a_damaged_systemd_credential_is_reported_in_plain_words(tmp_path: Path) -> None:
    credentials_dir = tmp_path / "credentials"
    await asyncio.to_thread(give_to_service, credentials_dir, "cloud-device", b'{"api_url": "https://cut')
    rc, out, err = await run(
        *receiver_command("https://cloud.invalid", tmp_path), env=box_env(tmp_path, credentials_dir)
    )
    assert rc == 2
    assert "credentials systemd passed to this service are damaged" in err
    assert "enroll this device again" in err
    assert "Traceback" not in err
    assert "meeting ID" not in out
