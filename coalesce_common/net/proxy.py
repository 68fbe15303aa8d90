"""Proxy resolution: "how do I reach host:port?" answered with an ordered list of hops.

One :class:`ProxyResolver` serves every outgoing cloud connection (REST, XMPP, TURN over TCP/TLS). Its
answer comes from one of four settings:

* ``none``    always DIRECT;
* ``manual``  the one proxy given (``http://[user:pass@]host:port`` or ``socks5://...``), no DIRECT fallback:
  someone who sets a proxy means it;
* ``pac``     a PAC file (URL or path) evaluated by pypac's ``FindProxyForURL``; answers such as
  ``PROXY a:3128; SOCKS5 b:1080; DIRECT`` are honoured in order, with fallback down the list;
* ``system``  (the default) the environment (``https_proxy``, ``all_proxy``, ``no_proxy``) and, on Windows
  and macOS, the OS settings through ``urllib.request.getproxies``, plus the Windows registry's PAC URL.

Passwords for proxies come from the settings or the OS keyring and are never logged: a hop's ``label``
leaves them out.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import sys
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

import httpx

from coalesce_common.errors import CoalesceError
from coalesce_common.net.why import describe_os_error

logger = logging.getLogger(__name__)

ProxyMode = Literal["none", "system", "manual", "pac"]
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ProxySettingsError(CoalesceError):
    """The proxy settings cannot be used (a malformed URL, an unreachable or broken PAC file)."""


class HopKind(enum.Enum):
    DIRECT = "direct"
    HTTP = "http"
    SOCKS5 = "socks5"
    SOCKS4 = "socks4"


@dataclass(frozen=True)
class ProxyHop:
    """One way to reach a destination: directly, or through one proxy."""

    kind: HopKind
    host: str = ""
    port: int = 0
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def is_direct(self) -> bool:
        return self.kind is HopKind.DIRECT

    @property
    def label(self) -> str:
        """For messages and logs: never the password."""
        if self.is_direct:
            return "DIRECT"
        user = f"{self.username}@" if self.username else ""
        return f"{self.kind.value}://{user}{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """For python-socks: with the credentials."""
        auth = ""
        if self.username is not None:
            auth = f"{quote(self.username, safe='')}:{quote(self.password or '', safe='')}@"
        return f"{self.kind.value}://{auth}{self.host}:{self.port}"

    def with_password(self, password: str) -> ProxyHop:
        return ProxyHop(self.kind, self.host, self.port, self.username, password)

    def with_credentials(self, username: str | None, password: str | None) -> ProxyHop:
        if self.is_direct or self.username is not None or username is None:
            return self
        return ProxyHop(self.kind, self.host, self.port, username, password)


DIRECT = ProxyHop(HopKind.DIRECT)


def parse_proxy_url(text: str) -> ProxyHop:
    """``http://user:pass@host:port``, ``socks5://host:1080``, ``host:3128`` (HTTP) → a hop."""
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    scheme = parts.scheme.lower().replace("socks5h", "socks5")
    kinds = {
        "http": HopKind.HTTP,
        "socks5": HopKind.SOCKS5,
        "socks": HopKind.SOCKS5,
        "socks4": HopKind.SOCKS4,
    }
    if scheme not in kinds or not parts.hostname:
        raise ProxySettingsError(
            f"Cannot use the proxy {text.split('@')[-1]!r}: give it as http://host:port or socks5://host:port."
        )
    try:
        port = parts.port or (1080 if scheme.startswith("socks") else 3128)
    except ValueError as exc:
        raise ProxySettingsError(f"The proxy port in {text.split('@')[-1]!r} is not a number.") from exc
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return ProxyHop(kinds[scheme], parts.hostname, port, username, password)


def parse_pac_answer(answer: str) -> list[ProxyHop]:
    """``"PROXY a:3128; SOCKS5 b:1080; DIRECT"`` → hops, in order (unknown entries are skipped)."""
    hops: list[ProxyHop] = []
    for entry in answer.split(";"):
        words = entry.split()
        if not words:
            continue
        keyword = words[0].upper()
        if keyword == "DIRECT":
            hops.append(DIRECT)
        elif len(words) == 2 and keyword in ("PROXY", "HTTP", "SOCKS", "SOCKS5", "SOCKS4"):
            scheme = {"PROXY": "http", "HTTP": "http", "SOCKS": "socks5"}.get(keyword, keyword.lower())
            try:
                hops.append(parse_proxy_url(f"{scheme}://{words[1]}"))
            except ProxySettingsError:
                logger.warning("ignoring the PAC entry %r", entry.strip())
        else:  # HTTPS proxies (TLS to the proxy) and other extensions are not supported
            logger.warning("ignoring the unsupported PAC entry %r", entry.strip())
    return hops


@dataclass(frozen=True)
class ProxyConfig:
    """What the user chose (CLI flags, the sender's settings). Passwords are filled in from the keyring."""

    mode: ProxyMode = "system"
    url: str | None = None  # manual
    pac: str | None = None  # pac: an http(s) URL or a file path
    username: str | None = None  # for the proxies a PAC file names
    password: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        if self.mode == "manual" and self.url:
            return f"proxy {parse_proxy_url(self.url).label}"
        if self.mode == "pac":
            return f"PAC file {self.pac}"
        return {"none": "no proxy", "system": "the system's proxy settings"}.get(self.mode, self.mode)


