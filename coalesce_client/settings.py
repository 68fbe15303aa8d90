"""The sender's settings file and the proxy password it never contains.

``$XDG_CONFIG_HOME/coalesce/sender.json`` (``~/.config/coalesce/sender.json``) holds the proxy choice:
mode, proxy URL *without* its password, PAC URL and PAC user name. Proxy passwords live in the OS
keyring (service ``coalesce-sender``, one entry per proxy user and host), never in a file: with no working
keyring :func:`save_proxy` raises :class:`~coalesce_common.keyring_store.KeyringUnavailable` before it
writes anything, and the caller may save :func:`without_password` and keep the password for this session
only. CLI flags override the file.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from coalesce_common.errors import CoalesceError
from coalesce_common.keyring_store import get_secret, set_secret
from coalesce_common.net.proxy import ProxyConfig, parse_proxy_url

logger = logging.getLogger(__name__)

KEYRING_SERVICE = "coalesce-sender"


def settings_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "coalesce" / "sender.json"


def _password_entry(username: str, where: str) -> str:
    return f"proxy:{username}@{where}"


def _store_password(username: str, where: str, password: str) -> None:
    set_secret(KEYRING_SERVICE, _password_entry(username, where), password)


def _load_password(username: str, where: str) -> str | None:
    try:
        return get_secret(KEYRING_SERVICE, _password_entry(username, where))
    except CoalesceError as exc:
        logger.warning("the proxy password could not be read from the keyring: %s", exc)
        return None


def _strip_password(url: str) -> tuple[str, str | None, str | None]:
    """(URL without password, user, password)."""
    hop = parse_proxy_url(url)
    bare = f"{hop.kind.value}://{hop.username + '@' if hop.username else ''}{hop.host}:{hop.port}"
    return bare, hop.username, hop.password


def has_password(config: ProxyConfig) -> bool:
    """Whether saving ``config`` needs the keyring (a password in the manual proxy's URL or for the PAC)."""
    return bool(config.password or (config.url and parse_proxy_url(config.url).password))


def without_password(config: ProxyConfig) -> ProxyConfig:
    """``config`` with no password anywhere: what is saved when the password is for this session only."""
    stored = replace(config, password=None)
    if config.url:
        stored = replace(stored, url=_strip_password(config.url)[0])
    return stored


def save_proxy(config: ProxyConfig) -> Path:
    """Write the proxy choice to the settings file; its password (if any) goes to the keyring first.

    Raises :class:`~coalesce_common.keyring_store.KeyringUnavailable` (and writes nothing) when the password
    cannot be kept in an OS keyring.
    """
    stored = config
    if config.url:
        bare, user, password = _strip_password(config.url)
        if user and password:
            _store_password(user, bare.split("@", 1)[-1], password)
        stored = replace(stored, url=bare)
    if config.username and config.password and config.pac:
        _store_password(config.username, config.pac, config.password)
    data: dict[str, Any] = {k: v for k, v in asdict(stored).items() if k != "password" and v is not None}
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"proxy": data}, indent=2) + "\n")
    return path


def load_proxy() -> ProxyConfig:
    """The saved proxy choice, with its password from the keyring; the system's settings when none."""
    try:
        data = json.loads(settings_path().read_text()).get("proxy", {})
    except (OSError, ValueError):
        return ProxyConfig()
    config = ProxyConfig(
        mode=data.get("mode", "system"),
        url=data.get("url"),
        pac=data.get("pac"),
        username=data.get("username"),
    )
    return with_password(config)


def with_password(config: ProxyConfig) -> ProxyConfig:
    """Fill in a missing proxy password from ``COALESCE_PROXY_PASSWORD`` or the keyring."""
    env_password = os.environ.get("COALESCE_PROXY_PASSWORD")
    if config.mode == "manual" and config.url:
        hop = parse_proxy_url(config.url)
        if hop.username and hop.password is None:
            password = env_password or _load_password(hop.username, f"{hop.host}:{hop.port}")
            if password is not None:
                config = replace(config, url=hop.with_password(password).url)
    if config.mode == "pac" and config.username and config.password is None and config.pac:
        config = replace(config, password=env_password or _load_password(config.username, config.pac))
    return config
