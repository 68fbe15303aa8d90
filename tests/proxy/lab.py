"""A real network for proxy tests: a network namespace whose only way out is a proxy on the host.

- :class:`~coalesce_testing.netns.Netns` (the namespace, its veth and its firewall) lives in
  :mod:`coalesce_testing.netns`, shared with the benchmarks; this module adds what the proxy tests need.
- :class:`Squid` (HTTP proxy; open, basic-auth, or refusing CONNECT to unlisted ports) and :class:`Dante`
  (SOCKS5; open, or username/password against a temporary system user), both bound to the veth host IP and
  run as :class:`~coalesce_cloud.servers.process.ManagedProcess`. Both reach host services on 127.0.0.1,
  so a client in the namespace gets to the cloud's loopback servers only through them.
- :class:`StaticHttpServer` / :class:`PacServer`: fixed bodies over HTTP from a thread (a loopback target
  service; a PAC file on the veth host IP).
- :func:`fetch_in_netns`: one HTTP GET from inside the namespace, direct or through a proxy, with curl
  (when installed) or a stdlib-only Python client, normalised to a :class:`FetchResult`.
- :func:`remove_stale_labs` / :func:`lab_leftovers`: what a killed test run left (namespaces, veths,
  system users, squid's /dev/shm segments), found by the PID in their names and removed.

Names carry the owner's PID: namespaces ``cotest-<pid>-<n>``, users ``cotest-<pid>-<hex>``, squid services
``cotest<pid>n<n>``; veths are ``cot<X>h``/``cot<X>n`` (X of the subnet) with the namespace name as alias.
It all needs root.
"""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import itertools
import json
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol, Self

from coalesce_cloud.servers.errors import ServerNotInstalledError
from coalesce_cloud.servers.process import (
    ManagedProcess,
    find_executable,
    living_group_members,
    pid_alive,
    tcp_port_accepts,
)
from coalesce_testing.netns import (
    NETNS_NAME,
    OWNER_PREFIX,
    STOP_TIMEOUT,
    VETH_NAME,
    LabError,
    Netns,
    free_port,
    netns_names,
    owner_tag,
    run_command,
    tool,
    wait_until,
)

log = logging.getLogger(__name__)

START_TIMEOUT = 20.0
_USER_NAME = re.compile(rf"^{OWNER_PREFIX}-(\d+)-[0-9a-f]+$")
_SQUID_SHM_NAME = re.compile(rf"^{OWNER_PREFIX}(\d+)n\d+-")
SHM_DIR = Path("/dev/shm")
_squid_counter = itertools.count()
_run = run_command
_tool = tool
_wait_until = wait_until


# ---------------------------------------------------------------------------------------- stale labs


def _lab_veths() -> list[tuple[str, str]]:
    """(name, alias) of the host-side lab veths."""
    links = json.loads(_run(["ip", "-j", "link", "show", "type", "veth"], check=False).stdout or "[]")
    return [(link["ifname"], link.get("ifalias", "")) for link in links if VETH_NAME.match(link["ifname"])]


def _lab_users() -> list[str]:
    return [entry.pw_name for entry in pwd.getpwall() if _USER_NAME.match(entry.pw_name)]


def _squid_shm_segments(service_name: str | None = None) -> list[Path]:
    """Squid's shared-memory segments: of one service, or of every lab squid."""
    if not SHM_DIR.is_dir():
        return []
    if service_name is not None:
        return sorted(SHM_DIR.glob(f"{service_name}-*"))
    return sorted(path for path in SHM_DIR.iterdir() if _SQUID_SHM_NAME.match(path.name))


