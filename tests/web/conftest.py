"""Fixtures for the browser sender's tests: a local cloud and a box linked to it (tests/cloudlab.py), and
the sharing page built from the sources as they are (never a stale ``web/dist``)."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cloudlab import admin, box, camera_file, file_keyring, local_cloud, loopback_only_ice

__all__ = [
    "admin",
    "box",
    "camera_file",
    "file_keyring",
    "local_cloud",
    "loopback_only_ice",
    "share_page_built",
]

WEB = Path(__file__).resolve().parents[2] / "coalesce_cloud" / "web"


@pytest.fixture(scope="session", autouse=True)
def share_page_built() -> None:
    node = shutil.which("node")
    if node is None or not (WEB / "node_modules" / "esbuild").is_dir():
        pytest.fail("Node or the page's npm packages are missing: run scripts/setup.sh", pytrace=False)
    result = subprocess.run([node, "build.mjs"], cwd=WEB, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"the sharing page did not build: {result.stderr}"
