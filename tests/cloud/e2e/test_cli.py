"""The cloud as people run it: `coalesce-cloud up`, a box and a sender enrolled and sharing by CLI."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import ssl
import sys
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coalesce_cloud.stack import LocalCloud, StackPorts
from coalesce_common.cloud import store
from coalesce_common.cloud.updates import canonical_json
from tests.cloudlab import Admin


def device_env(home: Path) -> dict[str, str]:
    """A device's environment: its own keyring file, loopback-only ICE."""
    return {
        **os.environ,
        "XDG_DATA_HOME": str(home),
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
        "COALESCE_ICE_HOST_ADDRESSES": "127.0.0.1",
    }


async def run(*args: str, env: dict[str, str], timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_box_and_sender_enroll_and_share_by_meeting_id_from_the_command_line(
    local_cloud: LocalCloud,
    admin: Admin,
    tmp_path: Path,
    camera_file: Path,
) -> None:
    code = await admin.enrollment_code(uses=2)
    box_env, sender_env = device_env(tmp_path / "box"), device_env(tmp_path / "sender")
    stats = tmp_path / "stats.json"
    box = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "coalesce_receiver", "--headless", "--name", "CLI Cloud Room", "--pin", "4821",
        "--host", "127.0.0.1", "--port", "0", "--no-mdns", "--data-dir", str(tmp_path / "box-data"),
        "--stats-file", str(stats), "--cloud", local_cloud.api_url, "--enroll", code,
        "--cloud-ca", local_cloud.ca_file,
        stdout=asyncio.subprocess.PIPE, env=box_env,
    )  # fmt: skip
    assert box.stdout is not None
    try:
        meeting_id = ""
        async with asyncio.timeout(60):
            while not meeting_id:
                line = (await box.stdout.readline()).decode()
                assert line, "the box exited before it showed a meeting ID"
                if line.startswith("meeting ID "):
                    meeting_id = line.split()[-1]
        rc, out, err = await run(
            sys.executable, "-m", "coalesce_client", "enroll", local_cloud.api_url, code,
            "--ca", local_cloud.ca_file, "--name", "cli-laptop", env=sender_env,
        )  # fmt: skip
        assert rc == 0, err
        assert "Enrolled as device" in out
        rc, out, err = await run(
            sys.executable, "-m", "coalesce_client", "share", "--meeting", meeting_id, "--pin", "4821",
            "--relay-only", "--no-screen", "--camera", str(camera_file), "--duration", "3",
            "--name", "CLI laptop",
            env=sender_env,
        )  # fmt: skip
        assert rc == 0, err
        assert "through the local relay" in out
        assert "Share stopped." in out
    finally:
        box.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(box.wait(), 30) == 0


def _publish(path: Path, manifest: str) -> None:
    path.parent.mkdir(exist_ok=True)
    path.write_text(manifest)


async def test_update_check_verifies_the_signed_manifest_and_refuses_a_tampered_one(
    local_cloud: LocalCloud, admin: Admin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await asyncio.to_thread(
        _publish,
        local_cloud.state_dir / "updates" / "linux-x86_64.json",
        json.dumps(
            {
                "platform": "linux-x86_64",
                "version": "99.0.0",
                "url": "https://downloads.example.invalid/coalesce-99.0.0.tar.gz",
                "sha256": "ab" * 32,
                "notes": "Faster sharing.",
                "published_at": "2026-11-28T12:00:00+00:00",
            }
        ),
    )
    env = device_env(tmp_path / "sender")
    rc, _, err = await run(
        sys.executable, "-m", "coalesce_client", "enroll", local_cloud.api_url, await admin.enrollment_code(),
        "--ca", local_cloud.ca_file, env=env,
    )  # fmt: skip
    assert rc == 0, err
    check = (sys.executable, "-m", "coalesce_client", "update", "--check", "--platform", "linux-x86_64")
    rc, out, err = await run(*check, env=env)
    assert rc == 0, err
    assert "Update available: Coalesce 99.0.0" in out and "Faster sharing." in out

    # Trust another key, as if the served manifest had been signed by someone else: refused.
    monkeypatch.setenv("XDG_DATA_HOME", env["XDG_DATA_HOME"])  # the file keyring the CLI wrote
    credentials = await asyncio.to_thread(store.load, "coalesce-sender")
    assert credentials is not None and credentials.update_public_key
    other = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    trusting_another = replace(credentials, update_public_key=base64.b64encode(other).decode())
    await asyncio.to_thread(store.save, "coalesce-sender", trusting_another)
    rc, out, err = await run(*check, env=env)
    assert rc == 2
    assert "signature does not match" in err
    assert "Update available" not in out
    assert canonical_json({"b": 1, "a": 2}) == b'{"a":2,"b":1}'


async def test_cloud_up_starts_everything_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ports = StackPorts()
    ports.fill("127.0.0.1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "coalesce_cloud", "up", "--state-dir", str(state),
        "--api-port", str(ports.api), "--xmpp-port", str(ports.xmpp_starttls),
        "--xmpp-tls-port", str(ports.xmpp_tls), "--xmpp-websocket-port", str(ports.xmpp_websocket),
        "--turn-port", str(ports.turn), "--turn-tls-port", str(ports.turn_tls),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 90)).decode()
        assert line.startswith("cloud up: REST API https://127.0.0.1:"), line
        summary = json.loads(await asyncio.to_thread((state / "cloud.json").read_text))
        verify = await asyncio.to_thread(ssl.create_default_context, cafile=summary["ca_file"])
        async with httpx.AsyncClient(verify=verify) as http:
            assert (await http.get(summary["api_url"] + "/api/v1/health")).json() == {"status": "ok"}
        beam_pid = int(await asyncio.to_thread((state / "ejabberd" / "ejabberd.pid").read_text))
        turn_pid = int(await asyncio.to_thread((state / "coturn" / "turnserver.pid").read_text))
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 60)
    assert proc.returncode == 0
    for pid in (beam_pid, turn_pid):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_enrolling_where_the_keyring_refuses_keeps_the_code_and_leaves_no_device(
    local_cloud: LocalCloud, admin: Admin, tmp_path: Path
) -> None:
    code = await admin.enrollment_code(uses=1)
    refusing = device_env(tmp_path / "refusing") | {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    enroll = (
        sys.executable, "-m", "coalesce_client", "enroll", local_cloud.api_url, code,
        "--ca", local_cloud.ca_file, "--name", "locked-keyring-laptop",
    )  # fmt: skip
    rc, out, err = await run(*enroll, env=refusing)
    assert rc != 0 and "Enrolled" not in out
    assert "keyring refused to keep the secret" in err and "Traceback" not in err
    devices = (await admin.call("GET", "/admin/devices")).json()["devices"]
    assert not [d for d in devices if d["name"] == "locked-keyring-laptop"], "no orphan device at the cloud"

    rc, out, err = await run(*enroll, env=device_env(tmp_path / "working"))  # the same one-time code
    assert rc == 0, err
    assert "Enrolled as device" in out