def _owner_pid(name: str) -> int | None:
    match = NETNS_NAME.match(name) or _USER_NAME.match(name) or _SQUID_SHM_NAME.match(name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Leftovers:
    netns: list[str]
    veths: list[str]
    users: list[str]
    shm: list[str]
    """Squid's segments in /dev/shm (a SIGKILLed squid cannot remove them)."""

    def __bool__(self) -> bool:
        return bool(self.netns or self.veths or self.users or self.shm)


def lab_leftovers(pid: int | None = None) -> Leftovers:
    """What the lab of process ``pid`` (default: this one) has left on the machine right now."""
    tag = owner_tag(pid) + "-"
    return Leftovers(
        netns=[name for name in netns_names() if name.startswith(tag)],
        veths=[name for name, alias in _lab_veths() if alias.startswith(tag)],
        users=[name for name in _lab_users() if name.startswith(tag)],
        shm=[path.name for path in _squid_shm_segments() if _owner_pid(path.name) == (pid or os.getpid())],
    )


def remove_leftovers(leftovers: Leftovers) -> None:
    """Delete these namespaces, veths and users (a process still inside a namespace keeps it alive)."""
    for name in leftovers.netns:
        _run(["ip", "netns", "del", name], check=False)
    for name in leftovers.veths:
        _run(["ip", "link", "del", name], check=False)
    for name in leftovers.users:
        _run(["userdel", name], check=False)
    for name in leftovers.shm:
        (SHM_DIR / name).unlink(missing_ok=True)


def remove_stale_labs() -> Leftovers:
    """Remove namespaces, veths and users left by lab owners that no longer run; returns what went."""

    def stale(name: str) -> bool:
        pid = _owner_pid(name)
        return pid is not None and pid != os.getpid() and not pid_alive(pid)

    found = Leftovers(
        netns=[name for name in netns_names() if stale(name)],
        veths=[name for name, alias in _lab_veths() if stale(alias)],
        users=[name for name in _lab_users() if stale(name)],
        shm=[path.name for path in _squid_shm_segments() if stale(path.name)],
    )
    if found:
        log.warning("removing what dead proxy-lab runs left: %s", found)
        remove_leftovers(found)
    return found


# --------------------------------------------------------------------------------------------- proxies


def _proxy_state_dir(path: Path) -> Path:
    """Make ``path`` (and nothing above it) a state directory the ``proxy`` user can write to."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        proxy = pwd.getpwnam("proxy")
    except KeyError as exc:
        raise ServerNotInstalledError("no 'proxy' system user: install the Debian package squid") from exc
    os.chown(path, proxy.pw_uid, proxy.pw_gid)
    path.chmod(0o755)
    return path


def _wait_for_line(path: Path, pattern: str, timeout: float) -> str:
    regex = re.compile(pattern)
    found: list[str] = []

    def matched() -> bool:
        with contextlib.suppress(FileNotFoundError):
            found.extend(line for line in path.read_text(errors="replace").splitlines() if regex.search(line))
        return bool(found)

    try:
        _wait_until(matched, timeout, f"/{pattern}/ in {path}")
    except LabError:
        tail = path.read_text(errors="replace")[-2000:] if path.exists() else "(no file)"
        message = f"no line matching /{pattern}/ in {path} within {timeout:.1f} s; it ends:\n{tail}"
        raise LabError(message) from None
    return found[0]


class _ProxyBase:
    """What Squid and Dante share: a ManagedProcess bound to ``host:port``, stopped and checked by PID."""

    scheme = ""

    def __init__(self, state_dir: Path, *, host: str, port: int | None, clients: Sequence[str]) -> None:
        if any(char.isspace() for char in str(state_dir)):
            # Neither squid.conf nor sockd.conf can quote a path: "access_log stdio:/a b/access.log" fails.
            raise ValueError(f"a proxy state directory must not contain white space: {state_dir!r}")
        self.state_dir = state_dir
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.clients = [str(ipaddress.ip_network(cidr)) for cidr in ("127.0.0.1/32", *clients)]
        self.username: str | None = None
        self.password: str | None = None
        self._process: ManagedProcess | None = None
        self.start_seconds: float | None = None
        self.stop_seconds: float | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host}:{self.port} auth={self.username is not None}>"

    @property
    def address(self) -> tuple[str, int]:
        """(host, port): what the namespace's firewall must let through."""
        return self.host, self.port

    @property
    def url(self) -> str:
        """``scheme://[user:password@]host:port``, credentials percent-encoded."""
        creds = ""
        if self.username is not None and self.password is not None:
            quote = urllib.parse.quote
            creds = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}@"
        return f"{self.scheme}://{creds}{self.host}:{self.port}"

    def url_with(self, *, username: str, password: str) -> str:
        """This proxy's URL with other credentials (to test a refusal)."""
        creds = f"{urllib.parse.quote(username, safe='')}:{urllib.parse.quote(password, safe='')}"
        return f"{self.scheme}://{creds}@{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    def _start_process(self, name: str, args: Sequence[str], log_path: Path, timeout: float) -> None:
        self._process = ManagedProcess(
            name, args, log_path=log_path, cwd=self.state_dir, stop_timeout=STOP_TIMEOUT
        )
        began = time.monotonic()
        self._process.start(lambda: tcp_port_accepts(self.host, self.port, timeout=0.2), timeout=timeout)
        self.start_seconds = time.monotonic() - began

    def _stop_process(self, sig: signal.Signals, *, whole_group: bool = False) -> None:
        """Send ``sig`` by PID (to the whole process group with ``whole_group``), SIGKILL the group after
        a timeout; then check that nothing of the group remains and that the port no longer accepts."""
        process = self._process
        if process is None or process.pid is None or process.returncode is not None:
            return
        pgid = process.pid
        began = time.monotonic()
        if whole_group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
            with contextlib.suppress(LabError):  # process.stop() below kills what is still there
                _wait_until(lambda: not living_group_members(pgid), STOP_TIMEOUT, f"{process.name} to exit")
        process.stop_signal = sig
        process.stop()
        self.stop_seconds = time.monotonic() - began
        survivors = living_group_members(pgid)
        if survivors:
            raise LabError(f"{process.name}: processes {survivors} of its group survived stop")
        if tcp_port_accepts(self.host, self.port, timeout=0.2):
            raise LabError(f"{process.name}: {self.host}:{self.port} still accepts after stop")


