"""The proxy lab itself: a namespace that gets nowhere directly, and squid, dante and a PAC server that
carry its traffic to services on the host's loopback. Fetches run with curl and with the stdlib client
(the fallback when curl is missing), so both stay trustworthy."""

from __future__ import annotations

import json
import pwd
import re
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from coalesce_cloud.servers.process import living_group_members, pid_alive
from coalesce_testing.netns import Netns, free_port, netns_names
from tests.proxy.lab import (
    SHM_DIR,
    DanteFactory,
    FetchClient,
    FetchResult,
    PacServerFactory,
    SquidFactory,
    StaticHttpServer,
    curl_available,
    fetch_in_netns,
)

FAST = 2.0
"""Seconds within which a refusal must arrive: the firewall rejects, it never lets a client time out."""
PAC = """function FindProxyForURL(url, host) {
  if (isPlainHostName(host)) return "DIRECT";
  return "PROXY 10.213.0.1:3128; DIRECT";
}
"""

_CONNECT_PROBE = """
import json, socket, sys, time
began = time.monotonic()
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()
    outcome = "connected"
except OSError as exc:
    outcome = type(exc).__name__
print(json.dumps({"outcome": outcome, "seconds": time.monotonic() - began}))
"""

_UDP_PROBE = """
import json, socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    sock.sendto(b"coalesce-udp", (sys.argv[1], int(sys.argv[2])))
    outcome = "sent"
except OSError as exc:
    outcome = type(exc).__name__
print(json.dumps({"outcome": outcome}))
"""

# Connects, says so, waits for "go" on stdin, then sends "ping" on the same connection and prints the reply.
_HELD_CONNECTION = """
import socket, sys
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
print("connected", flush=True)
sys.stdin.readline()
sock.sendall(b"ping")
print(sock.recv(16).decode(), flush=True)
"""


def probe(netns: Netns, script: str, host: str, port: int) -> dict[str, object]:
    result = netns.run([sys.executable, "-I", "-c", script, host, str(port)], timeout=15)
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def assert_fetched(result: FetchResult, body: bytes) -> None:
    assert result.error is None, result
    assert result.status == 200, result
    assert result.body == body


@pytest.fixture(params=[pytest.param("curl", marks=pytest.mark.optional_in_ci), "python"])
def fetch_client(request: pytest.FixtureRequest) -> FetchClient:
    """Each proxy test runs with curl (skipped where it is not installed) and with the stdlib client."""
    client: FetchClient = request.param
    if client == "curl" and not curl_available():
        pytest.skip("curl is not installed; the stdlib client covers this test")
    return client


@pytest.fixture
def veth_http_server(netns: Netns) -> Iterator[StaticHttpServer]:
    """A service on the host's veth address: reachable from the namespace unless the firewall says no."""
    with StaticHttpServer(netns.host_ip, {"/": ("text/plain", b"on the veth\n")}) as server:
        yield server


# ------------------------------------------------------------------------------------------ namespace


def test_namespace_has_its_own_subnet_and_loopback(netns: Netns) -> None:
    assert re.fullmatch(r"cotest-\d+-\d+", netns.name)
    assert netns.name in netns_names()
    assert netns.exec_args(["true"]) == ["ip", "netns", "exec", netns.name, "true"]
    assert netns.host_ip.startswith("10.213.") and netns.host_ip.endswith(".1")
    addresses = netns.run(["ip", "-j", "-4", "addr", "show"]).stdout
    links = {link["ifname"]: link for link in json.loads(addresses)}
    assert "UP" in links["lo"]["flags"]
    assert [a["local"] for a in links[netns.ns_ifname]["addr_info"]] == [netns.ns_ip]


def test_the_host_veth_address_is_reachable_and_host_loopback_is_not(
    netns: Netns, veth_http_server: StaticHttpServer, loopback_http_server: StaticHttpServer
) -> None:
    assert_fetched(fetch_in_netns(netns, veth_http_server.url_for("/")), b"on the veth\n")
    assert veth_http_server.requests[0].client == netns.ns_ip

    # 127.0.0.1 inside is the namespace's own loopback; the host's port is not open on its veth address.
    loopback_port = loopback_http_server.port
    for host in ("127.0.0.1", netns.host_ip):
        outcome = probe(netns, _CONNECT_PROBE, host, loopback_port)
        assert outcome["outcome"] == "ConnectionRefusedError", (host, outcome)
    assert loopback_http_server.requests == []


