"""The proxy resolver: manual, PAC (real pypac), system settings; passwords never in labels."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from coalesce_common.net.proxy import (
    DIRECT,
    HopKind,
    ProxyConfig,
    ProxyResolver,
    ProxySettingsError,
    parse_pac_answer,
    parse_proxy_url,
)


def test_proxy_urls_parse_with_and_without_credentials() -> None:
    hop = parse_proxy_url("http://alice:s%40cret@proxy.corp:3128")
    assert (hop.kind, hop.host, hop.port, hop.username, hop.password) == (
        HopKind.HTTP,
        "proxy.corp",
        3128,
        "alice",
        "s@cret",
    )
    assert "s@cret" not in hop.label and "s%40cret" not in hop.label
    assert hop.url == "http://alice:s%40cret@proxy.corp:3128"
    assert parse_proxy_url("socks5://10.0.0.1").port == 1080
    assert parse_proxy_url("proxy:8080").kind is HopKind.HTTP
    with pytest.raises(ProxySettingsError, match="http://host:port"):
        parse_proxy_url("ftp://x:1")


def test_pac_answers_keep_their_order_and_skip_what_we_cannot_use() -> None:
    hops = parse_pac_answer("PROXY dead:3128; HTTPS tls:443; SOCKS5 live:1080; DIRECT")
    assert [h.label for h in hops] == ["http://dead:3128", "socks5://live:1080", "DIRECT"]


async def test_manual_proxy_has_no_direct_fallback() -> None:
    resolver = ProxyResolver(ProxyConfig(mode="manual", url="socks5://u:p@127.0.0.1:1080"))
    assert [h.label for h in await resolver.resolve("api.example", 443)] == ["socks5://u@127.0.0.1:1080"]
    with pytest.raises(ProxySettingsError):
        ProxyResolver(ProxyConfig(mode="manual", url=None))


async def test_none_is_direct() -> None:
    assert await ProxyResolver(ProxyConfig(mode="none")).resolve("x", 1) == [DIRECT]


async def test_system_settings_from_the_environment_honour_no_proxy() -> None:
    environ = {"HTTPS_PROXY": "http://bob:pw@proxy:3128", "NO_PROXY": "internal.example,.lan"}
    resolver = ProxyResolver(ProxyConfig(mode="system"), environ=environ)
    [hop] = await resolver.resolve("api.cloud.example", 443)
    assert (hop.host, hop.port, hop.username, hop.password) == ("proxy", 3128, "bob", "pw")
    assert await resolver.resolve("box.internal.example", 443) == [DIRECT]
    assert await resolver.resolve("printer.lan", 443) == [DIRECT]
    assert await ProxyResolver(environ={}).resolve("api.cloud.example", 443) == [DIRECT]


async def test_system_socks_setting_is_used() -> None:
    resolver = ProxyResolver(getproxies=lambda: {"socks": "socks5://127.0.0.1:1080"})
    [hop] = await resolver.resolve("api", 443)
    assert (hop.kind, hop.host, hop.port) == (HopKind.SOCKS5, "127.0.0.1", 1080)


async def test_macos_socks_setting_is_re_schemed_to_socks5(monkeypatch: pytest.MonkeyPatch) -> None:
    # CPython's macOS reader (Modules/_scproxy.c) hands the SOCKS proxy back as http://host:port.
    monkeypatch.setattr(sys, "platform", "darwin")
    resolver = ProxyResolver(getproxies=lambda: {"socks": "http://socks.corp:1081"})
    [hop] = await resolver.resolve("api.cloud.example", 443)
    assert (hop.kind, hop.host, hop.port) == (HopKind.SOCKS5, "socks.corp", 1081)
    assert hop.label == "socks5://socks.corp:1081"


PAC = """
function FindProxyForURL(url, host) {
    if (dnsDomainIs(host, ".direct.example")) return "DIRECT";
    if (shExpMatch(url, "https://*:5349/*")) return "SOCKS5 127.0.0.1:1081";
    return "PROXY 127.0.0.9:3128; PROXY 127.0.0.1:3129; DIRECT";
}
"""


async def test_pac_file_is_evaluated_with_credentials_for_its_proxies(tmp_path: Path) -> None:
    pac = tmp_path / "proxy.pac"
    await asyncio.to_thread(pac.write_text, PAC)
    resolver = ProxyResolver(ProxyConfig(mode="pac", pac=str(pac), username="carol", password="pw"))
    hops = await resolver.resolve("api.cloud.example", 443)
    assert [h.label for h in hops] == ["http://carol@127.0.0.9:3128", "http://carol@127.0.0.1:3129", "DIRECT"]
    assert all(h.password == "pw" for h in hops if not h.is_direct)
    assert [h.label for h in await resolver.resolve("turn.cloud.example", 5349)] == [
        "socks5://carol@127.0.0.1:1081"
    ]
    assert await resolver.resolve("x.direct.example", 443) == [DIRECT]


async def test_broken_or_missing_pac_files_are_clear_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pac"
    await asyncio.to_thread(broken.write_text, "function FindProxyForURL(url, host) { return ")
    with pytest.raises(ProxySettingsError, match="is broken"):
        await ProxyResolver(ProxyConfig(mode="pac", pac=str(broken))).resolve("a", 443)
    with pytest.raises(ProxySettingsError, match="Cannot read the PAC file"):
        await ProxyResolver(ProxyConfig(mode="pac", pac=str(tmp_path / "none.pac"))).resolve("a", 443)


async def test_unreachable_pac_url_is_a_clear_error(free_tcp_port: int) -> None:
    resolver = ProxyResolver(ProxyConfig(mode="pac", pac=f"http://127.0.0.1:{free_tcp_port}/proxy.pac"))
    with pytest.raises(ProxySettingsError, match="Cannot load the PAC file"):
        await resolver.resolve("a", 443)
