"""The cloud's real servers for tests, each started once (per session; per module for the cluster).

Fixtures:
- ``cloud_ca`` (session): a private CA (``CaFiles``); ``cloud_ca.cert`` is what clients trust.
- ``xmpp_cert`` / ``turn_cert`` (session): server certificates from it (``CertFiles``); the XMPP one covers
  ``coalesce.test``, ``localhost`` and ``127.0.0.1``, the TURN one ``localhost`` and ``127.0.0.1``.
- ``cloud_ssl_context`` (function): a client ``ssl.SSLContext`` that trusts ``cloud_ca`` only.
- ``ejabberd`` (session): a started :class:`EjabberdNode` on free loopback ports: ``.api_url``,
  ``.api_call()``, ``.ctl()``, ``.c2s_port`` (STARTTLS), ``.c2s_tls_port`` (direct TLS), ``.jid(user)``.
- ``ejabberd_cluster`` (module): a started two-node :class:`EjabberdCluster` (``.nodes``) with its own epmd.
- ``coturn`` (session): a started :class:`CoturnServer`: ``.credentials(user)``, ``.urls``,
  ``.config.static_auth_secret``.
- ``postgres`` (session): a started :class:`PostgresServer` (``.conninfo`` for psycopg);
  ``postgres_url`` (session): its SQLAlchemy URL ``postgresql+psycopg://...``.
- ``free_udp_tcp_port_factory`` (session): ports free for both UDP and TCP on 127.0.0.1.

A missing server binary skips the test (which is a failure under CI=true, see tests/conftest.py). Every
server fixture checks at teardown that its processes are gone and its ports closed, so a leak fails the run.
"""

from __future__ import annotations

import shutil
import ssl
from collections.abc import Iterator

import pytest

from coalesce_cloud.servers.certs import CaFiles, CertFiles, issue_server_cert, make_ca
from coalesce_cloud.servers.coturn import CoturnServer
from coalesce_cloud.servers.ejabberd import EjabberdCluster, EjabberdNode, EjabberdPorts
from coalesce_cloud.servers.errors import ServerNotInstalledError
from coalesce_cloud.servers.postgres import PostgresServer
from tests.cloud.servers.harness import (
    XMPP_DOMAIN,
    PortFactory,
    make_coturn,
    make_ejabberd_node,
    postgres_state_dir,
    stop_coturn_and_check,
    stop_ejabberd_cluster_and_check,
    stop_ejabberd_node_and_check,
    stop_postgres_and_check,
    udp_port_free,
)


@pytest.fixture(scope="session")
def free_udp_tcp_port_factory(free_tcp_port_factory: PortFactory) -> PortFactory:
    """Ports on 127.0.0.1 free for TCP and UDP alike (STUN/TURN listeners), never the same one twice."""

    def factory() -> int:
        while True:
            port = free_tcp_port_factory()
            if udp_port_free(port):
                return port

    return factory


# ------------------------------------------------------------------------------------------------ TLS


@pytest.fixture(scope="session")
def cloud_ca(tmp_path_factory: pytest.TempPathFactory) -> CaFiles:
    return make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def xmpp_cert(cloud_ca: CaFiles) -> CertFiles:
    return issue_server_cert(cloud_ca, cloud_ca.cert.parent, "xmpp", [XMPP_DOMAIN, "localhost", "127.0.0.1"])


@pytest.fixture(scope="session")
def turn_cert(cloud_ca: CaFiles) -> CertFiles:
    return issue_server_cert(cloud_ca, cloud_ca.cert.parent, "turn", ["localhost", "127.0.0.1"])


@pytest.fixture
def cloud_ssl_context(cloud_ca: CaFiles) -> ssl.SSLContext:
    """Verifies certificates and host names against our CA only."""
    return ssl.create_default_context(cafile=str(cloud_ca.cert))


# -------------------------------------------------------------------------------------------- servers


@pytest.fixture(scope="session")
def ejabberd(
    tmp_path_factory: pytest.TempPathFactory,
    xmpp_cert: CertFiles,
    cloud_ca: CaFiles,
    free_tcp_port_factory: PortFactory,
) -> Iterator[EjabberdNode]:
    node = make_ejabberd_node(tmp_path_factory.mktemp("ejabberd"), xmpp_cert, cloud_ca, free_tcp_port_factory)
    try:
        node.start()
    except ServerNotInstalledError as exc:
        pytest.skip(str(exc))
    try:
        yield node
    finally:
        stop_ejabberd_node_and_check(node)


@pytest.fixture(scope="module")
def ejabberd_cluster(
    tmp_path_factory: pytest.TempPathFactory,
    xmpp_cert: CertFiles,
    cloud_ca: CaFiles,
    free_tcp_port_factory: PortFactory,
) -> Iterator[EjabberdCluster]:
    ports = free_tcp_port_factory
    cluster = EjabberdCluster(
        tmp_path_factory.mktemp("ejabberd-cluster"),
        certfile=xmpp_cert.combined,
        ca_file=cloud_ca.cert,
        epmd_port=ports(),
        ports=[EjabberdPorts(c2s=ports(), c2s_tls=ports(), http_api=ports()) for _ in range(2)],
        domain=XMPP_DOMAIN,
    )
    try:
        cluster.start()
    except ServerNotInstalledError as exc:
        pytest.skip(str(exc))
    try:
        yield cluster
    finally:
        stop_ejabberd_cluster_and_check(cluster)


@pytest.fixture(scope="session")
def coturn(
    tmp_path_factory: pytest.TempPathFactory, turn_cert: CertFiles, free_udp_tcp_port_factory: PortFactory
) -> Iterator[CoturnServer]:
    server = make_coturn(tmp_path_factory.mktemp("coturn"), turn_cert, free_udp_tcp_port_factory)
    try:
        server.start()
    except ServerNotInstalledError as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        stop_coturn_and_check(server)


@pytest.fixture(scope="session")
def postgres(free_tcp_port_factory: PortFactory) -> Iterator[PostgresServer]:
    state_dir = postgres_state_dir()
    server = PostgresServer(state_dir, free_tcp_port_factory())
    try:
        try:
            server.start()
        except ServerNotInstalledError as exc:
            pytest.skip(str(exc))
        yield server
        stop_postgres_and_check(server)
    finally:
        server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres: PostgresServer) -> str:
    """SQLAlchemy URL (``postgresql+psycopg://...``) of an empty database owned by its own role."""
    return postgres.url
