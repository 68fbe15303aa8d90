"""Updates from the cloud: check the signed manifest, download, verify, hand the file to the installer.

No Qt here. The manifest's ed25519 signature is checked with the key received at enrollment
(:func:`verify_manifest`); the download (through the same proxy settings as every cloud call) must have
the SHA-256 the signed manifest names, or it is deleted. :func:`hand_to_installer` is the one place that
knows how each platform installs a downloaded package.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from coalesce_common.cloud.rest import CloudClient, CloudError, DeviceCredentials
from coalesce_common.cloud.updates import Manifest, UpdateError, verify_manifest, version_tuple
from coalesce_common.net.http import proxied_transport
from coalesce_common.net.proxy import ProxyResolver

logger = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT = 60.0
_CHUNK = 256 * 1024


def downloads_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "coalesce" / "updates"


async def newer_release(
    credentials: DeviceCredentials, resolver: ProxyResolver, *, platform: str, current: str
) -> Manifest | None:
    """The verified manifest of a release newer than ``current``, or ``None`` when there is none."""
    if not credentials.update_public_key:
        raise UpdateError("The cloud gave no update signing key at enrollment, so updates cannot be checked.")
    async with CloudClient(credentials.api_url, ca_file=credentials.ca_file, resolver=resolver) as api:
        try:
            document = await api.update_manifest(platform)
        except CloudError as exc:
            if exc.code == "no_update":
                return None
            raise
    manifest = verify_manifest(credentials.update_public_key, document, platform=platform)
    return manifest if version_tuple(manifest.version) > version_tuple(current) else None


async def download(
    manifest: Manifest,
    folder: Path,
    *,
    resolver: ProxyResolver,
    ca_file: str | None = None,
    progress: Callable[[float], None] = lambda fraction: None,
) -> Path:
    """Download the release into ``folder``; return the file once its SHA-256 matches the manifest."""
    name = Path(urlsplit(manifest.url).path).name or f"coalesce-{manifest.version}"
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    target = folder / name
    partial = folder / (name + ".part")
    context = await asyncio.to_thread(_tls_context, ca_file)  # reads the CA bundle from disk
    digest = hashlib.sha256()
    try:
        client = httpx.AsyncClient(
            transport=proxied_transport(resolver, context),
            timeout=DOWNLOAD_TIMEOUT,
            follow_redirects=True,
            trust_env=False,  # the resolver reads the environment itself
        )
        async with client, client.stream("GET", manifest.url) as response:
            if response.status_code != 200:
                raise UpdateError(
                    f"The update could not be downloaded (the server answered {response.status_code})."
                )
            total = int(response.headers.get("content-length") or 0)
            received = 0
            out = await asyncio.to_thread(partial.open, "wb")
            try:
                async for chunk in response.aiter_bytes(_CHUNK):
                    await asyncio.to_thread(out.write, chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    if total:
                        progress(received / total)
            finally:
                await asyncio.to_thread(out.close)
    except httpx.HTTPError as exc:
        await asyncio.to_thread(partial.unlink, missing_ok=True)
        raise UpdateError(
            f"The update could not be downloaded ({exc.__class__.__name__}: {exc}). "
            "Check the network and the proxy settings, then try again."
        ) from exc
    except BaseException:
        await asyncio.to_thread(partial.unlink, missing_ok=True)
        raise
    if digest.hexdigest() != manifest.sha256:
        await asyncio.to_thread(partial.unlink, missing_ok=True)
        raise UpdateError(
            "The downloaded update does not match its signed checksum, so it was deleted: "
            "it may have been damaged or tampered with on the way. Try again later."
        )
    await asyncio.to_thread(os.replace, partial, target)
    progress(1.0)
    logger.info("downloaded and verified the update %s (%s)", manifest.version, target)
    return target


def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(ca_file)
    return context


def hand_to_installer(path: Path) -> str:
    """Give the verified download to this platform's installer; return what to tell the user."""
    if sys.platform == "win32":
        os.startfile(path)  # type: ignore[attr-defined]  # only exists on Windows
        return "The installer has started: follow its steps. Coalesce restarts when it is done."
    if sys.platform == "darwin":
        subprocess.Popen(["open", str(path)])
        return "The installer has opened: follow its steps."
    # Linux: packages are installed by the distribution's tools, often with administrator rights.
    return f"The update was downloaded and verified: {path}. Install it with your package manager."
