"""Remote shares run by the `coalesce` command inside a network namespace (tests/proxy, tests/ladder)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from coalesce_common.cloud import store
from coalesce_testing.netns import Netns
from tests.cloudlab import Admin

PIN = "4821"
SHARE_SECONDS = "4"


async def enrolled_sender(admin: Admin, tmp_path: Path) -> dict[str, str]:
    """Enroll a sender and keep its credentials in the file keyring its subprocess will read."""
    credentials = await admin.enroll("Proxied laptop", "sender")
    # XDG_DATA_HOME points at tmp_path/"xdg-data" (cloudlab)
    await asyncio.to_thread(store.save, "coalesce-sender", credentials)
    return {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
    }


async def share_from_netns(
    netns: Netns, env: dict[str, str], meeting_id: str, camera: Path, *proxy: str, timeout: float = 60
) -> tuple[int, str, str]:
    args = netns.exec_args(
        [
            sys.executable, "-m", "coalesce_client", "share", "--meeting", meeting_id, "--pin", PIN,
            "--no-screen", "--camera", str(camera), "--duration", SHARE_SECONDS, "--name", "Proxied laptop",
            *proxy,
        ]
    )  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
