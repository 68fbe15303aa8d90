"""One ejabberd node as a child process (:class:`EjabberdNode`), for ``coalesce-cloud up`` and the tests.

Everything a node needs lives under ``EjabberdConfig.state_dir``: ``ejabberd.yml``, ``ejabberdctl.cfg``
(both rendered by :mod:`.config`), ``inetrc``, the Mnesia spool, logs, the PID file and a private ``HOME``
holding the Erlang cookie (so the cookie never appears on a command line and ``~/.erlang.cookie`` is never
touched). The node runs under ``ejabberdctl foreground``; that script does not exec erl, so the PID we
start is bash and beam.smp is its child (``EJABBERD_PID_PATH`` tells us beam's PID). The script's ``erl`` is
our launcher (:data:`ERL_LAUNCHER`), which asks the kernel to SIGTERM beam.smp (a graceful ``init:stop``)
when the script dies: with the script's own parent-death signal (:mod:`..process`), a killed parent leaves
no ejabberd behind.

Erlang distribution listens on 127.0.0.1 only. A single node uses ``ERL_DIST_PORT`` (:attr:`DistMode.PORT`):
no epmd at all. Nodes of a :class:`~coalesce_cloud.servers.ejabberd.cluster.EjabberdCluster` register with
the cluster's epmd instead (:attr:`DistMode.EPMD`).

The admin API obeys one account only (``EjabberdConfig.api_user``, HTTP Basic auth; see :mod:`.config`).
:meth:`EjabberdNode.wait_ready` creates it (or resets its password, on a spool kept from other settings)
through the node's private unix socket (``EjabberdConfig.owner_socket``, in the 0700 state folder):
``ejabberdctl register`` would show the password to every local user in ``ps``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from coalesce_cloud.servers._fs import write_file, write_private_file
from coalesce_cloud.servers.ejabberd.config import (
    INETRC,
    DistMode,
    EjabberdConfig,
    JsonValue,
    render_ejabberd_yml,
    render_ejabberdctl_cfg,
)
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
    pid_alive,
    tcp_port_accepts,
)
from coalesce_common.net.why import describe_os_error

log = logging.getLogger(__name__)

DEBIAN_CTL_INSTALL_USER_LINE = "INSTALLUSER=ejabberd"
CTL_TIMEOUT = 60.0
ERL_LAUNCHER = """#!/bin/sh
# Written by coalesce_cloud.servers.ejabberd. ejabberdctl runs erl as its child: the kernel sends that
# child (beam.smp, after erl's execs) SIGTERM when ejabberdctl dies, so no node outlives it.
exec {setpriv} --pdeathsig TERM -- {erl} "$@"
"""
API_TIMEOUT = 10.0
_API_UP = (200, 401)
"""``status`` answers: 200 with our account, 401 while the account does not exist yet."""


class EjabberdNode(ServerLifecycle):
    """One ejabberd node. ``start``/``stop`` block; ``async_start``/``aclose`` run them in a thread."""

    def __init__(self, config: EjabberdConfig, *, ctl_path: Path | None = None) -> None:
        self.config = config
        self._ctl_path = ctl_path
        self._process: ManagedProcess | None = None
        self._beam_pid: int | None = None
        self._stop_signalled = False

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
        launcher = ERL_LAUNCHER.format(
            setpriv=find_executable("setpriv", package="util-linux"),
            erl=find_executable("erl", package="erlang-base"),
        )
        write_file(config.erl_launcher, launcher, mode=0o700)
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
        """Wait until the API answers and both client ports accept, then make sure the API's account
        exists with the configured password."""
        self.wait_until(self._ready, timeout=timeout)
        self._beam_pid = self._read_beam_pid()
        self._ensure_api_account()

    @property
    def api_auth(self) -> tuple[str, str]:
        """HTTP Basic credentials of the admin API: (JID, password)."""
        return self.config.api_jid, self.config.api_password

    def start(self, *, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        began = time.monotonic()
        self.launch()
        try:
            self.wait_ready(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        log.info("ejabberd %s ready in %.2f s", self.config.node_name, time.monotonic() - began)

    def wait_until(self, condition: Callable[[], bool], *, timeout: float) -> None:
        """Wait until ``condition()`` holds while the node runs (:class:`ServerStartError` if it exits)."""
        if self._process is None:
            raise ServerStartError(f"ejabberd {self.config.node_name} was never started")
        self._process.wait_ready(condition, timeout=timeout)

    def check_installed(self) -> None:
        """Raise :class:`~coalesce_cloud.servers.errors.ServerNotInstalledError` unless ejabberd and Erlang
        are installed (before anything starts)."""
        self._ctl()

    def _ready(self) -> bool:
        config = self.config
        return (
            self._api_status() in _API_UP
            and tcp_port_accepts(config.host, config.c2s_port)
            and tcp_port_accepts(config.host, config.c2s_tls_port)
        )

    def _api_status(self) -> int | None:
        """What ``status`` answers with our credentials (401 before the account exists), None if nothing."""
        try:
            return httpx.post(f"{self.api_url}/status", json={}, auth=self.api_auth, timeout=1.0).status_code
        except httpx.HTTPError:
            return None

    def _ensure_api_account(self) -> None:
        if self._api_status() == 200:
            return
        config = self.config
        account: dict[str, JsonValue] = {"user": config.api_user, "host": config.domain}
        transport = httpx.HTTPTransport(uds=str(config.owner_socket))
        try:
            with httpx.Client(transport=transport, base_url="http://owner/api", timeout=API_TIMEOUT) as owner:
                response = owner.post("/register", json={**account, "password": config.api_password})
                if response.status_code == 409:  # exists, with another password (a spool kept from before)
                    response = owner.post(
                        "/change_password", json={**account, "newpass": config.api_password}
                    )
        except httpx.HTTPError as exc:
            raise ServerStartError(f"ejabberd's socket {config.owner_socket} did not answer: {exc}") from exc
        _api_result(response.url.path.rsplit("/", 1)[-1], response)
        log.info("ejabberd %s: set up the admin API account %s", config.node_name, config.api_jid)

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
        """SIGTERM to beam.smp (or ``ejabberdctl stop``), then wait for it to exit (SIGKILL if it does not).
        Safe to call again."""
        self.finish_stop(self.begin_stop(), timeout=timeout)

    def begin_stop(self) -> subprocess.Popen[bytes] | None:
        """Ask the node to stop without waiting, for :meth:`finish_stop` (a cluster stops its nodes in
        parallel). beam.smp treats SIGTERM as init:stop(), the graceful shutdown ``ejabberdctl stop`` asks
        for, without a second Erlang VM started to ask it (1.2 s against 3.6 s on a busy two-core machine).
        Returns the ``ejabberdctl stop`` process when beam's PID is unknown, None otherwise."""
        if self._process is None or not self._process.running:
            return None
        beam = self._live_beam_pid()
        if beam is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(beam, signal.SIGTERM)
            self._stop_signalled = True
            return None
        return subprocess.Popen(
            [str(self._ctl()), *self._ctl_options(), "stop"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self._env(),
            cwd=self.config.spool_dir,
        )

    def finish_stop(self, request: subprocess.Popen[bytes] | None, *, timeout: float) -> None:
        """Wait for the stop :meth:`begin_stop` asked for; signal beam.smp if it did not work."""
        if self._process is None:
            return
        began = time.monotonic()
        name = self.config.node_name
        requested, self._stop_signalled = self._stop_signalled, False
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
            response = httpx.post(
                f"{self.api_url}/{command}", json=dict(args or {}), auth=self.api_auth, timeout=timeout
            )
        except httpx.HTTPError as exc:
            raise self._api_unreachable(command, exc) from exc
        return _api_result(command, response)

    async def async_api_call(
        self, command: str, args: Mapping[str, JsonValue] | None = None, *, timeout: float = API_TIMEOUT
    ) -> JsonValue:
        try:
            async with httpx.AsyncClient(timeout=timeout, auth=self.api_auth) as client:
                response = await client.post(f"{self.api_url}/{command}", json=dict(args or {}))
        except httpx.HTTPError as exc:
            raise self._api_unreachable(command, exc) from exc
        return _api_result(command, response)

    # -------------------------------------------------------------------------------------- internals

    def _api_unreachable(self, command: str, exc: httpx.HTTPError) -> ServerCommandError:
        url = httpx.URL(self.api_url)
        why = describe_os_error(exc, url.host, url.port, peer="ejabberd")
        return ServerCommandError(f"ejabberd API {command}: {why}")

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
