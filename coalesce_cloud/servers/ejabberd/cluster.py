"""Several ejabberd nodes on one host as one cluster (:class:`EjabberdCluster`), for tests and demos.

A cluster cannot use ``ERL_DIST_PORT`` (every node on one host would need the same port), so it starts its
own ``epmd -address 127.0.0.1`` on a port of its choosing in the foreground, owns its PID, and points the
nodes at it with ``ERL_EPMD_PORT`` and ``-start_epmd false`` (:attr:`DistMode.EPMD`), so no stray
``epmd -daemon`` is ever spawned. Nodes 2.. join node 1.
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from coalesce_cloud.servers.ejabberd.config import DistMode, EjabberdConfig
from coalesce_cloud.servers.ejabberd.node import EjabberdNode
from coalesce_cloud.servers.errors import ServerCommandError, ServerStopError
from coalesce_cloud.servers.process import (
    DEFAULT_STOP_TIMEOUT,
    ManagedProcess,
    ServerLifecycle,
    find_executable,
    tcp_port_accepts,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EjabberdPorts:
    """The TCP ports of one cluster node."""

    c2s: int
    c2s_tls: int
    http_api: int


class EjabberdCluster(ServerLifecycle):
    """``len(ports)`` ejabberd nodes (``ejabberd1@localhost``, ``ejabberd2@localhost``, ...) on this host,
    sharing a cookie, the admin API's account and an epmd we start on 127.0.0.1:``epmd_port``; nodes 2..
    join node 1."""

    def __init__(
        self,
        state_dir: Path,
        *,
        certfile: Path,
        ca_file: Path | None = None,
        epmd_port: int,
        ports: Sequence[EjabberdPorts],
        host: str = "127.0.0.1",
        domain: str = "coalesce.test",
        cookie: str | None = None,
        node_prefix: str = "ejabberd",
    ) -> None:
        if len(ports) < 2:
            raise ValueError("a cluster needs at least two nodes")
        self.state_dir = state_dir
        self.epmd_port = epmd_port
        shared_cookie = cookie if cookie is not None else secrets.token_urlsafe(24)
        # One account for the admin API on every node: joining replaces a node's accounts with node 1's.
        api_password = secrets.token_urlsafe(24)
        self.nodes: tuple[EjabberdNode, ...] = tuple(
            EjabberdNode(
                EjabberdConfig(
                    state_dir=state_dir / f"node{index}",
                    certfile=certfile,
                    ca_file=ca_file,
                    c2s_port=node_ports.c2s,
                    c2s_tls_port=node_ports.c2s_tls,
                    http_api_port=node_ports.http_api,
                    host=host,
                    domain=domain,
                    node_name=f"{node_prefix}{index}@localhost",
                    cookie=shared_cookie,
                    api_password=api_password,
                    dist_mode=DistMode.EPMD,
                    epmd_port=epmd_port,
                )
            )
            for index, node_ports in enumerate(ports, start=1)
        )
        self._epmd: ManagedProcess | None = None

    def __repr__(self) -> str:
        return f"<EjabberdCluster {[node.node_name for node in self.nodes]} epmd_port={self.epmd_port}>"

    @property
    def epmd_pid(self) -> int | None:
        return self._epmd.pid if self._epmd is not None else None

    @property
    def node_names(self) -> list[str]:
        return [node.node_name for node in self.nodes]

    def members(self, node: EjabberdNode) -> list[str]:
        """The cluster members ``node`` knows about (``list_cluster``)."""
        result = node.api_call("list_cluster")
        if not isinstance(result, list):
            raise ServerCommandError(f"list_cluster answered {result!r}")
        return sorted(str(name) for name in result)

    def start(self, *, timeout: float = 120.0) -> None:
        """Start epmd, then every node in parallel, join nodes 2.. to node 1, and wait until every node
        lists every other one."""
        began = time.monotonic()
        deadline = began + timeout
        epmd = find_executable("epmd", package="erlang-base")
        for node in self.nodes:
            node.check_installed()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._epmd = ManagedProcess(
            "epmd",
            [str(epmd), "-address", "127.0.0.1", "-port", str(self.epmd_port)],
            log_path=self.state_dir / "epmd.log",
        )
        try:
            self._epmd.start(lambda: tcp_port_accepts("127.0.0.1", self.epmd_port), timeout=timeout)
            for node in self.nodes:
                node.launch()
            for node in self.nodes:
                node.wait_ready(timeout=max(1.0, deadline - time.monotonic()))
            first = self.nodes[0]
            for node in self.nodes[1:]:
                node.ctl("join_cluster", first.node_name, timeout=max(1.0, deadline - time.monotonic()))
            self._wait_joined(deadline)
        except BaseException:
            self.stop()
            raise
        log.info("ejabberd cluster %s ready in %.2f s", self.node_names, time.monotonic() - began)

    def _wait_joined(self, deadline: float) -> None:
        expected = sorted(self.node_names)
        for node in self.nodes:
            node.wait_until(
                functools.partial(self._lists_all, node, expected),
                timeout=max(1.0, deadline - time.monotonic()),
            )

    def _lists_all(self, node: EjabberdNode, expected: list[str]) -> bool:
        try:
            return self.members(node) == expected
        except ServerCommandError:
            return False

    def stop(self, *, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop every node (in parallel), then epmd. Safe to call again."""
        requests = [node.begin_stop() for node in self.nodes]
        errors: list[BaseException] = []
        for node, request in zip(self.nodes, requests, strict=True):
            try:
                node.finish_stop(request, timeout=timeout)
            except ServerStopError as exc:
                errors.append(exc)
        if self._epmd is not None:
            self._epmd.stop()
        if errors:
            raise errors[0]
