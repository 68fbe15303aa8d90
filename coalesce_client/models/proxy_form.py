"""The proxy choice as the settings form edits it: separate fields, to and from :class:`ProxyConfig`.

:meth:`ProxyForm.to_config` checks the fields and builds the config that
:func:`coalesce_client.settings.save_proxy` stores (moving any password to the keyring); errors are
:class:`ProxySettingsError` with a message that names the field to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from coalesce_common.net.proxy import HopKind, ProxyConfig, ProxyMode, ProxySettingsError, parse_proxy_url

ProxyKind = Literal["http", "socks5"]


@dataclass(frozen=True)
class ProxyForm:
    mode: ProxyMode = "system"
    kind: ProxyKind = "http"
    host: str = ""
    port: int | None = None
    username: str = ""
    password: str = ""
    pac_url: str = ""

    @classmethod
    def from_config(cls, config: ProxyConfig) -> ProxyForm:
        if config.mode == "manual" and config.url:
            try:
                hop = parse_proxy_url(config.url)
            except ProxySettingsError:
                return cls(mode="manual")
            return cls(
                mode="manual",
                kind="socks5" if hop.kind is HopKind.SOCKS5 else "http",
                host=hop.host,
                port=hop.port,
                username=hop.username or "",
                password=hop.password or "",
            )
        if config.mode == "pac":
            return cls(
                mode="pac",
                pac_url=config.pac or "",
                username=config.username or "",
                password=config.password or "",
            )
        return cls(mode=config.mode)

    def to_config(self) -> ProxyConfig:
        if self.mode == "manual":
            host = self.host.strip()
            if not host or any(c in host for c in " /@:"):
                raise ProxySettingsError(
                    "Type the proxy's host name or address, for example proxy.example.com."
                )
            if self.port is None or not 0 < self.port < 65536:
                raise ProxySettingsError(
                    "Type the proxy's port, a number from 1 to 65535 (often 3128 or 1080)."
                )
            if self.password and not self.username.strip():
                raise ProxySettingsError("A proxy password needs a user name too.")
            auth = ""
            if self.username.strip():
                auth = quote(self.username.strip(), safe="")
                if self.password:
                    auth += ":" + quote(self.password, safe="")
                auth += "@"
            url = f"{self.kind}://{auth}{host}:{self.port}"
            parse_proxy_url(url)
            return ProxyConfig(mode="manual", url=url)
        if self.mode == "pac":
            pac = self.pac_url.strip()
            if not pac:
                raise ProxySettingsError("Type the address of the proxy auto-config (PAC) file.")
            if self.password and not self.username.strip():
                raise ProxySettingsError("A proxy password needs a user name too.")
            return ProxyConfig(
                mode="pac",
                pac=pac,
                username=self.username.strip() or None,
                password=self.password or None,
            )
        return ProxyConfig(mode=self.mode)
