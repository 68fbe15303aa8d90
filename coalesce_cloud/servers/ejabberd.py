"""ejabberd as a child process: one node (:class:`EjabberdNode`) or a cluster on one host
(:class:`EjabberdCluster`), for ``coalesce-cloud up`` and the tests.

Everything a node needs lives under ``EjabberdConfig.state_dir``: ``ejabberd.yml``, ``ejabberdctl.cfg``,
``inetrc``, the Mnesia spool, logs, the PID file and a private ``HOME`` holding the Erlang cookie (so the
cookie never appears on a command line and ``~/.erlang.cookie`` is never touched). The node runs under
``ejabberdctl foreground``; that script does not exec erl, so the PID we start is bash and beam.smp is its
child (``EJABBERD_PID_PATH`` tells us beam's PID).

Erlang distribution listens on 127.0.0.1 only. A single node uses ``ERL_DIST_PORT`` (:attr:`DistMode.PORT`):
no epmd at all. A cluster cannot (every node on one host would need the same port), so
:class:`EjabberdCluster` starts its own ``epmd -address 127.0.0.1`` on a port of its choosing in the
foreground, owns its PID, and points the nodes at it with ``ERL_EPMD_PORT`` and ``-start_epmd false``
(:attr:`DistMode.EPMD`), so no stray ``epmd -daemon`` is ever spawned.

Accounts use SCRAM-SHA-256 only (``auth_password_format: scram``, ``auth_scram_hash: sha256``; PLAIN is not
offered). Clients connect with STARTTLS (required) on ``c2s_port`` or with direct TLS on ``c2s_tls_port``
(the product's XMPP-over-TLS-on-443). The admin REST API (mod_http_api) listens on ``http_api_host`` and
accepts the commands in ``api_commands`` from ``api_allowed_networks`` without credentials.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import logging
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import httpx

from coalesce_cloud.servers._fs import write_file, write_private_file
from coalesce_cloud.servers.errors import (
    ServerCommandError,
    ServerStartError,
    ServerStopError,
)
from coalesce_cloud.servers.process import (
    DEFAULT_START_TIMEOUT,
    DEFAULT_STOP_TIMEOUT,
    ManagedProcess,
    ServerLifecycle,
    find_executable,
    http_status,
    pid_alive,
    tcp_port_accepts,
)

log = logging.getLogger(__name__)

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None

DEBIAN_CTL_INSTALL_USER_LINE = "INSTALLUSER=ejabberd"
CTL_TIMEOUT = 60.0
API_TIMEOUT = 10.0

API_COMMANDS: tuple[str, ...] = (
    "register",
    "unregister",
    "check_account",
    "change_password",
    "kick_user",
    "ban_account",
    "send_message",
    "connected_users",
    "registered_users",
    "status",
    "user_sessions_info",
    "list_cluster",
)
"""The ejabberd commands the loopback admin API may run (all exist in ejabberd 23.01)."""

TLS_PROTOCOL_OPTIONS = ("no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1", "cipher_server_preference")

MODULES: dict[str, JsonValue] = {
    "mod_admin_extra": {},
    "mod_caps": {},
    "mod_disco": {},
    "mod_offline": {},
    "mod_ping": {},
    "mod_roster": {},
    "mod_stream_mgmt": {},
}

INETRC = '{lookup, ["file", "native"]}.\n{host, {127,0,0,1}, ["localhost"]}.\n'


class DistMode(enum.Enum):
    """How the Erlang node is reached by ejabberdctl and by other nodes."""

    PORT = "port"
    """One fixed distribution port (``ERL_DIST_PORT``), no epmd: a single node."""
    EPMD = "epmd"
    """Registered with an epmd on 127.0.0.1:``epmd_port`` that someone else runs: cluster nodes."""


@dataclass(frozen=True)
class EjabberdConfig:
    state_dir: Path
    certfile: Path
    """PEM holding certificate (chain) and key, e.g. ``CertFiles.combined``; must cover ``domain``."""
    c2s_port: int
    """STARTTLS (required) client listener."""
    c2s_tls_port: int
    """Direct-TLS client listener (443 in production)."""
    http_api_port: int
    dist_port: int | None = None
    """Erlang distribution port; required with :attr:`DistMode.PORT`, unused with EPMD."""
    ca_file: Path | None = None
    """The CA that issued ``certfile``; lets ejabberd validate its own chain (no self-signed warning)."""
    host: str = "127.0.0.1"
    """Address the client listeners bind to."""
    http_api_host: str = "127.0.0.1"
    domain: str = "coalesce.test"
    node_name: str = "ejabberd@localhost"
    cookie: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    dist_mode: DistMode = DistMode.PORT
    epmd_port: int | None = None
    api_allowed_networks: tuple[str, ...] = ("127.0.0.0/8",)
    api_commands: tuple[str, ...] = API_COMMANDS
    max_stanza_size: int = 262_144
    """Bytes; room for a 64 KiB message body after XML escaping."""
    disabled_sasl_mechanisms: tuple[str, ...] = ("PLAIN", "DIGEST-MD5", "X-OAUTH2")
    loglevel: str = "info"

    def __post_init__(self) -> None:
        if self.dist_mode is DistMode.PORT and self.dist_port is None:
            raise ValueError("DistMode.PORT needs dist_port")
        if self.dist_mode is DistMode.EPMD and self.epmd_port is None:
            raise ValueError("DistMode.EPMD needs epmd_port")

    @property
    def spool_dir(self) -> Path:
        return self.state_dir / "spool"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def home_dir(self) -> Path:
        return self.state_dir / "home"

    @property
    def config_file(self) -> Path:
        return self.state_dir / "ejabberd.yml"

    @property
    def ctl_config_file(self) -> Path:
        return self.state_dir / "ejabberdctl.cfg"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "ejabberd.pid"

    @property
    def api_url(self) -> str:
        return f"http://{_url_host(self.http_api_host)}:{self.http_api_port}/api"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def render_ejabberd_yml(config: EjabberdConfig) -> str:
    """ejabberd.yml for ``config``: each top-level option on its own line, values in JSON flow style."""
    tls_listener: dict[str, JsonValue] = {
        "ip": config.host,
        "module": "ejabberd_c2s",
        "access": "c2s",
        "max_stanza_size": config.max_stanza_size,
        "protocol_options": list(TLS_PROTOCOL_OPTIONS),
    }
    options: dict[str, JsonValue] = {
        "loglevel": config.loglevel,
        "log_rotate_count": 0,
        # mod_http_api logs every call with its arguments: this masks password/newpass.
        "hide_sensitive_log_data": True,
        "hosts": [config.domain],
        "certfiles": [str(config.certfile)],
        "auth_method": "internal",
        "auth_password_format": "scram",
        "auth_scram_hash": "sha256",
        "disable_sasl_mechanisms": list(config.disabled_sasl_mechanisms),
        "s2s_access": "none",
        "listen": [
            {"port": config.c2s_port, **tls_listener, "starttls": True, "starttls_required": True},
            {"port": config.c2s_tls_port, **tls_listener, "tls": True},
            {
                "port": config.http_api_port,
                "ip": config.http_api_host,
                "module": "ejabberd_http",
                "request_handlers": {"/api": "mod_http_api"},
            },
        ],
        "acl": {"local": {"user_regexp": ""}},
        "access_rules": {"local": {"allow": "local"}, "c2s": {"allow": "all"}},
        "api_permissions": {
            "console commands": {"from": ["ejabberd_ctl"], "who": "all", "what": "*"},
            "loopback admin": {
                "from": ["mod_http_api"],
                "who": {"ip": list(config.api_allowed_networks)},
                "what": list(config.api_commands),
            },
        },
        "modules": MODULES,
    }
    if config.ca_file is not None:
        options["ca_file"] = str(config.ca_file)
    lines = ["# Written by coalesce_cloud.servers.ejabberd; rewritten on every start."]
    lines += [f"{key}: {json.dumps(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def render_ejabberdctl_cfg(config: EjabberdConfig) -> str:
    """ejabberdctl.cfg (sourced by the ejabberdctl bash script) for ``config``."""
    erl_options = [
        "-env ERL_CRASH_DUMP_BYTES 0",
        # Same effect as INET_DIST_INTERFACE, without the extra erl run the script spends to parse it.
        "-kernel inet_dist_use_interface {127,0,0,1}",
    ]
    lines = [
        "# Written by coalesce_cloud.servers.ejabberd; rewritten on every start.",
        f"ERLANG_NODE={config.node_name}",
        # Debian's script would `su ejabberd` when run as root, which needs an ejabberd-owned spool.
        "EXEC_CMD=as_current_user",
        f"EJABBERD_PID_PATH={config.pid_file}",
        "EJABBERD_BYPASS_WARNINGS=true",
    ]
    if config.dist_mode is DistMode.PORT:
        lines.append(f"ERL_DIST_PORT={config.dist_port}")
    else:
        erl_options.append("-start_epmd false")
        lines.append(f"export ERL_EPMD_PORT={config.epmd_port}")
    lines.append(f'ERL_OPTIONS="{" ".join(erl_options)}"')
    return "\n".join(lines) + "\n"


class EjabberdNode(ServerLifecycle):
    """One ejabberd node. ``start``/``stop`` block; ``async_start``/``aclose`` run them in a thread."""

    def __init__(self, config: EjabberdConfig, *, ctl_path: Path | None = None) -> None:
        self.config = config
        self._ctl_path = ctl_path
        self._process: ManagedProcess | None = None
        self._beam_pid: int | None = None

    def __repr__(self) -> str:
        return f"<EjabberdNode {self.config.node_name} api={self.api_url} running={self.running}>"

    @property
    def api_url(self) -> str:
        """Base URL of mod_http_api; POST ``{api_url}/{command}`` with a JSON object of arguments."""
        return self.config.api_url

    @property
    def c2s_port(self) -> int:
        return self.config.c2s_port

    @property
    def c2s_tls_port(self) -> int:
        return self.config.c2s_tls_port

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def domain(self) -> str:
        return self.config.domain

    @property
    def node_name(self) -> str:
        return self.config.node_name

    @property
    def pid(self) -> int | None:
        """beam.smp's PID while the node runs."""
        return self._beam_pid

    @property
    def wrapper_pid(self) -> int | None:
        """The PID of the ``ejabberdctl foreground`` shell we started (beam.smp's parent)."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    def jid(self, user: str) -> str:
        return f"{user}@{self.config.domain}"

    # ----------------------------------------------------------------------------------------- start

    def launch(self) -> None:
        """Write the configuration and start the node without waiting for it (see :meth:`wait_ready`)."""
        config = self.config
        if self.running:
            raise ServerStartError(f"ejabberd {config.node_name} is already running")
        ctl = self._ctl()
        for directory in (config.state_dir, config.spool_dir, config.logs_dir, config.home_dir):
            directory.mkdir(parents=True, exist_ok=True)
        os.chmod(config.state_dir, 0o700)
        write_file(config.config_file, render_ejabberd_yml(config), mode=0o600)
        write_file(config.ctl_config_file, render_ejabberdctl_cfg(config), mode=0o600)
        write_file(config.state_dir / "inetrc", INETRC)
        write_private_file(config.home_dir / ".erlang.cookie", config.cookie)
        config.pid_file.unlink(missing_ok=True)
        self._beam_pid = None
        self._process = ManagedProcess(
            f"ejabberd {config.node_name}",
            [str(ctl), *self._ctl_options(), "foreground"],
            log_path=config.logs_dir / "console.log",
            env=self._env(),
            cwd=config.spool_dir,
        )
        self._process.launch()

    def wait_ready(self, *, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Wait until the API answers ``status`` with 200 and both client ports accept."""
        if self._process is None:
            raise ServerStartError(f"ejabberd {self.config.node_name} was never started")
        self._process.wait_ready(self._ready, timeout=timeout)
        self._beam_pid = self._read_beam_pid()

    def start(self, *, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        began = time.monotonic()
        self.launch()
        try:
            self.wait_ready(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        log.info("ejabberd %s ready in %.2f s", self.config.node_name, time.monotonic() - began)

    def _ready(self) -> bool:
        config = self.config
        return (
            http_status(f"{config.api_url}/status", timeout=1.0) == 200
            and tcp_port_accepts(config.host, config.c2s_port)
            and tcp_port_accepts(config.host, config.c2s_tls_port)
        )

    def _live_beam_pid(self) -> int | None:
        """beam.smp's PID if it still runs as the child of our wrapper shell (so the PID is not reused)."""
        beam, wrapper = self._beam_pid, self.wrapper_pid
        if beam is None or wrapper is None or not pid_alive(beam) or not _is_beam(beam):
            return None
        try:
            parent = int(Path(f"/proc/{beam}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return None
        return beam if parent == wrapper else None

    def _read_beam_pid(self) -> int | None:
        try:
            pid = int(self.config.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            log.warning("ejabberd %s wrote no PID file", self.config.node_name)
            return None
        if not _is_beam(pid):
            log.warning("the PID file of ejabberd %s names %d, not beam.smp", self.config.node_name, pid)
            return None
        return pid

    # ------------------------------------------------------------------------------------------ stop

    def stop(self, *, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """``ejabberdctl stop``, then wait for beam.smp to exit (SIGTERM, then SIGKILL, if it does not).
        Safe to call again."""
        self._finish_stop(self._request_stop(), timeout=timeout)

    def _request_stop(self) -> subprocess.Popen[bytes] | None:
        """Start ``ejabberdctl stop`` without waiting for it (a cluster stops its nodes in parallel)."""
        if self._process is None or not self._process.running:
            return None
        return subprocess.Popen(
            [str(self._ctl()), *self._ctl_options(), "stop"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self._env(),
            cwd=self.config.spool_dir,
        )

    def _finish_stop(self, request: subprocess.Popen[bytes] | None, *, timeout: float) -> None:
        if self._process is None:
            return
        began = time.monotonic()
        name = self.config.node_name
        requested = False
        if request is not None:
            try:
                request.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                request.kill()
                request.wait()
            requested = request.returncode == 0
            if not requested:
                log.warning("ejabberdctl stop for %s failed (status %s)", name, request.returncode)
        remaining = max(0.0, timeout - (time.monotonic() - began))
        if not (requested and self._process.wait(remaining)):
            beam = self._live_beam_pid()
            if beam is not None:
                # beam.smp treats SIGTERM as init:stop(), the same graceful shutdown as `ejabberdctl stop`.
                log.warning("stopping ejabberd %s with SIGTERM to beam.smp (pid %d)", name, beam)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(beam, signal.SIGTERM)
                self._process.wait(timeout)
        # Reaps the wrapper shell; if it still runs: SIGTERM, then SIGKILL for its group, beam.smp included.
        self._process.stop(timeout=timeout)
        beam = self._beam_pid
        if beam is not None and pid_alive(beam) and _is_beam(beam):
            raise ServerStopError(f"beam.smp of ejabberd {name} (pid {beam}) is still running")
        if request is not None or self._beam_pid is not None:
            log.info("ejabberd %s stopped in %.2f s", name, time.monotonic() - began)
        self._beam_pid = None

    # --------------------------------------------------------------------------------------- control

    def ctl(self, *args: str, timeout: float = CTL_TIMEOUT) -> str:
        """Run ``ejabberdctl <args>`` against this node and return its output.

        Raises :class:`ServerCommandError` when it fails; only the command name goes into the message,
        since arguments may hold passwords.
        """
        if not args:
            raise ValueError("ejabberdctl needs a command")
        try:
            result = subprocess.run(
                [str(self._ctl()), *self._ctl_options(), *args],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                env=self._env(),
                cwd=self.config.spool_dir,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ServerCommandError(f"ejabberdctl {args[0]} took more than {timeout:.0f} s") from exc
        output = (result.stdout + result.stderr).strip()
        if result.returncode != 0:
            raise ServerCommandError(
                f"ejabberdctl {args[0]} failed with status {result.returncode}: {output}"
            )
        return output

    def api_call(
        self, command: str, args: Mapping[str, JsonValue] | None = None, *, timeout: float = API_TIMEOUT
    ) -> JsonValue:
        """POST ``command`` to mod_http_api and return the decoded JSON answer."""
        try:
            response = httpx.post(f"{self.api_url}/{command}", json=dict(args or {}), timeout=timeout)
        except httpx.HTTPError as exc:
            raise ServerCommandError(f"ejabberd API {command}: {exc}") from exc
        return _api_result(command, response)

    async def async_api_call(
        self, command: str, args: Mapping[str, JsonValue] | None = None, *, timeout: float = API_TIMEOUT
    ) -> JsonValue:
        try:
            async with httpx.AsyncClient(timeout=timeout) as client:
                response = await client.post(f"{self.api_url}/{command}", json=dict(args or {}))
        except httpx.HTTPError as exc:
            raise ServerCommandError(f"ejabberd API {command}: {exc}") from exc
        return _api_result(command, response)

    # -------------------------------------------------------------------------------------- internals

    def _ctl(self) -> Path:
        if self._ctl_path is None:
            self._ctl_path = _ejabberdctl_for_current_user(self.config.state_dir)
        return self._ctl_path

    def _ctl_options(self) -> list[str]:
        config = self.config
        return [
            "--config-dir",
            str(config.state_dir),
            "--config",
            str(config.config_file),
            "--ctl-config",
            str(config.ctl_config_file),
            "--logs",
            str(config.logs_dir),
            "--spool",
            str(config.spool_dir),
        ]

    def _env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("ERL_", "EJABBERD", "ERLANG_")) and key != "HOME"
        }
        env["HOME"] = str(self.config.home_dir)
        if self.config.epmd_port is not None and self.config.dist_mode is DistMode.EPMD:
            env["ERL_EPMD_PORT"] = str(self.config.epmd_port)
        return env


def _is_beam(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().startswith("beam")
    except OSError:
        return False


def _api_result(command: str, response: httpx.Response) -> JsonValue:
    if response.status_code != 200:
        raise ServerCommandError(
            f"ejabberd API {command}: HTTP {response.status_code}: {response.text[:500]}"
        )
    try:
        result: JsonValue = response.json()
    except ValueError as exc:
        raise ServerCommandError(f"ejabberd API {command}: not JSON: {response.text[:200]!r}") from exc
    return result


def _ejabberdctl_for_current_user(state_dir: Path) -> Path:
    """Debian's ejabberdctl, or (when not root) a copy that lets the current user run it.

    The Debian script refuses every user but root and ``ejabberd`` before it reads ejabberdctl.cfg
    (/usr/sbin/ejabberdctl, "check the proper system user is used"); with ``INSTALLUSER`` empty it runs
    as whoever calls it.
    """
    ctl = find_executable("ejabberdctl", package="ejabberd")
    find_executable("erl", package="erlang-base")
    if os.geteuid() == 0:
        return ctl
    text = ctl.read_text()
    if DEBIAN_CTL_INSTALL_USER_LINE not in text:
        return ctl
    copy = state_dir / "ejabberdctl"
    write_file(copy, text.replace(DEBIAN_CTL_INSTALL_USER_LINE, "INSTALLUSER=", 1), mode=0o700)
    return copy


# ------------------------------------------------------------------------------------------- cluster


@dataclass(frozen=True)
class EjabberdPorts:
    """The TCP ports of one cluster node."""

    c2s: int
    c2s_tls: int
    http_api: int


class EjabberdCluster(ServerLifecycle):
    """``len(ports)`` ejabberd nodes (``ejabberd1@localhost``, ``ejabberd2@localhost``, ...) on this host,
    sharing a cookie and an epmd we start on 127.0.0.1:``epmd_port``; nodes 2.. join node 1."""

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
            node._ctl()  # raises ServerNotInstalledError before anything starts
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
            assert node._process is not None
            node._process.wait_ready(
                functools.partial(self._lists_all, node, expected),
                timeout=max(1.0, deadline - time.monotonic()),
            )

    def _lists_all(self, node: EjabberdNode, expected: list[str]) -> bool:
        if http_status(f"{node.api_url}/status", timeout=1.0) != 200:
            return False
        try:
            return self.members(node) == expected
        except ServerCommandError:
            return False

    def stop(self, *, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop every node (in parallel), then epmd. Safe to call again."""
        requests = [node._request_stop() for node in self.nodes]
        errors: list[BaseException] = []
        for node, request in zip(self.nodes, requests, strict=True):
            try:
                node._finish_stop(request, timeout=timeout)
            except ServerStopError as exc:
                errors.append(exc)
        if self._epmd is not None:
            self._epmd.stop()
        if errors:
            raise errors[0]


__all__ = [
    "API_COMMANDS",
    "DistMode",
    "EjabberdCluster",
    "EjabberdConfig",
    "EjabberdNode",
    "EjabberdPorts",
    "JsonValue",
    "render_ejabberd_yml",
    "render_ejabberdctl_cfg",
]
