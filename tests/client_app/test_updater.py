"""Updates: the signed manifest is checked, the download must match its SHA-256, on a real local server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from coalesce_client.services import updater
from coalesce_common.cloud.rest import DeviceCredentials
from coalesce_common.cloud.updates import Manifest, UpdateError, sign_manifest
from coalesce_common.net.proxy import ProxyConfig, ProxyResolver
from coalesce_common.signaling.xmpp import XmppAccount
from tests.client_app.conftest import Server

PLATFORM = "linux-x86_64"
PACKAGE = b"pretend this is a .deb" * 1000


def manifest(server: Server, version: str = "9.0.0", body: bytes = PACKAGE) -> Manifest:
    return Manifest(
        platform=PLATFORM,
        version=version,
        url=server.url("/coalesce_9.0.0.deb"),
        sha256=hashlib.sha256(body).hexdigest(),
        notes="Faster sharing.",
        published_at="2026-01-01T00:00:00+00:00",
    )


def direct() -> ProxyResolver:
    return ProxyResolver(ProxyConfig(mode="none"))


async def test_a_download_is_kept_only_when_its_checksum_matches(server: Server, tmp_path: Path) -> None:
    server.routes["/coalesce_9.0.0.deb"] = (200, PACKAGE)
    progress: list[float] = []
    path = await updater.download(manifest(server), tmp_path, resolver=direct(), progress=progress.append)
    assert path == tmp_path / "coalesce_9.0.0.deb" and await asyncio.to_thread(path.read_bytes) == PACKAGE
    assert progress[-1] == 1.0
    with pytest.raises(UpdateError, match="not a Coalesce package"):  # dpkg-deb cannot read it
        await asyncio.to_thread(updater.hand_to_installer, path, manifest(server))

    server.routes["/coalesce_9.0.0.deb"] = (200, PACKAGE + b"tampered")
    with pytest.raises(UpdateError, match="does not match its signed checksum"):
        await updater.download(manifest(server), tmp_path / "again", resolver=direct())
    assert await asyncio.to_thread(os.listdir, tmp_path / "again") == []


async def test_only_a_newer_validly_signed_release_is_offered(server: Server) -> None:
    key = Ed25519PrivateKey.generate()
    public = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    credentials = DeviceCredentials(
        api_url=server.url(""),
        device_id="dev-1",
        token="t",
        org="acme",
        xmpp=XmppAccount("a@b", "p", "127.0.0.1", 5222, False, None),
        update_public_key=public,
    )
    route = f"/api/v1/updates/{PLATFORM}"
    server.routes[route] = (200, json.dumps(sign_manifest(key, manifest(server))).encode())
    offered = await updater.newer_release(credentials, direct(), platform=PLATFORM, current="0.1.0")
    assert offered is not None and offered.version == "9.0.0" and offered.notes == "Faster sharing."
    assert await updater.newer_release(credentials, direct(), platform=PLATFORM, current="9.0.0") is None

    document = sign_manifest(key, manifest(server))
    document["manifest"]["version"] = "9.9.9"  # changed after signing
    server.routes[route] = (200, json.dumps(document).encode())
    with pytest.raises(UpdateError, match="signature does not match"):
        await updater.newer_release(credentials, direct(), platform=PLATFORM, current="0.1.0")


def _fake_deb(folder: Path, *, package: str = "coalesce", version: str = "9.0.0", arch: str = "") -> Path:
    """A real (empty) Debian package, built by dpkg-deb, with the given control fields."""
    arch = (
        arch
        or subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    )
    root = folder / f"{package}-{version}-{arch}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: Test <t@example.com>\n"
        "Description: test\n"
    )
    out = folder / f"{root.name}.deb"
    subprocess.run(
        ["dpkg-deb", "--build", "--root-owner-group", str(root), str(out)], check=True, capture_output=True
    )
    return out


@pytest.mark.parametrize(
    ("release", "says"),
    [
        ({"version": "0.9.0"}, "not newer than this Coalesce"),
        ({"version": "1.0.0"}, "not newer than this Coalesce"),
        ({"platform": "windows-x86_64"}, "is for windows-x86_64"),
        ({"url": "https://downloads.example/coalesce-9.0.0.msi"}, "is not a linux package"),
        ({"url": "https://downloads.example/coalesce-9.0.0.tar.gz"}, "is not a linux package"),
    ],
)
def test_a_downgrade_or_another_platforms_package_is_refused(release: dict[str, str], says: str) -> None:
    base = Manifest(
        platform=PLATFORM,
        version="9.0.0",
        url="https://downloads.example/coalesce_9.0.0-1~debian-bookworm_amd64.deb",
        sha256="0" * 64,
        notes="",
        published_at="2026-01-01T00:00:00+00:00",
    )
    updater.check_release(base, platform=PLATFORM, current="1.0.0")  # the control: this one is fine
    with pytest.raises(UpdateError, match=says):
        updater.check_release(replace(base, **release), platform=PLATFORM, current="1.0.0")


def test_a_deb_must_hold_coalesce_at_the_signed_version_for_this_machine(tmp_path: Path) -> None:
    updater.check_deb(_fake_deb(tmp_path / "ok"), "9.0.0")
    with pytest.raises(UpdateError, match="is for s390x computers"):
        updater.check_deb(_fake_deb(tmp_path / "arch", arch="s390x"), "9.0.0")
    with pytest.raises(UpdateError, match=r"not Coalesce 9\.0\.0"):
        updater.check_deb(_fake_deb(tmp_path / "other", package="coalesce-room"), "9.0.0")
    with pytest.raises(UpdateError, match=r"not Coalesce 9\.0\.0"):
        updater.check_deb(_fake_deb(tmp_path / "older", version="8.0.0"), "9.0.0")