def test_firewall_resets_direct_tcp_at_once(
    netns: Netns, veth_http_server: StaticHttpServer, loopback_http_server: StaticHttpServer
) -> None:
    other = StaticHttpServer(netns.host_ip, {"/": ("text/plain", b"other\n")})
    try:
        netns.firewall(allow=[(netns.host_ip, veth_http_server.port)])
        assert_fetched(fetch_in_netns(netns, veth_http_server.url_for("/")), b"on the veth\n")
        for host, port in [
            (netns.host_ip, other.port),
            ("127.0.0.1", loopback_http_server.port),
            ("192.0.2.1", 443),  # any other address goes out by the default route, and meets the firewall
        ]:
            outcome = probe(netns, _CONNECT_PROBE, host, port)
            assert outcome["outcome"] == "ConnectionRefusedError", (host, port, outcome, netns.ruleset())
            assert isinstance(outcome["seconds"], float) and outcome["seconds"] < FAST
        assert other.requests == []
    finally:
        other.stop()


def test_firewall_makes_udp_sends_fail(netns: Netns) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind((netns.host_ip, 0))
        receiver.settimeout(5)
        port = receiver.getsockname()[1]
        # Without the firewall the datagram arrives: the refusal below is the firewall's doing.
        assert probe(netns, _UDP_PROBE, netns.host_ip, port)["outcome"] == "sent"
        data, (source, _) = receiver.recvfrom(64)
        assert (data, source) == (b"coalesce-udp", netns.ns_ip)

        netns.firewall(allow=[(netns.host_ip, port)])  # a TCP allowance says nothing about UDP
        assert probe(netns, _UDP_PROBE, netns.host_ip, port)["outcome"] == "PermissionError"
        assert probe(netns, _UDP_PROBE, "192.0.2.1", 3478)["outcome"] == "PermissionError"