class ProxyResolver:
    """Answers which hops to try, in order, for a destination; caches the PAC file once loaded."""

    def __init__(
        self,
        config: ProxyConfig = ProxyConfig(),
        *,
        environ: Mapping[str, str] | None = None,
        getproxies: Callable[[], dict[str, str]] = urllib.request.getproxies,
        pac_fetch_timeout: float = 5.0,
    ) -> None:
        self.config = config
        self._environ = environ
        self._getproxies = getproxies
        self._pac_fetch_timeout = pac_fetch_timeout
        self._pac: object | None = None
        self._pac_lock = asyncio.Lock()
        if config.mode == "manual":
            if not config.url:
                raise ProxySettingsError("A manual proxy needs its address: --proxy http://host:port.")
            parse_proxy_url(config.url)  # refuse a malformed one now, not at the first connection
        if config.mode == "pac" and not config.pac:
            raise ProxySettingsError("PAC mode needs the PAC file's URL or path: --pac URL_OR_FILE.")

    @property
    def always_direct(self) -> bool:
        return self.config.mode == "none"

    async def resolve(self, host: str, port: int, scheme: str = "https") -> list[ProxyHop]:
        mode = self.config.mode
        if mode == "none":
            return [DIRECT]
        if mode == "manual":
            assert self.config.url is not None
            return [parse_proxy_url(self.config.url)]
        if mode == "pac":
            assert self.config.pac is not None
            return await self._from_pac(self.config.pac, host, port, scheme)
        return await self._from_system(host, port, scheme)

    async def _from_system(self, host: str, port: int, scheme: str) -> list[ProxyHop]:
        proxies = self._system_proxies()
        if _bypassed(host, proxies.get("no", "")):
            return [DIRECT]
        chosen = proxies.get(scheme) or proxies.get("https") or proxies.get("all")
        if chosen:
            return [parse_proxy_url(chosen)]
        if proxies.get("socks"):
            return [parse_proxy_url(proxies["socks"])]
        pac_url = _windows_pac_url()
        if pac_url:
            return await self._from_pac(pac_url, host, port, scheme)
        return [DIRECT]

    def _system_proxies(self) -> dict[str, str]:
        if self._environ is not None:  # tests and embedders pass their own environment
            found = {
                k[: -len("_proxy")].lower(): v
                for k, v in self._environ.items()
                if k.lower().endswith("_proxy") and v
            }
            return found
        proxies = dict(self._getproxies())
        if sys.platform == "darwin" and "socks" in proxies:
            # CPython's macOS reader returns the SOCKS proxy as http://host:port (Modules/_scproxy.c)
            proxies["socks"] = "socks5://" + proxies["socks"].split("://", 1)[-1]
        return proxies

    async def _from_pac(self, source: str, host: str, port: int, scheme: str) -> list[ProxyHop]:
        pac = await self._load_pac(source)
        url = f"{scheme}://{host}:{port}/"
        answer = await asyncio.to_thread(pac.find_proxy_for_url, url, host)  # type: ignore[attr-defined]
        hops = parse_pac_answer(str(answer or "DIRECT"))
        if not hops:
            raise ProxySettingsError(f"The PAC file {source} gave no usable proxy for {host} ({answer!r}).")
        return [hop.with_credentials(self.config.username, self.config.password) for hop in hops]

    async def _load_pac(self, source: str) -> object:
        async with self._pac_lock:
            if self._pac is None:
                text = await self._fetch_pac(source)
                self._pac = await asyncio.to_thread(_parse_pac, text, source)
            return self._pac

    async def _fetch_pac(self, source: str) -> str:
        if source.startswith(("http://", "https://")):
            try:
                async with httpx.AsyncClient(timeout=self._pac_fetch_timeout, trust_env=False) as http:
                    response = await http.get(source)
                    response.raise_for_status()
                    return response.text
            except httpx.HTTPError as exc:
                raise ProxySettingsError(
                    f"Cannot load the PAC file {source}: {_pac_fetch_failure(exc, source)}. "
                    "Check the PAC address in the proxy settings, or ask IT for it."
                ) from exc
        path = Path(source.removeprefix("file://"))
        try:
            return await asyncio.to_thread(path.read_text, encoding="utf-8")
        except OSError as exc:
            raise ProxySettingsError(f"Cannot read the PAC file {path}: {exc.strerror or exc}.") from exc


def _pac_fetch_failure(exc: httpx.HTTPError, source: str) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"the server answered HTTP {exc.response.status_code}"
    url = httpx.URL(source)
    return describe_os_error(exc, url.host, url.port or _DEFAULT_PORTS[url.scheme], peer="the PAC server")


def _parse_pac(text: str, source: str) -> object:
    from pypac.parser import MalformedPacError, PACFile  # dukpy (a JS engine) loads only when needed

    try:
        return PACFile(text)
    except MalformedPacError as exc:
        raise ProxySettingsError(f"The PAC file {source} is broken: {exc}. Ask IT to check it.") from exc
    except Exception as exc:  # the JS engine raises its own errors for bad scripts
        raise ProxySettingsError(f"The PAC file {source} is broken: {exc}. Ask IT to check it.") from exc


def _bypassed(host: str, no_proxy: str) -> bool:
    if not no_proxy:
        return False
    if no_proxy.strip() == "*":
        return True
    host = host.lower().strip("[]")
    for entry in (e.strip().lower().lstrip(".") for e in no_proxy.split(",")):
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False


def _windows_pac_url() -> str | None:
    """The PAC URL Windows users configure (Internet Options), which ``getproxies`` ignores."""
    if sys.platform != "win32":
        return None
    try:
        from pypac.os_settings import autoconfig_url_from_registry

        url = autoconfig_url_from_registry()
    except Exception:  # a missing key or no registry access: no PAC
        return None
    return str(url) if url else None
