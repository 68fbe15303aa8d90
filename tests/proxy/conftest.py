"""Fixtures for proxy tests on a real network (see tests/proxy/lab.py): a namespace that only gets out
through a proxy, and the proxies.

- ``netns`` (function): a :class:`Netns` without firewall; call ``netns.firewall(allow=[proxy.address])``.
- ``squid_factory`` (function): ``squid_factory(auth=False, connect_ports=None, password=None)`` starts a
  :class:`Squid` on ``netns.host_ip`` that serves ``netns.subnet``.
- ``dante_factory`` (function): ``dante_factory(auth=False)`` starts a :class:`Dante` likewise.
- ``pac_server_factory`` (function): ``pac_server_factory(pac_text)`` serves it at ``<host_ip>/proxy.pac``.
- ``loopback_http_server`` (function): a :class:`StaticHttpServer` on 127.0.0.1 answering ``GET /`` with
  ``HOST_SERVICE_BODY`` (also ``server.files["/"]``): a stand-in for a cloud service that the namespace
  can reach only through a proxy.

What the factories start is stopped at teardown, and checked gone (processes, ports, system users); every
test then checks that nothing named after this run (``cotest-<pid>-*`` namespaces, veths, users) is left.
At session start, what earlier runs that died left behind is removed. Missing tools, or not being root,
skip the test (a failure under CI=true, see tests/conftest.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from coalesce_cloud.servers.errors import ServerNotInstalledError
from coalesce_cloud.servers.process import find_executable
from coalesce_testing.netns import LabUnavailableError, Netns
from tests.proxy.lab import (
    Dante,
    DanteFactory,
    PacServer,
    PacServerFactory,
    Squid,
    SquidFactory,
    StaticHttpServer,
    lab_leftovers,
    remove_leftovers,
    remove_stale_labs,
)

HOST_SERVICE_BODY = b"coalesce host service on loopback\n"


def _lab_possible() -> bool:
    return os.geteuid() == 0 and shutil.which("ip", path="/usr/sbin:/sbin:/usr/bin:/bin") is not None


def _require(*tools: tuple[str, str]) -> None:
    """Skip unless each (executable, Debian package) is installed."""
    for name, package in tools:
        try:
            find_executable(name, package=package, search=[Path("/usr/lib/squid")])
        except ServerNotInstalledError as exc:
            pytest.skip(str(exc))


@pytest.fixture(scope="session", autouse=True)
def _remove_stale_labs() -> None:
    if _lab_possible():
        remove_stale_labs()


@pytest.fixture(autouse=True)
def _no_lab_leftovers() -> Iterator[None]:
    """Runs last at teardown: fail the test if its namespaces, veths or system users outlived it."""
    yield
    if not _lab_possible():
        return
    leftovers = lab_leftovers()
    if leftovers:
        remove_leftovers(leftovers)
        pytest.fail(f"the test left lab resources behind (now removed): {leftovers}", pytrace=False)


@pytest.fixture
def lab_dir() -> Iterator[Path]:
    """State for the test's servers. Not pytest's tmp_path: squid runs as ``proxy``, which cannot enter
    /tmp/pytest-of-root (mode 0700)."""
    path = Path(tempfile.mkdtemp(prefix="coalesce-proxy-lab-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def netns() -> Iterator[Netns]:
    """A fresh namespace; a test that leaves processes running inside it fails (they are killed)."""
    try:
        namespace = Netns()
    except LabUnavailableError as exc:
        pytest.skip(f"no network namespace for the proxy lab: {exc}")
    with namespace:
        yield namespace
        leftovers = namespace.pids()
    if leftovers:
        pytest.fail(
            f"the test left processes {leftovers} running in {namespace.name} (killed)", pytrace=False
        )


@pytest.fixture
def squid_factory(netns: Netns, lab_dir: Path) -> Iterator[SquidFactory]:
    _require(("squid", "squid"), ("basic_ncsa_auth", "squid"), ("htpasswd", "apache2-utils"))
    with ExitStack() as stack:
        count = 0

        def start(
            *, auth: bool = False, connect_ports: Iterable[int] | None = None, password: str | None = None
        ) -> Squid:
            nonlocal count
            count += 1
            squid = Squid(
                lab_dir / f"squid-{count}",
                host=netns.host_ip,
                clients=[netns.subnet],
                auth=auth,
                connect_ports=connect_ports,
                password=password,
            )
            stack.callback(squid.stop)
            squid.start()
            return squid

        yield start


@pytest.fixture
def dante_factory(netns: Netns, lab_dir: Path) -> Iterator[DanteFactory]:
    _require(("danted", "dante-server"), ("useradd", "passwd"), ("chpasswd", "passwd"), ("userdel", "passwd"))
    with ExitStack() as stack:
        count = 0

        def start(*, auth: bool = False) -> Dante:
            nonlocal count
            count += 1
            dante = Dante(lab_dir / f"dante-{count}", host=netns.host_ip, clients=[netns.subnet], auth=auth)
            stack.callback(dante.stop)
            dante.start()
            return dante

        yield start


@pytest.fixture
def pac_server_factory(netns: Netns) -> Iterator[PacServerFactory]:
    with ExitStack() as stack:

        def start(pac: str) -> PacServer:
            return stack.enter_context(PacServer(netns.host_ip, pac))

        yield start


@pytest.fixture
def loopback_http_server() -> Iterator[StaticHttpServer]:
    with StaticHttpServer("127.0.0.1", {"/": ("text/plain", HOST_SERVICE_BODY)}) as server:
        yield server


from tests.cloudlab import admin, box, camera_file, file_keyring, local_cloud, loopback_only_ice  # noqa: E402

__all__ = ["admin", "box", "camera_file", "file_keyring", "local_cloud", "loopback_only_ice"]
