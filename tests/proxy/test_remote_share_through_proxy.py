"""A remote share from a network whose only way out is a proxy: real squid and dante, real isolation.

The sender runs inside a network namespace where UDP and every direct TCP connection are blocked
(nftables) and only the proxy's address and port are reachable. The cloud (REST API, ejabberd, coturn)
and the box run on the host's loopback, which the namespace can reach only through the proxy. A share
must get through each kind of proxy, and fail with a clear error, not hang, when the proxy does not work.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from coalesce_cloud.stack import LocalCloud
from coalesce_testing.netns import Netns
from tests.cloudlab import Admin, Box
from tests.netshare import enrolled_sender, share_from_netns
from tests.proxy.lab import DanteFactory, PacServerFactory, SquidFactory

PIN = "4821"
SHARE_SECONDS = "4"


async def assert_share_arrives(netns: Netns, box: Box, env: dict[str, str], camera: Path, *proxy: str) -> str:
    """Run the share from inside the namespace; the box must show decoded frames from it."""
    started = time.monotonic()
    sharing = asyncio.ensure_future(share_from_netns(netns, env, box.meeting_id, camera, *proxy))
    arrived: BaseException | None = None
    try:
        await box.receiver.wait_for_shares(1, timeout=45)
        [shown] = box.receiver.model.shares
        assert shown.sender_name == "Proxied laptop"
        await asyncio.wait_for(shown.tracks["camera"].wait_for_frames(1), 20)
        print(f"first frame at the box {time.monotonic() - started:.2f} s after `coalesce share` started")
        frame = shown.tracks["camera"].latest_rgb()
        assert frame is not None and frame.shape == (240, 320, 3)
    except (TimeoutError, AssertionError) as exc:
        arrived = exc
    rc, out, err = await sharing
    assert arrived is None, f"no frames at the box ({arrived!r}); the sender said: {out}{err}"
    assert rc == 0, err
    assert "through the local relay" in out  # behind a proxy, media is relay-only over TURN/TLS
    return out


async def allow_only(netns: Netns, *endpoints: tuple[str, int]) -> None:
    await asyncio.to_thread(netns.firewall, list(endpoints))


async def test_through_an_http_proxy_without_auth(
    netns: Netns, squid_factory: SquidFactory, admin: Admin, box: Box, camera_file: Path,
    local_cloud: LocalCloud, tmp_path: Path,
) -> None:  # fmt: skip
    squid = await asyncio.to_thread(squid_factory)
    await allow_only(netns, (squid.host, squid.port))
    env = await enrolled_sender(admin, tmp_path)
    await assert_share_arrives(netns, box, env, camera_file, "--proxy", squid.url)
    # every connection went through squid, media included (TURN over TLS on coturn's TLS port)
    await asyncio.to_thread(squid.wait_for_access, rf"CONNECT localhost:{local_cloud.ports.turn_tls}")
    # direct TLS behind proxies
    await asyncio.to_thread(squid.wait_for_access, rf"CONNECT 127\.0\.0\.1:{local_cloud.ports.xmpp_tls}")
    await asyncio.to_thread(squid.wait_for_access, rf"CONNECT 127\.0\.0\.1:{local_cloud.ports.api}")


async def test_through_a_proxy_that_only_tunnels_to_the_tls_ports(
    netns: Netns, squid_factory: SquidFactory, admin: Admin, box: Box, camera_file: Path,
    local_cloud: LocalCloud, tmp_path: Path,
) -> None:  # fmt: skip
    """Like a corporate proxy that CONNECTs only to 443: production serves REST, XMPP over direct TLS and
    TURN over TLS all on 443; the local cloud has them on three ports, and the proxy allows just those."""
    ports = local_cloud.ports
    squid = await asyncio.to_thread(squid_factory, connect_ports={ports.api, ports.xmpp_tls, ports.turn_tls})
    await allow_only(netns, (squid.host, squid.port))
    env = await enrolled_sender(admin, tmp_path)
    await assert_share_arrives(netns, box, env, camera_file, "--proxy", squid.url)
    await asyncio.to_thread(
        squid.wait_for_access, rf"TCP_TUNNEL/200 .* CONNECT 127\.0\.0\.1:{ports.xmpp_tls}"
    )


async def test_through_an_http_proxy_with_auth(
    netns: Netns, squid_factory: SquidFactory, admin: Admin, box: Box, camera_file: Path, tmp_path: Path
) -> None:
    squid = await asyncio.to_thread(squid_factory, auth=True)
    await allow_only(netns, (squid.host, squid.port))
    env = await enrolled_sender(admin, tmp_path)
    await assert_share_arrives(netns, box, env, camera_file, "--proxy", squid.url)
    await asyncio.to_thread(squid.wait_for_access, rf"TCP_TUNNEL/200 .* CONNECT .* {squid.username} ")


async def test_through_socks5_without_auth(
    netns: Netns, dante_factory: DanteFactory, admin: Admin, box: Box, camera_file: Path, tmp_path: Path
) -> None:
    dante = await asyncio.to_thread(dante_factory)
    await allow_only(netns, (dante.host, dante.port))
    env = await enrolled_sender(admin, tmp_path)
    await assert_share_arrives(netns, box, env, camera_file, "--proxy", dante.url)


async def test_through_socks5_with_auth(
    netns: Netns, dante_factory: DanteFactory, admin: Admin, box: Box, camera_file: Path, tmp_path: Path
) -> None:
    dante = await asyncio.to_thread(dante_factory, auth=True)
    await allow_only(netns, (dante.host, dante.port))
    env = await enrolled_sender(admin, tmp_path)
    await assert_share_arrives(netns, box, env, camera_file, "--proxy", dante.url)


async def test_through_a_pac_file_whose_first_proxy_is_dead(
    netns: Netns, squid_factory: SquidFactory, pac_server_factory: PacServerFactory,
    admin: Admin, box: Box, camera_file: Path, tmp_path: Path,
) -> None:  # fmt: skip
    squid = await asyncio.to_thread(squid_factory, auth=True)
    dead_port = squid.port + 1 if squid.port < 65535 else squid.port - 1
    pac = await asyncio.to_thread(
        pac_server_factory,
        "function FindProxyForURL(url, host) {\n"
        f'  return "PROXY {squid.host}:{dead_port}; PROXY {squid.host}:{squid.port}";\n'
        "}\n",
    )
    await allow_only(netns, (squid.host, squid.port), (squid.host, dead_port), (pac.host, pac.port))
    env = await enrolled_sender(admin, tmp_path)
    env["COALESCE_PROXY_PASSWORD"] = squid.password
    await assert_share_arrives(netns, box, env, camera_file, "--pac", pac.url, "--proxy-user", squid.username)
    assert pac.fetch_count >= 1


async def test_system_proxy_from_environment_variables(
    netns: Netns, squid_factory: SquidFactory, admin: Admin, box: Box, camera_file: Path, tmp_path: Path
) -> None:
    squid = await asyncio.to_thread(squid_factory)
    await allow_only(netns, (squid.host, squid.port))
    env = await enrolled_sender(admin, tmp_path)
    env["https_proxy"] = squid.url
    await assert_share_arrives(netns, box, env, camera_file)  # --system-proxy is the default


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("stopped", "is unreachable"),
        ("wrong-password", "refused the user name or password"),
        ("socks-wrong-password", "refused the user name or password"),
        ("connect-refused", "does not allow connections"),
        ("pac-unreachable", "Cannot load the PAC file"),
    ],
)
async def test_a_proxy_that_does_not_work_gives_a_clear_error_not_a_hang(
    netns: Netns, squid_factory: SquidFactory, dante_factory: DanteFactory, admin: Admin, box: Box,
    camera_file: Path, tmp_path: Path, setup: str, expected: str,
) -> None:  # fmt: skip
    env = await enrolled_sender(admin, tmp_path)
    if setup.startswith("socks"):
        dante = await asyncio.to_thread(dante_factory, auth=True)
        await allow_only(netns, (dante.host, dante.port))
        flags = ["--proxy", dante.url.replace(f":{dante.password}@", ":not-the-password@")]
    elif setup == "pac-unreachable":
        squid = await asyncio.to_thread(squid_factory)
        await allow_only(netns, (squid.host, squid.port))
        flags = ["--pac", f"http://{squid.host}:{squid.port + 1}/proxy.pac"]
    else:
        squid = await asyncio.to_thread(
            squid_factory,
            auth=setup == "wrong-password",
            connect_ports={1} if setup == "connect-refused" else None,
        )
        await allow_only(netns, (squid.host, squid.port))
        if setup == "stopped":
            await asyncio.to_thread(squid.stop)
        url = (
            squid.url_with(username=squid.username, password="not-the-password")
            if setup == "wrong-password"
            else squid.url
        )
        flags = ["--proxy", url]
    rc, out, err = await share_from_netns(netns, env, box.meeting_id, camera_file, *flags, timeout=45)
    assert rc == 2, (out, err)
    assert expected in err
    assert "not-the-password" not in err  # never echo a password
    assert box.receiver.model.shares == []


async def test_doctor_reports_the_route_through_the_proxy_and_blocked_udp(
    netns: Netns, squid_factory: SquidFactory, admin: Admin, box: Box, tmp_path: Path
) -> None:
    squid = await asyncio.to_thread(squid_factory, auth=True)
    await allow_only(netns, (squid.host, squid.port))
    env = await enrolled_sender(admin, tmp_path)
    args = netns.exec_args(
        [sys.executable, "-m", "coalesce_client", "doctor", "--proxy", squid.url, "--meeting", box.meeting_id]
    )
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE, env=env)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    report = out.decode()
    proxy_label = f"http://{squid.username}@{squid.host}:{squid.port}"
    assert "[ok  ] REST API: 127.0.0.1:" in report and proxy_label in report
    assert "[ok  ] XMPP:" in report and "SCRAM-SHA-256" in report
    assert "[ok  ] TURN local over TLS" in report
    assert "[FAIL] UDP: no STUN answer" in report
    assert "[ok  ] meeting:" in report
    assert squid.password not in report
    assert proc.returncode == 1  # UDP is blocked: one check fails