def test_firewall_can_be_replaced_and_cleared_without_cutting_open_connections(netns: Netns) -> None:
    with socket.create_server((netns.host_ip, 0)) as server:
        server.settimeout(5)
        port = server.getsockname()[1]
        netns.firewall(allow=[(netns.host_ip, port)])
        process = subprocess.Popen(
            netns.exec_args([sys.executable, "-I", "-c", _HELD_CONNECTION, netns.host_ip, str(port)]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            connection, _ = server.accept()
            with connection:
                assert process.stdout is not None and process.stdout.readline().strip() == "connected"
                netns.firewall(allow=[])
                assert netns.allowed == ()
                assert (
                    probe(netns, _CONNECT_PROBE, netns.host_ip, port)["outcome"] == "ConnectionRefusedError"
                )
                assert process.stdin is not None
                process.stdin.write("go\n")
                process.stdin.flush()
                assert connection.recv(16) == b"ping"
                connection.sendall(b"pong")
                out, _ = process.communicate(timeout=10)
                assert out.strip() == "pong"
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)

        netns.clear_firewall()
        assert probe(netns, _CONNECT_PROBE, netns.host_ip, port)["outcome"] == "connected"
        assert "coalesce_lab" not in netns.ruleset()


# -------------------------------------------------------------------------------------------- squid


def test_squid_tunnels_to_a_host_loopback_service(
    netns: Netns,
    squid_factory: SquidFactory,
    loopback_http_server: StaticHttpServer,
    fetch_client: FetchClient,
) -> None:
    squid = squid_factory()
    netns.firewall(allow=[squid.address])
    target = loopback_http_server.url_for("/")
    body = loopback_http_server.files["/"][1]

    direct = fetch_in_netns(netns, target, client=fetch_client)
    assert direct.status is None and direct.error, direct

    result = fetch_in_netns(netns, target, proxy=squid.url, client=fetch_client)
    assert_fetched(result, body)
    assert result.proxy_status == 200
    assert squid.url == f"http://{netns.host_ip}:{squid.port}"
    assert [request.client for request in loopback_http_server.requests] == ["127.0.0.1"]
    line = squid.wait_for_access(rf"TCP_TUNNEL/200 .* CONNECT 127\.0\.0\.1:{loopback_http_server.port} ")
    assert f" {netns.ns_ip} " in line


def test_squid_forwards_plain_http_requests_too(
    netns: Netns,
    squid_factory: SquidFactory,
    loopback_http_server: StaticHttpServer,
    fetch_client: FetchClient,
) -> None:
    squid = squid_factory()
    netns.firewall(allow=[squid.address])
    result = fetch_in_netns(
        netns, loopback_http_server.url_for("/"), proxy=squid.url, tunnel=False, client=fetch_client
    )
    assert_fetched(result, loopback_http_server.files["/"][1])
    assert result.proxy_status is None
    squid.wait_for_access(rf"TCP_MISS/200 .* GET http://127\.0\.0\.1:{loopback_http_server.port}/ ")


def test_squid_with_auth_wants_the_right_credentials(
    netns: Netns,
    squid_factory: SquidFactory,
    loopback_http_server: StaticHttpServer,
    fetch_client: FetchClient,
) -> None:
    squid = squid_factory(auth=True)
    netns.firewall(allow=[squid.address])
    target = loopback_http_server.url_for("/")
    assert squid.username and squid.password and len(squid.password) >= 16
    assert squid.url == f"http://{squid.username}:{squid.password}@{netns.host_ip}:{squid.port}"

    anonymous = fetch_in_netns(netns, target, proxy=f"http://{squid.host}:{squid.port}", client=fetch_client)
    assert (anonymous.status, anonymous.proxy_status) == (None, 407), anonymous
    wrong = squid.url_with(username=squid.username, password="not-the-password")
    assert fetch_in_netns(netns, target, proxy=wrong, client=fetch_client).proxy_status == 407
    assert loopback_http_server.requests == []

    assert_fetched(
        fetch_in_netns(netns, target, proxy=squid.url, client=fetch_client),
        loopback_http_server.files["/"][1],
    )
    squid.wait_for_access(rf"TCP_TUNNEL/200 .* CONNECT 127\.0\.0\.1:\d+ {squid.username} ")
    squid.wait_for_access(r"TCP_DENIED/407 .* CONNECT ")


def test_squid_password_with_url_special_characters(
    netns: Netns,
    squid_factory: SquidFactory,
    loopback_http_server: StaticHttpServer,
    fetch_client: FetchClient,
) -> None:
    squid = squid_factory(auth=True, password="p@ss:w/rd%20 #1")
    netns.firewall(allow=[squid.address])
    assert "p%40ss%3Aw%2Frd%2520%20%231@" in squid.url
    result = fetch_in_netns(netns, loopback_http_server.url_for("/"), proxy=squid.url, client=fetch_client)
    assert_fetched(result, loopback_http_server.files["/"][1])


def test_squid_refuses_connect_to_ports_not_listed(
    netns: Netns,
    squid_factory: SquidFactory,
    loopback_http_server: StaticHttpServer,
    fetch_client: FetchClient,
) -> None:
    other = StaticHttpServer("127.0.0.1", {"/": ("text/plain", b"other port\n")})
    try:
        squid = squid_factory(connect_ports={loopback_http_server.port})
        netns.firewall(allow=[squid.address])
        listed = fetch_in_netns(
            netns, loopback_http_server.url_for("/"), proxy=squid.url, client=fetch_client
        )
        assert_fetched(listed, loopback_http_server.files["/"][1])
        refused = fetch_in_netns(netns, other.url_for("/"), proxy=squid.url, client=fetch_client)
        assert (refused.status, refused.proxy_status) == (None, 403), refused
        assert other.requests == []
        squid.wait_for_access(rf"TCP_DENIED/403 .* CONNECT 127\.0\.0\.1:{other.port} ")
    finally:
        other.stop()


# -------------------------------------------------------------------------------------------- dante


def test_dante_without_auth_reaches_host_loopback_and_veth_services(
    netns: Netns,
    dante_factory: DanteFactory,
    loopback_http_server: StaticHttpServer,
    veth_http_server: StaticHttpServer,
    fetch_client: FetchClient,
) -> None:
    dante = dante_factory()
    netns.firewall(allow=[dante.address])
    assert dante.url == f"socks5://{netns.host_ip}:{dante.port}"
    assert dante.username is None

    result = fetch_in_netns(netns, loopback_http_server.url_for("/"), proxy=dante.url, client=fetch_client)
    assert_fetched(result, loopback_http_server.files["/"][1])
    assert [request.client for request in loopback_http_server.requests] == ["127.0.0.1"]
    dante.wait_for_log(
        rf"pass\(\d+\): tcp/connect .*{re.escape(netns.ns_ip)}.* 127\.0\.0\.1\.{loopback_http_server.port}"
    )

    # The veth service is firewalled off for direct use, but dante (connecting from 127.0.0.1) gets there.
    veth_target = veth_http_server.url_for("/")
    assert fetch_in_netns(netns, veth_target, client=fetch_client).status is None
    assert_fetched(fetch_in_netns(netns, veth_target, proxy=dante.url, client=fetch_client), b"on the veth\n")


def test_dante_with_auth_checks_a_temporary_system_user(
    netns: Netns,
    dante_factory: DanteFactory,
    loopback_http_server: StaticHttpServer,
    fetch_client: FetchClient,
) -> None:
    dante = dante_factory(auth=True)
    netns.firewall(allow=[dante.address])
    assert dante.username is not None and dante.password is not None
    assert pwd.getpwnam(dante.username).pw_shell.endswith(("nologin", "false"))
    target = loopback_http_server.url_for("/")

    anonymous = fetch_in_netns(
        netns, target, proxy=f"socks5://{dante.host}:{dante.port}", client=fetch_client
    )
    assert anonymous.status is None and anonymous.error, anonymous
    wrong = dante.url_with(username=dante.username, password="not-the-password")
    refused = fetch_in_netns(netns, target, proxy=wrong, client=fetch_client)
    assert refused.status is None and refused.error, refused
    assert loopback_http_server.requests == []

    assert_fetched(
        fetch_in_netns(netns, target, proxy=dante.url, client=fetch_client),
        loopback_http_server.files["/"][1],
    )

    dante.stop()
    with pytest.raises(KeyError):
        pwd.getpwnam(dante.username)


# ---------------------------------------------------------------------------------------------- PAC


def test_pac_server_serves_the_script_into_the_namespace(
    netns: Netns, pac_server_factory: PacServerFactory, fetch_client: FetchClient
) -> None:
    pac_server = pac_server_factory(PAC)
    netns.firewall(allow=[(pac_server.host, pac_server.port)])
    assert pac_server.url == f"http://{netns.host_ip}:{pac_server.port}/proxy.pac"

    result = fetch_in_netns(netns, pac_server.url, client=fetch_client)
    assert_fetched(result, PAC.encode())
    assert result.content_type == "application/x-ns-proxy-autoconfig"
    assert pac_server.fetch_count == 1

    pac_server.pac = 'function FindProxyForURL(url, host) { return "DIRECT"; }'
    assert b'"DIRECT"' in fetch_in_netns(netns, pac_server.url, client=fetch_client).body
    assert fetch_in_netns(netns, pac_server.url_for("/wpad.dat"), client=fetch_client).status == 404


# ------------------------------------------------------------------------------------------ hygiene


def test_stopping_leaves_nothing_behind(
    netns: Netns, squid_factory: SquidFactory, dante_factory: DanteFactory
) -> None:
    squid = squid_factory(auth=True)
    graceful = squid_factory()
    dante = dante_factory(auth=True)
    pids = [squid.pid, graceful.pid, dante.pid]
    assert all(pid is not None and pid_alive(pid) for pid in pids)
    assert list(SHM_DIR.glob(f"{squid.service_name}-*"))

    squid.stop()
    graceful.stop(graceful=True)
    dante.stop()
    dante.stop()  # idempotent
    for pid in pids:
        assert pid is not None and not pid_alive(pid) and living_group_members(pid) == []
    for server in (squid, graceful):
        assert not list(SHM_DIR.glob(f"{server.service_name}-*"))
    assert dante.username is not None
    with pytest.raises(KeyError):
        pwd.getpwnam(dante.username)

    name, veth = netns.name, netns.host_ifname
    netns.close()
    netns.close()
    assert name not in netns_names()
    assert subprocess.run(["ip", "link", "show", "dev", veth], capture_output=True).returncode != 0


def test_free_port_gives_a_bindable_port(netns: Netns) -> None:
    port = free_port(netns.host_ip)
    with socket.create_server((netns.host_ip, port)):
        pass
