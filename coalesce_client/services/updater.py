"""Updates from the cloud: check the signed manifest, download, verify, hand the file to the installer.

No Qt here. The manifest's ed25519 signature is checked with the key received at enrollment
(:func:`verify_manifest`); the manifest's URL names the platform's package (``.deb`` or ``.rpm`` on Linux,
``.msi`` on Windows, ``.dmg`` on macOS) and :func:`check_release` refuses any other kind, and any version
that is not newer than the one running. The download (through the same proxy settings as every cloud call)
must have the SHA-256 the signed manifest names, or it is deleted. :func:`hand_to_installer` is the one
place that knows how each platform installs a package: on Linux a .deb must say inside that it is
Coalesce at the manifest's version for this machine's architecture, and is installed by
``apt-get install`` (as root), ``pkexec apt-get install`` (the desktop asks for the administrator's
password) or, without pkexec, the desktop's own package installer; ``msiexec /i`` on Windows; the DMG
opened on macOS.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
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
INSTALL_TIMEOUT = 900.0  # apt-get may wait for the package database or the administrator's password
_CHUNK = 256 * 1024
DEB_PACKAGE = "coalesce"  # the sender's Debian package (pyproject.toml [tool.briefcase.app.coalesce])
PACKAGE_KINDS = {"linux": (".deb", ".rpm"), "windows": (".msi",), "macos": (".dmg",)}


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


def package_name(manifest: Manifest) -> str:
    return Path(urlsplit(manifest.url).path).name


def check_release(manifest: Manifest, *, platform: str, current: str) -> None:
    """Refuse (:class:`UpdateError`) a release that is not this platform's package, or not newer."""
    system = platform.split("-", 1)[0]
    if manifest.platform != platform:
        raise UpdateError(
            f"The update is for {manifest.platform}, not this computer ({platform}): not installed."
        )
    kinds = PACKAGE_KINDS.get(system, ())
    if not package_name(manifest).endswith(kinds):
        wanted = " or ".join(kinds) or "none known"
        raise UpdateError(
            f"The update {package_name(manifest)!r} is not a {system} package ({wanted}): not installed."
        )
    if version_tuple(manifest.version) <= version_tuple(current):
        raise UpdateError(
            f"The update is version {manifest.version}, not newer than this Coalesce ({current}): "
            "not installed."
        )


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


def hand_to_installer(path: Path, manifest: Manifest) -> str:
    """Give the verified download to this platform's installer; return what to tell the user.

    Blocks (it waits for apt-get on Linux): call it in a worker thread.
    """
    if sys.platform == "win32":
        subprocess.Popen(["msiexec", "/i", str(path)])
        return "The installer has started: follow its steps, then start Coalesce again."
    if sys.platform == "darwin":
        subprocess.Popen(["open", str(path)])
        return "The disk image has opened: drag Coalesce into Applications, then start it again."
    if path.suffix == ".deb":
        return _install_deb(path, manifest.version)
    _open_with_desktop(path)
    return f"Your system's package installer has opened {path.name}: follow its steps."


def check_deb(path: Path, version: str) -> None:
    """Refuse a .deb that is not the sender at ``version`` for this machine's architecture."""
    try:
        fields = subprocess.run(
            ["dpkg-deb", "--field", str(path), "Package", "Version", "Architecture"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        arch = subprocess.run(
            ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True, timeout=60
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise UpdateError(f"The update {path.name} is not a Coalesce package that dpkg can read.") from exc
    found = dict(line.split(": ", 1) for line in fields.splitlines() if ": " in line)
    if found.get("Package") != DEB_PACKAGE or found.get("Version") != version:
        raise UpdateError(
            f"The update {path.name} is not Coalesce {version} (it holds {found.get('Package')} "
            f"{found.get('Version')}): not installed."
        )
    if found.get("Architecture") not in (arch, "all"):
        raise UpdateError(
            f"The update {path.name} is for {found.get('Architecture')} computers, not this {arch} one: "
            "not installed."
        )


def install_command(path: Path) -> list[str] | None:
    """How to install ``path`` here: apt-get as root, through pkexec otherwise; None without pkexec."""
    apt = ["apt-get", "install", "--yes", "--no-install-recommends", str(path.resolve())]
    if os.geteuid() == 0:
        return apt
    if shutil.which("pkexec"):
        return ["pkexec", *apt]
    return None


def _install_deb(path: Path, version: str) -> str:
    check_deb(path, version)
    command = install_command(path)
    if command is None:
        _open_with_desktop(path)
        return f"Your package installer has opened {path.name}: install it there, then restart Coalesce."
    logger.info("installing the update: %s", " ".join(command))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, env=env)
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning("the installer did not run: %s", exc)
        timed_out = isinstance(exc, subprocess.TimeoutExpired)
        why = "the installer took too long" if timed_out else "no installer ran"
        raise UpdateError(f"The update could not be installed ({why}). Install {path} by hand.") from exc
    if result.returncode == 126 and command[0] == "pkexec":
        raise UpdateError("The update was not installed: the administrator's password was not given.")
    if result.returncode != 0:
        logger.warning("apt-get failed (%d): %s", result.returncode, result.stderr.strip()[-2000:])
        raise UpdateError(
            f"The update could not be installed (apt-get said: {_last_line(result.stderr)}). "
            f"Install {path} with your package manager."
        )
    return f"Coalesce {version} is installed. Quit Coalesce and start it again to use it."


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no reason given"


def _open_with_desktop(path: Path) -> None:
    try:
        subprocess.Popen(["xdg-open", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError as exc:
        raise UpdateError(
            f"No package installer could be opened: install {path} with your package manager."
        ) from exc
