"""Building blocks for the server fixtures (tests/cloud/conftest.py) and the hygiene tests: free ports,
server factories on those ports, and stop-and-verify helpers that fail when anything is left behind."""

from __future__ import annotations

import random
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

from coalesce_cloud.servers.certs import CaFiles, CertFiles
from coalesce_cloud.servers.coturn import CoturnConfig, CoturnServer
from coalesce_cloud.servers.ejabberd import EjabberdCluster, EjabberdConfig, EjabberdNode
from coalesce_cloud.servers.postgres import PostgresServer
from coalesce_cloud.servers.process import pid_alive, tcp_port_accepts

XMPP_DOMAIN = "coalesce.test"
RELAY_PORT_COUNT = 20
# Relay ports come from below Linux's ephemeral range (32768-60999), so no client socket takes one meanwhile.
RELAY_PORT_FLOOR, RELAY_PORT_CEILING = 20000, 32000

PortFactory = Callable[[], int]


# ---------------------------------------------------------------------------------------------- ports


def udp_port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_udp_port_range(count: int) -> tuple[int, int]:
    """``count`` consecutive UDP ports on 127.0.0.1, all free now; returns (first, last)."""
    rng = random.Random()
    for _ in range(200):
        first = rng.randrange(RELAY_PORT_FLOOR, RELAY_PORT_CEILING - count)
        if all(udp_port_free(port) for port in range(first, first + count)):
            return first, first + count - 1
    raise RuntimeError(f"no {count} consecutive free UDP ports in {RELAY_PORT_FLOOR}-{RELAY_PORT_CEILING}")


# -------------------------------------------------------------------------------------------- hygiene


def assert_gone(what: str, pids: list[int | None], host: str, ports: list[int]) -> None:
    """Fail if any of ``pids`` still runs or any of ``ports`` still accepts TCP connections."""
    alive = [pid for pid in pids if pid is not None and pid_alive(pid)]
    listening = [port for port in ports if tcp_port_accepts(host, port, timeout=0.2)]
    assert not alive, f"{what}: processes {alive} still run after stop"
    assert not listening, f"{what}: ports {listening} still accept connections after stop"


# ------------------------------------------------------------------------------------------- ejabberd


def make_ejabberd_node(state_dir: Path, cert: CertFiles, ca: CaFiles, ports: PortFactory) -> EjabberdNode:
    return EjabberdNode(
        EjabberdConfig(
            state_dir=state_dir,
            certfile=cert.combined,
            ca_file=ca.cert,
            c2s_port=ports(),
            c2s_tls_port=ports(),
            http_api_port=ports(),
            dist_port=ports(),
            domain=XMPP_DOMAIN,
        )
    )


def stop_ejabberd_node_and_check(node: EjabberdNode) -> None:
    pids = [node.pid, node.wrapper_pid]
    config = node.config
    node.stop()
    ports = [config.c2s_port, config.c2s_tls_port, config.http_api_port]
    if config.dist_port is not None:
        ports.append(config.dist_port)
    assert_gone(f"ejabberd {node.node_name}", pids, config.host, ports)


def stop_ejabberd_cluster_and_check(cluster: EjabberdCluster) -> None:
    pids = [cluster.epmd_pid, *(pid for node in cluster.nodes for pid in (node.pid, node.wrapper_pid))]
    cluster.stop()
    ports = [cluster.epmd_port]
    for node in cluster.nodes:
        ports += [node.c2s_port, node.c2s_tls_port, node.config.http_api_port]
    assert_gone("ejabberd cluster", pids, "127.0.0.1", ports)


# --------------------------------------------------------------------------------------------- coturn


def make_coturn(state_dir: Path, cert: CertFiles, ports: PortFactory) -> CoturnServer:
    """A coturn on ``ports`` (which must be free for UDP and TCP) relaying on free UDP ports."""
    relay_min, relay_max = free_udp_port_range(RELAY_PORT_COUNT)
    return CoturnServer(
        CoturnConfig(
            state_dir=state_dir,
            certfile=cert.cert,
            keyfile=cert.key,
            listening_port=ports(),
            tls_port=ports(),
            relay_min_port=relay_min,
            relay_max_port=relay_max,
            realm=XMPP_DOMAIN,
        )
    )


def stop_coturn_and_check(server: CoturnServer) -> None:
    pid = server.pid
    server.stop()
    assert_gone("turnserver", [pid], server.host, [server.listening_port, server.tls_port])


# ------------------------------------------------------------------------------------------- postgres


def postgres_state_dir() -> Path:
    """A fresh directory the ``postgres`` user can reach when we run as root: pytest's own temporary
    directories sit under /tmp/pytest-of-root (mode 0700), which that user cannot traverse. The caller
    removes it."""
    return Path(tempfile.mkdtemp(prefix="coalesce-postgres-"))


def stop_postgres_and_check(server: PostgresServer) -> None:
    pid = server.pid
    server.stop()
    assert_gone("postgres", [pid], server.host, [server.port])