class Squid(_ProxyBase):
    """squid 5 (``squid -N``) as an HTTP proxy on ``host:port``, state (config, logs, pid) in ``state_dir``.

    ``state_dir`` must be reachable by the ``proxy`` user squid drops to (not under a 0700 directory such as
    pytest's ``tmp_path``); it is chowned to that user. Clients from ``clients`` (CIDRs) and 127.0.0.1 may
    use it; with ``auth`` only after basic auth as :attr:`username` / :attr:`password` (random unless
    given). With ``connect_ports`` set, CONNECT to any other port is refused with 403. CONNECT to any port,
    and to 127.0.0.1, is otherwise allowed: the config never names ``to_localhost``.
    """

    scheme = "http"

    def __init__(
        self,
        state_dir: Path,
        *,
        host: str,
        port: int | None = None,
        clients: Sequence[str] = (),
        auth: bool = False,
        connect_ports: Iterable[int] | None = None,
        username: str = "coalesce",
        password: str | None = None,
    ) -> None:
        super().__init__(state_dir, host=host, port=port, clients=clients)
        self.auth = auth
        self.connect_ports = frozenset(connect_ports) if connect_ports is not None else None
        # Squid names its shared-memory segments (/dev/shm/<service>-*.shm) after the service: one per
        # instance, so concurrent squids never share them, and we can remove exactly ours after a SIGKILL.
        self.service_name = f"{OWNER_PREFIX}{os.getpid()}n{next(_squid_counter)}"
        if auth:
            self.username = username
            self.password = password if password is not None else secrets.token_hex(12)

    @property
    def config_file(self) -> Path:
        return self.state_dir / "squid.conf"

    @property
    def access_log(self) -> Path:
        """One line per transaction, e.g. ``... 10.213.X.2 TCP_TUNNEL/200 ... CONNECT 127.0.0.1:8080 ...``;
        a tunnel is logged when it closes."""
        return self.state_dir / "access.log"

    @property
    def cache_log(self) -> Path:
        return self.state_dir / "cache.log"

    @property
    def passwd_file(self) -> Path:
        return self.state_dir / "passwd"

    def render_config(self, ncsa_auth: str) -> str:
        state = self.state_dir
        lines = [
            "# Written by tests/proxy/lab.py for one test.",
            f"http_port {self.host}:{self.port}",
            "visible_hostname coalesce-lab",
            f"pid_filename {state / 'squid.pid'}",
            "cache_effective_user proxy",
            f"access_log stdio:{self.access_log} squid",
            f"cache_log {self.cache_log}",
            "cache_store_log none",
            "netdb_filename none",
            f"coredump_dir {state}",
            "logfile_rotate 0",
            "cache deny all",
            "pinger_enable off",
            "shutdown_lifetime 1 second",
            f"acl lab_clients src {' '.join(self.clients)}",
        ]
        if self.connect_ports is not None:
            if self.connect_ports:
                lines.append(f"acl allowed_ports port {' '.join(str(p) for p in sorted(self.connect_ports))}")
                lines.append("http_access deny CONNECT !allowed_ports")
            else:
                lines.append("http_access deny CONNECT")
        if self.auth:
            lines += [
                f"auth_param basic program {ncsa_auth} {self.passwd_file}",
                "auth_param basic realm coalesce-lab",
                "acl authed proxy_auth REQUIRED",
                "http_access allow lab_clients authed",
            ]
        else:
            lines.append("http_access allow lab_clients")
        lines.append("http_access deny all")
        return "\n".join(lines) + "\n"

    def start(self, *, timeout: float = START_TIMEOUT) -> None:
        """Write config (and password file), start squid, wait until its port accepts."""
        squid = str(find_executable("squid", package="squid"))
        ncsa_auth = str(find_executable("basic_ncsa_auth", package="squid", search=[Path("/usr/lib/squid")]))
        state = _proxy_state_dir(self.state_dir)
        proxy = pwd.getpwnam("proxy")
        for log_file in (self.access_log, self.cache_log):
            log_file.touch()
            os.chown(log_file, proxy.pw_uid, proxy.pw_gid)
        if self.auth:
            assert self.username is not None and self.password is not None
            htpasswd = str(find_executable("htpasswd", package="apache2-utils"))
            # -i: the password comes on stdin, never on a command line.
            _run([htpasswd, "-c", "-i", str(self.passwd_file), self.username], input=self.password + "\n")
            os.chown(self.passwd_file, 0, proxy.pw_gid)
            self.passwd_file.chmod(0o640)
        self.config_file.write_text(self.render_config(ncsa_auth))
        args = [squid, "-N", "-n", self.service_name, "-f", str(self.config_file)]
        self._start_process("squid", args, state / "squid.out", timeout)

    def stop(self, *, graceful: bool = False) -> None:
        """Stop squid by PID and kill its helpers (the whole process group); check nothing is left.

        Squid's own shutdown (``graceful``, SIGTERM) takes 2 s however short ``shutdown_lifetime`` is, so the
        default is SIGKILL: the access log is already written (unbuffered), and the shared-memory segments
        squid would have removed are removed here. Idempotent.
        """
        try:
            self._stop_process(signal.SIGTERM if graceful else signal.SIGKILL)
        finally:
            for segment in _squid_shm_segments(self.service_name):
                segment.unlink(missing_ok=True)

    def wait_for_access(self, pattern: str, *, timeout: float = 5.0) -> str:
        """The first access-log line matching ``pattern`` (a regex), waiting for it to be written."""
        return _wait_for_line(self.access_log, pattern, timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class Dante(_ProxyBase):
    """dante 1.4 (``danted -N 1``, foreground) as a SOCKS5 proxy on ``host:port`` (CONNECT only).

    It connects out from 127.0.0.1 (``external``), so it reaches host services on loopback and on every other
    host address. With ``auth`` (``socksmethod: username``, RFC 1929) it checks the password of a system
    account: :meth:`start` creates one named ``cotest-<pid>-<hex>`` (no home, no login shell, group nogroup)
    with a random password, and :meth:`stop` deletes it.
    """

    scheme = "socks5"

    def __init__(
        self,
        state_dir: Path,
        *,
        host: str,
        port: int | None = None,
        clients: Sequence[str] = (),
        auth: bool = False,
        external: str = "127.0.0.1",
    ) -> None:
        super().__init__(state_dir, host=host, port=port, clients=clients)
        self.auth = auth
        self.external = external
        self._user_created = False
        if auth:
            self.username = f"{owner_tag()}-{secrets.token_hex(3)}"
            self.password = secrets.token_hex(12)

    @property
    def config_file(self) -> Path:
        return self.state_dir / "sockd.conf"

    @property
    def log_path(self) -> Path:
        """Dante's log: one ``pass`` line per tunnel opened and closed, with both ends."""
        return self.state_dir / "sockd.log"

    def render_config(self) -> str:
        method = "username" if self.auth else "none"
        lines = [
            "# Written by tests/proxy/lab.py for one test.",
            f"logoutput: {self.log_path}",
            f"internal: {self.host} port = {self.port}",
            f"external: {self.external}",
            "clientmethod: none",
            f"socksmethod: {method}",
            "user.privileged: root",
            "user.unprivileged: nobody",
        ]
        lines += [f"client pass {{ from: {cidr} to: 0.0.0.0/0 }}" for cidr in self.clients]
        lines += [
            "socks pass {",
            "    from: 0.0.0.0/0 to: 0.0.0.0/0",
            "    command: connect",
            f"    socksmethod: {method}",
            "    log: connect disconnect error",
            "}",
        ]
        return "\n".join(lines) + "\n"

    def start(self, *, timeout: float = START_TIMEOUT) -> None:
        """Create the system user (with ``auth``), write the config, start danted, wait until it accepts."""
        danted = str(find_executable("danted", package="dante-server"))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            if self.auth:
                self._create_user()
            self.config_file.write_text(self.render_config())
            args = [danted, "-f", str(self.config_file), "-p", str(self.state_dir / "sockd.pid"), "-N", "1"]
            self._start_process("danted", args, self.state_dir / "danted.out", timeout)
        except BaseException:
            self._delete_user()
            raise

    def _create_user(self) -> None:
        assert self.username is not None and self.password is not None
        useradd = _tool("useradd", "passwd")
        chpasswd = _tool("chpasswd", "passwd")
        nologin = shutil.which("nologin", path="/usr/sbin:/sbin:/usr/bin:/bin") or "/bin/false"
        options = ["--no-create-home", "--home-dir", "/nonexistent", "--shell", nologin]
        _run([useradd, *options, "--no-user-group", "--gid", "nogroup", self.username])
        self._user_created = True
        _run([chpasswd], input=f"{self.username}:{self.password}\n")  # stdin: never on a command line

    def _delete_user(self) -> None:
        if not self._user_created or self.username is None:
            return
        _run([_tool("userdel", "passwd"), self.username])
        self._user_created = False
        with contextlib.suppress(KeyError):
            pwd.getpwnam(self.username)
            raise LabError(f"system user {self.username} is still there after userdel")

    def stop(self) -> None:
        """SIGTERM to danted's process group (its ~10 workers would otherwise outlive the mother for a
        moment), check nothing is left, then delete the user. Idempotent."""
        try:
            self._stop_process(signal.SIGTERM, whole_group=True)
        finally:
            self._delete_user()

    def wait_for_log(self, pattern: str, *, timeout: float = 5.0) -> str:
        """The first line of dante's log matching ``pattern`` (a regex), waiting for it to be written."""
        return _wait_for_line(self.log_path, pattern, timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------ HTTP servers


@dataclass(frozen=True)
class ServedRequest:
    client: str
    """The peer's IP address: 127.0.0.1 when the request came through a lab proxy."""
    method: str
    path: str


class StaticHttpServer:
    """Fixed responses by path (``{path: (content_type, body)}``) from a thread; 404 for other paths.

    Binds at construction (port 0 = the kernel picks) and serves until :meth:`stop`; records every request
    in :attr:`requests`.
    """

    def __init__(self, host: str, files: Mapping[str, tuple[str, bytes]], *, port: int = 0) -> None:
        self.files = dict(files)
        self.requests: list[ServedRequest] = []
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(with_body=True)

            def do_HEAD(self) -> None:
                self._answer(with_body=False)

            def _answer(self, *, with_body: bool) -> None:
                path = urllib.parse.urlsplit(self.path).path
                with server._lock:
                    server.requests.append(ServedRequest(self.client_address[0], self.command, path))
                    entry = server.files.get(path)
                if entry is None:
                    self.send_error(404)
                    return
                content_type, body = entry
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("http %s: " + format, self.client_address[0], *args)

        self._httpd = http.server.ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.host: str = host
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"http-{host}:{self.port}"
        )
        self._thread.start()
        self._stopped = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host}:{self.port}>"

    def url_for(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def set_file(self, path: str, content_type: str, body: bytes) -> None:
        with self._lock:
            self.files[path] = (content_type, body)

    def requests_for(self, path: str) -> list[ServedRequest]:
        with self._lock:
            return [request for request in self.requests if request.path == path]

    def stop(self) -> None:
        """Stop serving, close the socket, join the thread. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(STOP_TIMEOUT)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


PAC_PATH = "/proxy.pac"
PAC_CONTENT_TYPE = "application/x-ns-proxy-autoconfig"


class PacServer(StaticHttpServer):
    """Serves a PAC script at ``/proxy.pac`` (``application/x-ns-proxy-autoconfig``); :attr:`url` is what a
    client's "automatic proxy configuration URL" would be. Assign :attr:`pac` to change what it serves."""

    def __init__(self, host: str, pac: str, *, port: int = 0) -> None:
        super().__init__(host, {PAC_PATH: (PAC_CONTENT_TYPE, pac.encode())}, port=port)

    @property
    def url(self) -> str:
        return self.url_for(PAC_PATH)

    @property
    def pac(self) -> str:
        return self.files[PAC_PATH][1].decode()

    @pac.setter
    def pac(self, text: str) -> None:
        self.set_file(PAC_PATH, PAC_CONTENT_TYPE, text.encode())

    @property
    def fetch_count(self) -> int:
        return len(self.requests_for(PAC_PATH))


class SquidFactory(Protocol):
    """The ``squid_factory`` fixture: starts a :class:`Squid` for the test's namespace."""

    def __call__(
        self, *, auth: bool = False, connect_ports: Iterable[int] | None = None, password: str | None = None
    ) -> Squid: ...


class DanteFactory(Protocol):
    """The ``dante_factory`` fixture: starts a :class:`Dante` for the test's namespace."""

    def __call__(self, *, auth: bool = False) -> Dante: ...


class PacServerFactory(Protocol):
    """The ``pac_server_factory`` fixture: serves ``pac`` on the namespace's host IP."""

    def __call__(self, pac: str) -> PacServer: ...


# ------------------------------------------------------------------------------------ fetching from inside

FetchClient = Literal["curl", "python"]


@dataclass(frozen=True)
class FetchResult:
    """One GET from inside a namespace, the same whichever client made it.

    ``status`` is the HTTP status the request ended with (None when no HTTP response came: refused,
    unreachable, a CONNECT or SOCKS refusal, a timeout); ``proxy_status`` the answer to CONNECT (None without
    a tunnel); ``error`` what the client said when it failed (None on success).
    """

    client: FetchClient
    status: int | None
    proxy_status: int | None
    body: bytes
    content_type: str | None
    error: str | None
    seconds: float


def curl_available() -> bool:
    return shutil.which("curl") is not None


def fetch_in_netns(
    netns: Netns,
    url: str,
    *,
    proxy: str | None = None,
    tunnel: bool = True,
    client: FetchClient | None = None,
    timeout: float = 10.0,
) -> FetchResult:
    """GET ``url`` from inside ``netns``: direct, or through ``proxy`` (``http://`` with CONNECT when
    ``tunnel``, else an absolute-URI request; ``socks5://``). ``client`` defaults to curl when installed."""
    chosen: FetchClient = client or ("curl" if curl_available() else "python")
    began = time.monotonic()
    env = {key: value for key, value in os.environ.items() if not key.lower().endswith("_proxy")}
    if chosen == "curl":
        write_out = r"\n%{http_code} %{http_connect} %{content_type}"
        args = ["curl", "-sS", "--max-time", str(timeout), "-w", write_out]
        if proxy is None:
            args += ["--noproxy", "*"]
        else:
            args += ["-x", proxy]
            if tunnel and proxy.startswith("http"):
                args.append("--proxytunnel")
        args.append(url)
    else:
        probe = [url, proxy or "", "1" if tunnel else "0", str(timeout)]
        args = [sys.executable, "-I", "-c", _PYTHON_FETCH, *probe]
    result = subprocess.run(
        netns.exec_args(args), capture_output=True, env=env, timeout=timeout + 10, check=False
    )
    seconds = time.monotonic() - began
    stderr = result.stderr.decode(errors="replace").strip()
    if chosen == "curl":
        body, _, written = result.stdout.rpartition(b"\n")
        fields = [*written.decode(errors="replace").split(" ", 2), "", ""]
        http_code, connect_code, content_type = fields[:3]
        ok = result.returncode == 0
        return FetchResult(
            client="curl",
            status=int(http_code) if ok and http_code.isdigit() and int(http_code) else None,
            proxy_status=int(connect_code) if connect_code.isdigit() and int(connect_code) else None,
            body=body if ok else b"",
            content_type=(content_type or None) if ok else None,
            error=None if ok else f"curl exit {result.returncode}: {stderr}",
            seconds=seconds,
        )
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError:
        data = {"status": None, "proxy_status": None, "body": "", "error": f"python probe failed: {stderr}"}
    return FetchResult(
        client="python",
        status=data["status"],
        proxy_status=data["proxy_status"],
        body=bytes.fromhex(data["body"]),
        content_type=data.get("content_type"),
        error=data["error"],
        seconds=seconds,
    )


# Runs inside the namespace with `python -I` (stdlib only): argv = url, proxy ('' = none), tunnel, timeout.
_PYTHON_FETCH = r"""
import base64, ipaddress, json, socket, struct, sys, urllib.parse

url, proxy, tunnel, timeout = sys.argv[1], sys.argv[2], sys.argv[3] == "1", float(sys.argv[4])
out = {"status": None, "proxy_status": None, "body": "", "error": None}


def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise OSError(f"connection closed during the response head: {data[:200]!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    pairs = (line.partition(":") for line in lines)
    headers = {name.strip().lower(): value.strip() for name, _, value in pairs}
    return int(status_line.split()[1]), headers, rest


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("SOCKS server closed the connection")
        data += chunk
    return data


def get(sock, target, host_header, extra=""):
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host_header}\r\n{extra}Connection: close\r\n\r\n".encode())
    status, headers, body = read_head(sock)
    while chunk := sock.recv(65536):
        body += chunk
    out["status"], out["body"], out["content_type"] = status, body.hex(), headers.get("content-type")


try:
    target = urllib.parse.urlsplit(url)
    host, port = target.hostname, target.port or 80
    path = target.path or "/"
    if target.query:
        path += "?" + target.query
    if not proxy:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            get(sock, path, f"{host}:{port}")
    else:
        p = urllib.parse.urlsplit(proxy)
        user = urllib.parse.unquote(p.username) if p.username is not None else None
        password = urllib.parse.unquote(p.password or "")
        with socket.create_connection((p.hostname, p.port), timeout=timeout) as sock:
            if p.scheme == "http":
                auth = ""
                if user is not None:
                    token = base64.b64encode(f"{user}:{password}".encode()).decode()
                    auth = f"Proxy-Authorization: Basic {token}\r\n"
                if tunnel:
                    authority = f"{host}:{port}"
                    sock.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{auth}\r\n".encode())
                    out["proxy_status"], _, _ = read_head(sock)
                    if out["proxy_status"] != 200:
                        raise OSError(f"CONNECT refused: {out['proxy_status']}")
                    get(sock, path, f"{host}:{port}")
                else:
                    get(sock, url, f"{host}:{port}", auth)
            elif p.scheme in ("socks5", "socks5h"):
                methods = b"\x00\x02" if user is not None else b"\x00"
                sock.sendall(b"\x05" + bytes([len(methods)]) + methods)
                version, method = recv_exact(sock, 2)
                if method == 0x02:
                    u, w = user.encode(), password.encode()
                    sock.sendall(b"\x01" + bytes([len(u)]) + u + bytes([len(w)]) + w)
                    if recv_exact(sock, 2)[1] != 0:
                        raise OSError("SOCKS5 username/password refused")
                elif method != 0x00:
                    raise OSError(f"SOCKS5 server accepted no offered method ({method:#x})")
                try:
                    address = b"\x01" + ipaddress.IPv4Address(host).packed
                except ValueError:
                    address = b"\x03" + bytes([len(host)]) + host.encode()
                sock.sendall(b"\x05\x01\x00" + address + struct.pack("!H", port))
                reply = recv_exact(sock, 4)
                if reply[1] != 0:
                    raise OSError(f"SOCKS5 CONNECT failed with reply {reply[1]}")
                skip = {1: 4, 4: 16}.get(reply[3])
                recv_exact(sock, (skip if skip is not None else recv_exact(sock, 1)[0]) + 2)
                get(sock, path, f"{host}:{port}")
            else:
                raise ValueError(f"unsupported proxy scheme {p.scheme!r}")
except (OSError, ValueError) as exc:
    out["error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""
