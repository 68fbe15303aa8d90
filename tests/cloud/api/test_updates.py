"""Signed update manifests: served, verified, and refused when tampered with."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from coalesce_cloud.core.config import Settings
from coalesce_cloud.updates import (
    Manifest,
    ManifestInvalid,
    SignatureInvalid,
    canonical_json,
    generate_signing_key,
    load_or_create_signing_key,
    public_key_b64,
    sign_manifest,
    verify_manifest,
)
from coalesce_common.cloud.updates import installed_version, version_tuple
from tests.cloud.api.support import ClientFactory, Cloud, assert_error

MANIFEST = {
    "platform": "linux-x86_64",
    "version": "1.2.3",
    "url": "https://downloads.coalesce.test/coalesce-1.2.3-linux-x86_64.tar.gz",
    "sha256": "ab" * 32,
    "notes": "Faster screen capture. Ünïcödé notes.",
    "published_at": "2030-01-10T12:00:00+00:00",
}


async def publish(manifest_dir: Path, manifest: dict[str, Any]) -> None:
    path = manifest_dir / f"{manifest['platform']}.json"
    await asyncio.to_thread(path.write_text, json.dumps(manifest), encoding="utf-8")


async def test_the_served_manifest_verifies_with_the_enrollment_key(cloud: Cloud, manifest_dir: Path) -> None:
    await publish(manifest_dir, MANIFEST)
    device = await cloud.enroll()
    response = await cloud.client.get("/updates/linux-x86_64")  # public: no credentials
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["manifest"] == MANIFEST
    manifest = verify_manifest(device.body["update_public_key"], document, platform="linux-x86_64")
    assert manifest == Manifest(**MANIFEST)


@pytest.mark.parametrize(
    ("field", "value"),
    [("version", "9.9.9"), ("url", "https://evil.test/x.tar.gz"), ("sha256", "cd" * 32), ("extra", "x")],
)
async def test_a_tampered_manifest_fails_verification(
    cloud: Cloud, manifest_dir: Path, field: str, value: str
) -> None:
    await publish(manifest_dir, MANIFEST)
    key = (await cloud.enroll()).body["update_public_key"]
    document = (await cloud.client.get("/updates/linux-x86_64")).json()
    tampered = copy.deepcopy(document)
    tampered["manifest"][field] = value
    with pytest.raises(SignatureInvalid):
        verify_manifest(key, tampered)


def test_verification_needs_the_right_key_and_a_real_signature() -> None:
    key, other = generate_signing_key(), generate_signing_key()
    document = sign_manifest(key, Manifest(**MANIFEST))
    verify_manifest(public_key_b64(key), document)
    with pytest.raises(SignatureInvalid):
        verify_manifest(public_key_b64(other), document)
    for signature in ("", "not base64!", base64.b64encode(b"\0" * 64).decode()):
        with pytest.raises(SignatureInvalid):
            verify_manifest(public_key_b64(key), {**document, "signature": signature})
    with pytest.raises(SignatureInvalid):
        verify_manifest("bm90IGEga2V5", document)
    for broken in (None, [], {"manifest": "x", "signature": "y"}, {"signature": document["signature"]}):
        with pytest.raises(ManifestInvalid):
            verify_manifest(public_key_b64(key), broken)
    with pytest.raises(ManifestInvalid, match="not windows-x86_64"):
        verify_manifest(public_key_b64(key), document, platform="windows-x86_64")


def test_a_validly_signed_but_malformed_manifest_is_refused() -> None:
    key = generate_signing_key()
    body = {**MANIFEST, "sha256": "not-hex"}
    document = {"manifest": body, "signature": base64.b64encode(key.sign(canonical_json(body))).decode()}
    with pytest.raises(ManifestInvalid, match="sha256"):
        verify_manifest(public_key_b64(key), document)


def test_canonical_json_is_the_documented_form() -> None:
    assert canonical_json({"b": "1", "a": "é"}) == b'{"a":"\\u00e9","b":"1"}'


async def test_no_manifest_means_404(cloud: Cloud, manifest_dir: Path) -> None:
    await publish(manifest_dir, MANIFEST)
    assert_error(await cloud.client.get("/updates/windows-x86_64"), 404, "no_update")
    assert_error(await cloud.client.get("/updates/linux-x86_64.json"), 404, "no_update")
    assert (await cloud.client.get("/updates/..%2F..%2Fetc%2Fpasswd")).status_code == 404
    await asyncio.to_thread((manifest_dir / "macos-arm64.json").write_text, "{broken", encoding="utf-8")
    assert_error(await cloud.client.get("/updates/macos-arm64"), 404, "no_update")
    await publish(manifest_dir, {**MANIFEST, "platform": "macos-x86_64"})
    await asyncio.to_thread((manifest_dir / "macos-x86_64.json").rename, manifest_dir / "windows-arm64.json")
    assert_error(await cloud.client.get("/updates/windows-arm64"), 404, "no_update")


def test_the_signing_key_is_created_once_and_private(settings: Settings) -> None:
    path = settings.signing_key_path
    first = load_or_create_signing_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert public_key_b64(load_or_create_signing_key(path)) == public_key_b64(first)


async def test_manifests_can_come_from_the_settings(make_client: ClientFactory, settings: Settings) -> None:
    inline = {**MANIFEST, "platform": "windows-x86_64"}
    updates = settings.updates.model_copy(update={"manifests": [inline]})
    async with make_client(settings=settings.model_copy(update={"updates": updates})) as client:
        document = (await client.get("/updates/windows-x86_64")).json()
        key = (await Cloud(client).enroll()).body["update_public_key"]
    assert verify_manifest(key, document, platform="windows-x86_64").version == "1.2.3"


def test_broken_inline_manifests_are_caught_at_start() -> None:
    with pytest.raises(ValueError, match="sha256"):
        Settings(updates={"manifests": [{**MANIFEST, "sha256": "nope"}]})


def test_devices_compare_manifests_with_the_version_pyproject_gives() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())
    assert installed_version() == pyproject["project"]["version"]
    assert version_tuple(installed_version()) < version_tuple("999.0")
